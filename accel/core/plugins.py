"""The plugin shape shared by delegates, kernel sets and power meters: availability, an entry-point registry,
and the check of a plugin's accel.toml options against its constructor (``check_options``)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from accel.core.errors import OptionError


@dataclass(frozen=True)
class Availability:
    """Whether a plugin can run here; if not, ``reason`` says why in one sentence a user can act on."""

    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls, detail: str = "") -> Availability:
        return cls(True, detail)

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)


class Registry:
    """Plugins of one entry-point group, by name. Entry points load only when a plugin is selected."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._extra: dict[str, Any] = {}

    def register(self, name: str, factory: Any) -> None:
        """Add a plugin by hand (tests, embedding); it shadows an entry point of the same name."""
        self._extra[name] = factory

    def by_hand(self) -> dict[str, str]:
        """Plugins registered by hand that a spawned worker can import again: name -> 'module:QualName'."""
        return {name: f"{f.__module__}:{f.__qualname__}" for name, f in self._extra.items()
                if isinstance(f, type) and "<locals>" not in f.__qualname__ and f.__module__ != "__main__"}

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        return {ep.name: ep for ep in metadata.entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every known plugin name, sorted."""
        return sorted(set(self._entry_points()) | set(self._extra))

    def load(self, name: str) -> Any:
        """The plugin's factory (usually its class). Raises ``LookupError`` for an unknown name and
        ``ImportError`` (with the entry point named) for one that fails to import."""
        if name in self._extra:
            return self._extra[name]
        eps = self._entry_points()
        if name not in eps:
            raise LookupError(f"unknown {self.group} plugin {name!r}; known: {', '.join(self.names())}")
        try:
            return eps[name].load()
        except Exception as exc:  # any failure inside a third-party import is reported by name
            raise ImportError(f"{self.group} plugin {name!r} ({eps[name].value}) failed to import: {exc}") from exc


def check_options(where: str, factory: Any, options: Mapping[str, Any]) -> None:
    """``OptionError`` for an option the plugin's constructor ``factory`` does not take, or whose value is not
    of the type its annotation says (``name: str | None`` takes a string; a number, a list or a table is a
    mistake the constructor would otherwise meet only when it runs). ``where`` names the table
    (``kernels.opencl``). A constructor taking ``**kwargs``, or one Python cannot inspect, takes anything."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = sorted(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    unknown = sorted(set(options) - set(takes))
    if unknown:
        known = f"known: {', '.join(takes)}" if takes else "it takes none"
        raise OptionError(where, f"unknown option {unknown[0]!r}; {known}", unknown[0])
    try:
        hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)  # type: ignore[misc]
    except Exception:  # an annotation that does not evaluate: the constructor checks for itself
        return
    for key, value in options.items():
        wanted = _accepted(hints.get(key))
        if wanted and not any(_is(value, t) for t in wanted):
            names = " or ".join(dict.fromkeys(_NAMES.get(t, t.__name__) for t in wanted))
            raise OptionError(f"{where}.{key}", f"expected {names}, got {value!r}", key)


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
          dict: "a table"}


def _accepted(hint: Any) -> tuple[type, ...]:
    """The TOML value types an annotation accepts; () when it cannot tell (no annotation, ``Any``, a callable)."""
    if hint is None or hint is Any:
        return ()
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = [_accepted(a) for a in typing.get_args(hint) if a is not type(None)]
        return () if any(not p for p in parts) else tuple(t for p in parts for t in p)
    base = typing.get_origin(hint) or hint
    return (base,) if base in _NAMES else ()


def _is(value: Any, wanted: type) -> bool:
    if wanted is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, wanted)
