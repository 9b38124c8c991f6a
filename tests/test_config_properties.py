"""Property-based tests of the config loader (issue 15): any TOML document gives a valid ``Config`` or one
``ConfigError`` line that names the file and a key path of the document; any bytes at all give a ``Config``
or one ``ConfigError`` line. Documents are generated as data and written as TOML here (keys quoted, strings
escaped), from accel's own sections and keys mixed with strangers, with values of every TOML type including
huge integers, NaN, infinities, NUL characters, dates and nesting."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accel.core.errors import ConfigError
from accel.plan.config import load_config
from accel.plan.job import check_backends as backends
from accel.plan.sections import SECTIONS, schema

# Fixed and database-free: the same examples in CI and here, nothing written to the tree.
RUNS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_NAMES = st.sampled_from(["x", "threads", "enabled", "library", "options", "name", "command", "path", "meter",
                          "cpu-reference", "xnnpack", "null", "external", "numpy", "opencl", "hwmon", "csv"])
_KEYS = st.one_of(_NAMES, st.sampled_from(sorted({k for section in SECTIONS for k in schema(section)})),
                  st.text(min_size=1, max_size=8))
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_SCALARS = st.one_of(
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), _TEXT, st.sampled_from(["auto", "none", "synthetic:64x64", "serial", "numpy", "null", "0x0",
                                           "100000x100000", "hwmon", "1,2"]),
    st.dates(), st.datetimes(), st.times(),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=12)
_SECTIONS = st.one_of(st.sampled_from([*SECTIONS, "delegates", "kernels"]), _KEYS)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document of sections, each a table of accel keys (the section's own and others) or a stray value."""
    doc: dict[str, Any] = {}
    for section in draw(st.lists(_SECTIONS, max_size=5, unique=True)):
        own = sorted(schema(section) if section in SECTIONS else {}) or ["xnnpack", "null", "external", "numpy",
                                                                           "hwmon", "command"]
        keys = draw(st.lists(st.one_of(st.sampled_from(own), _KEYS), max_size=5, unique=True))
        doc[section] = {k: draw(_VALUES) for k in keys} if draw(st.integers(0, 9)) else draw(_VALUES)
    return doc


def _string(text: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                      else f"\\U{ord(c):08x}" for c in text)
    return f'"{escaped}"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, (int, dt.date, dt.time)):
        return v.isoformat() if not isinstance(v, int) else str(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_string(k)} = {_value(x)}" for k, x in v.items()) + "}"


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level values first, then one [table] per dict, its values inline."""
    lines = [f"{_string(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for section, table in doc.items():
        if isinstance(table, dict):
            lines += [f"[{_string(section)}]", *(f"{_string(k)} = {_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _one_line_naming_a_key(exc: ConfigError, doc: dict[str, Any], file: str) -> None:
    message = str(exc)
    assert "\n" not in message and message.strip() == message and message, message
    assert message.startswith(f"{file}: "), message
    rest = message[len(file) + 2:]
    shown = ["".join(c if c.isprintable() else repr(c)[1:-1] for c in k) for k in doc]  # as ConfigError shows them
    assert any(rest.startswith(k) and rest[len(k): len(k) + 1] in (".", ":", " ") for k in shown), message


@RUNS
@given(doc=documents())
def test_any_document_is_a_config_or_one_error_line_with_a_key_path(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "accel.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    try:
        config = load_config(path, env={})
    except ConfigError as exc:
        _one_line_naming_a_key(exc, doc, "accel.toml")
        assert "not valid TOML" not in str(exc), to_toml(doc)  # a bug in to_toml, not in accel
        return
    json.dumps(config.to_json(), default=str)


@settings(RUNS, max_examples=100)
@given(doc=documents())
def test_the_plan_of_any_document_is_runs_or_one_error_line(tmp_path: Path, doc: dict[str, Any]) -> None:
    """Past the loader, the delegates' and kernel sets' own checks (``backends``) say what is wrong the same way.
    The kernel set is numpy and litert-gpu is left out: their probes are what ``backends`` would spend its time on."""
    if isinstance(doc.get("delegates"), dict):
        doc["delegates"].pop("litert-gpu", None)
    doc["pipeline"] = {**(doc["pipeline"] if isinstance(doc.get("pipeline"), dict) else {}), "kernels": ["numpy"]}
    path = tmp_path / "accel.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    try:
        backends(load_config(path, env={}))
    except ConfigError as exc:
        _one_line_naming_a_key(exc, doc, "accel.toml")


@RUNS
@given(data=st.one_of(st.binary(max_size=200), documents().map(lambda d: to_toml(d).encode()).flatmap(
    lambda b: st.tuples(st.just(b), st.integers(0, len(b)), st.binary(min_size=1, max_size=4)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:]))))
def test_any_bytes_are_a_config_or_one_error_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "accel.toml"
    path.write_bytes(data)
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc), str(exc)


def test_the_writer_round_trips() -> None:
    """``to_toml`` writes what tomllib reads back (NaN aside, which is not equal to itself)."""
    import tomllib

    doc = {"pipeline": {"frames": 3, "source": 'a"b\\c\u0000', "box": [1.5, -2e300]}, "x": {"y": {"z": True}},
           "top": dt.date(2024, 1, 2)}
    assert tomllib.loads(to_toml(doc)) == doc


@pytest.mark.parametrize("text", ["[pipeline]\nseconds = 1e308\n", "a = " + "[" * 400 + "]" * 400 + "\n"])
def test_found_by_hand_before_the_properties(tmp_path: Path, text: str) -> None:
    path = tmp_path / "accel.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path, env={})
