"""Reading accel.toml: its bytes as TOML, and where a key is in it, for messages.

The file is UTF-8 TOML; a UTF-8 byte-order mark (what Windows editors write) is skipped. A byte that is
not UTF-8 (a Latin-1 "é" in a comment), TOML that does not parse, tables or arrays nested deeper than any
accel key needs, or a file that is not a file (a folder, a device) is one ``ConfigError`` line naming the
file and, where there is one, the line. A pipe (``--config <(...)``) is read once.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from accel.core.errors import ConfigError, file_kind

__all__ = ["MAX_BYTES", "MAX_DEPTH", "Where", "read_config_file"]

MAX_BYTES = 1 << 20  # accel.toml is a few kB; anything near this is not a config file
MAX_DEPTH = 8  # [delegates.external.NAME] options = {key = "value"} is the deepest accel reads: 5 levels
_BOM = "\ufeff"


class Where:
    """Names a key's place for messages: 'accel.toml: pipeline.frames (line 12)'."""

    def __init__(self, path: Path | None, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def __call__(self, section: str, key: str | None = None) -> str:
        dotted = f"{section}.{key}" if key else section
        if self.path is None:
            return dotted
        line = self._line(section, key)
        return f"{self.path.name}: {dotted}" + (f" (line {line})" if line else "")

    def _line(self, section: str, key: str | None) -> int | None:
        parent, _, last = section.rpartition(".")
        if key is None:  # the table: its [header], or the key holding it (pipeline = 3, hwmon = {...})
            found = self._header(section)
            return found if found is not None else self._key(parent, last)
        found = self._key(section, key)
        if found is None and parent:  # a key inside an inline table: [power] hwmon = {name = ["x"]}
            return self._key(parent, last)
        return found

    def _header(self, section: str) -> int | None:
        header = _header_re(section)
        return next((no for no, line in enumerate(self.lines, 1) if header.match(line)), None)

    def _key(self, section: str, key: str) -> int | None:
        """The line of ``key = ...`` in table ``section`` ("" for the top level, before any header)."""
        table = _header_re(section) if section else None
        inside = table is None
        for no, line in enumerate(self.lines, 1):
            if line.lstrip().startswith("["):
                inside = bool(table and table.match(line))
            elif inside and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line):
                return no
        return None


def _header_re(section: str) -> re.Pattern[str]:
    """``[a.b]`` (or ``[ "a" . b ]``, or an array's ``[[a.b]]``) as a pattern for table ``a.b``'s header line."""
    parts = (rf"\"?{re.escape(p)}\"?" for p in section.split("."))
    return re.compile(r"^\s*\[\[?\s*" + r"\s*\.\s*".join(parts) + r"\s*\]\]?")


def read_config_file(path: Path) -> tuple[dict[str, Any], str]:
    """The file's tables and its text (for ``Where``). Raises ``ConfigError`` in one line."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"cannot read config {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise ConfigError(f"config {path}: expected a TOML file, found {file_kind(mode)}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"config {path}: more than {MAX_BYTES >> 20} MiB; expected a TOML file of a few kB")
    text = _decode(path, raw)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path.name}: arrays or inline tables nested hundreds of levels deep; accel's keys "
                          f"nest at most {MAX_DEPTH} levels") from None
    _check_depth(path, data, [])
    return data, text


def _decode(path: Path, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(f"{path.name}: byte 0x{raw[exc.start]:02x} at line {line}, column {column} is not UTF-8 "
                          "(TOML files are UTF-8 text); save the file as UTF-8") from None
    return text.removeprefix(_BOM)


def _check_depth(path: Path, value: Any, keys: list[str]) -> None:
    if len(keys) > MAX_DEPTH:
        dotted = ".".join(keys[: MAX_DEPTH + 1])
        raise ConfigError(f"{path.name}: {dotted}: nested more than {MAX_DEPTH} levels deep; no accel key nests "
                          "that deep")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _check_depth(path, item, [*keys, str(key)])
