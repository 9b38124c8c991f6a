"""An external meter's log (a USB power meter's CSV export, a lab supply's log), aligned afterwards.

Not sampled live (``kind = "log"``): after the run, ``samples(clock)`` turns the log's wall-clock times
into the run's monotonic seconds with the ``(monotonic, wall)`` pair taken at the run's start (the result
document's ``clock``), so the same window and integration code apply as for a live meter. The log needs a
header row; the time column holds unix seconds (milliseconds are recognised) or ISO-8601 (naive times are
local time); power is a watts column, or volts x amps. Columns are found by name unless given.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

from accel.core.errors import OptionError, PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, MeterKind, Reading

# Header words (lower-case, split on anything not a letter or digit) that identify a column.
_TIME = {"t", "time", "timestamp", "unix", "epoch", "datetime", "date"}
_WATTS = {"w", "mw", "watt", "watts", "power"}
_VOLTS = {"v", "mv", "volt", "volts", "voltage"}
_AMPS = {"a", "ma", "amp", "amps", "ampere", "amperes", "current"}
_MILLI = {"mw", "mv", "ma"}


def _words(header: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", header.lower()) if w]


def _scale(header: str) -> float:
    """1e-3 for a header naming a milli unit ("Current (mA)"), else 1."""
    return 1e-3 if _MILLI & set(_words(header)) else 1.0


def parse_time(text: str) -> float:
    """Unix seconds from a log's time cell: a number (seconds, or milliseconds when > 1e11) or ISO-8601."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()
    return value / 1000.0 if value > 1e11 else value


class CsvMeter(MeterBase):
    """A CSV log with a header. Options: ``path``; ``time_column``, ``watts_column``, ``volts_column``,
    ``amps_column`` (header names; found by name when omitted)."""

    name = "csv"
    kind: MeterKind = "log"
    min_interval_s = 0.0

    def __init__(self, path: str = "", time_column: str | None = None, watts_column: str | None = None,
                 volts_column: str | None = None, amps_column: str | None = None) -> None:
        if not path:
            raise OptionError("power.csv.path", "expected the external meter's CSV log file, got nothing", "path")
        self.path = Path(path)
        self.time_column = time_column
        self.watts_column = watts_column
        self.volts_column = volts_column
        self.amps_column = amps_column

    def _pick(self, header: list[str], given: str | None, words: set[str], what: str) -> str | None:
        if given is not None:
            if given not in header:
                raise PowerError(f"{self.path}: no column {given!r} for {what}; columns: {', '.join(header)}")
            return given
        for h in header:
            if words & set(_words(h)):
                return h
        return None

    def _columns(self, header: list[str]) -> tuple[str, str | None, str | None, str | None]:
        """(time, watts, volts, amps) column names; watts or both volts and amps are set."""
        time_col = self._pick(header, self.time_column, _TIME, "time")
        if time_col is None:
            raise PowerError(f"{self.path}: no time column among {', '.join(header)}; set power.csv.time_column")
        watts = self._pick(header, self.watts_column, _WATTS, "watts")
        if watts is not None:
            return time_col, watts, None, None
        volts = self._pick(header, self.volts_column, _VOLTS, "volts")
        amps = self._pick(header, self.amps_column, _AMPS, "amps")
        if volts is None or amps is None:
            raise PowerError(f"{self.path}: no watts column nor volts and amps columns among {', '.join(header)}; "
                             "set power.csv.watts_column (or volts_column and amps_column)")
        return time_col, None, volts, amps

    def _rows(self) -> tuple[list[str], list[dict[str, str]]]:
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as f:
                sample = f.read(4096)
                f.seek(0)
                try:
                    dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
                except csv.Error:
                    dialect = csv.excel
                reader = csv.DictReader(f, dialect=dialect)
                rows = list(reader)
                header = [h.strip() for h in reader.fieldnames or []]
        except OSError as exc:
            raise PowerError(f"cannot read the power log {self.path}: {exc}") from exc
        rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in rows]
        return header, rows

    def wall_samples(self) -> list[tuple[float, float]]:
        """(unix seconds, watts) for every row with both, in file order."""
        header, rows = self._rows()
        time_col, watts, volts, amps = self._columns(header)
        out = []
        for row in rows:
            try:
                t = parse_time(row[time_col])
                if watts is not None:
                    w = float(row[watts]) * _scale(watts)
                else:
                    assert volts is not None and amps is not None
                    w = float(row[volts]) * _scale(volts) * float(row[amps]) * _scale(amps)
            except (ValueError, KeyError):
                continue  # a blank or malformed row (a meter's trailing line), not a measurement
            out.append((t, w))
        return out

    def samples(self, clock: tuple[float, float]) -> list[Reading]:
        """The log as readings on the run's monotonic clock, sorted by time. ``clock`` is the
        ``(monotonic, wall)`` pair taken together at the run's start: ``t = wall_t - wall + monotonic``."""
        mono, wall = clock
        return sorted((Reading(t - wall + mono, watts=w) for t, w in self.wall_samples()), key=lambda r: r.t)

    def probe(self) -> Availability:
        if not self.path.is_file():
            return Availability.no(f"power log {self.path} not found; start the external meter's logging "
                                   "there first (or fix power.csv.path)")
        try:
            n = len(self.wall_samples())
        except PowerError as exc:
            return Availability.no(str(exc))
        return Availability.yes(f"csv {self.path.name}: {n} rows so far")

    def read(self) -> Reading:
        raise PowerError("the csv meter is a log read after the run (CsvMeter.samples), not sampled live")
