"""The JSON form of accel's frozen dataclasses, derived from their fields and type hints.

Every dataclass is written the same way: its fields by name, a flat part's fields (``metadata=FLAT``) merged
into its parent's object, fields that are None left out (a class marked ``@keeps_none`` writes them as null:
"n/a"), a flag marked ``OMIT_FALSE`` left out when false, and a class with a ``to_json`` method of its own
written by it. ``load`` inverts that by the type hints, checking each value's JSON type.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

__all__ = ["FLAT", "OMIT_FALSE", "dump", "json_keys", "keeps_none", "load"]

FLAT = {"flat": True}  # a part whose fields sit in the parent's JSON object, not under a key of its own
OMIT_FALSE = {"omit_false": True}  # a flag written only when true
_KEEPS_NONE: set[type] = set()
T = typing.TypeVar("T", bound=type)


def keeps_none(cls: T) -> T:
    """Mark a dataclass whose None fields are written as null (figures that were not measured: "n/a")."""
    _KEEPS_NONE.add(cls)
    return cls


def dump(obj: Any) -> dict[str, Any]:
    """The JSON object of dataclass instance ``obj``."""
    out: dict[str, Any] = {}
    keep_none = type(obj) in _KEEPS_NONE
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("flat"):
            if value is not None:
                out.update(dump(value))
        elif (value is not None or keep_none) and not (value is False and f.metadata.get("omit_false")):
            out[f.name] = _plain(value)
    return out


def json_keys(cls: type) -> list[str]:
    """The keys dataclass ``cls`` can write, flat parts' keys included."""
    hints = _hints(cls)
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        part = _dataclass_of(hints[f.name])
        keys += json_keys(part) if f.metadata.get("flat") and part is not None else [f.name]
    return keys


def _present(part: type, data: Mapping[str, Any]) -> bool:
    """Whether ``data`` holds flat part ``part``: all its required keys, or (none required) any of its keys."""
    required = [g.name for g in dataclasses.fields(part)
                if g.default is dataclasses.MISSING and g.default_factory is dataclasses.MISSING]
    return all(k in data for k in required) if required else any(k in data for k in json_keys(part))


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.to_json() if hasattr(value, "to_json") else dump(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass in ``X`` or ``X | None``, else None."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    return next((a for a in args if isinstance(a, type) and dataclasses.is_dataclass(a)), None)


def load(cls: type, data: Mapping[str, Any]) -> Any:
    """An instance of dataclass ``cls`` from its JSON object (fields an older document lacks: their default,
    else None). Raises ``TypeError`` or ``ValueError`` for a value of the wrong JSON type."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        part = _dataclass_of(hints[f.name])
        if f.metadata.get("flat") and part is not None:
            if _present(part, data):
                kwargs[f.name] = load(part, data)
            continue
        if f.name in data:
            kwargs[f.name] = _value(hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = None  # an older document without it: "n/a"
    return cls(**kwargs)


_KINDS: dict[Any, tuple[type, ...]] = {dict: (Mapping,), list: (list,), float: (int, float), int: (int,),
                                       str: (str,), bool: (bool,)}


def _value(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    part = _dataclass_of(hint)
    if part is not None:
        if not isinstance(raw, Mapping):
            raise TypeError(f"expected an object for {part.__name__}, got {raw!r}")
        return load(part, raw)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(raw)
    kinds = _KINDS.get(typing.get_origin(hint) or hint)
    if kinds is not None and (not isinstance(raw, kinds) or (bool not in kinds and isinstance(raw, bool))):
        raise TypeError(f"expected {getattr(hint, '__name__', hint)}, got {raw!r}")
    if typing.get_origin(hint) is dict:
        inner = _dataclass_of(typing.get_args(hint)[1])
        if inner is not None:
            return {k: _value(inner, v) for k, v in raw.items()}
    if typing.get_origin(hint) is list:
        inner = _dataclass_of(typing.get_args(hint)[0])
        if inner is not None:
            return [_value(inner, v) for v in raw]
    return raw
