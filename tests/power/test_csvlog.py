"""An external meter's CSV log aligned to the run's monotonic clock by wall-clock time."""

from __future__ import annotations

from pathlib import Path

import pytest
from powerfakes import write

from accel.core.errors import PowerError
from accel.power import open_meter
from accel.power.csvlog import CsvMeter, parse_time
from accel.power.sampler import energy_between

# The run started at monotonic 1000.0 when the wall clock read 1700000000.0 (= 2023-11-14T22:13:20Z),
# so a log line at wall time W lies at monotonic W - 1700000000 + 1000.
CLOCK = (1000.0, 1_700_000_000.0)


@pytest.mark.parametrize(("text", "header", "expected"), [
    ("time,watts\n1700000001.5,4.0\n1700000002.5,6.0\n", "unix seconds", [(1001.5, 4.0), (1002.5, 6.0)]),
    ("timestamp;Power (W)\n2023-11-14T22:13:21.5+00:00;4.0\n2023-11-14T22:13:22Z;5.0\n", "iso-8601",
     [(1001.5, 4.0), (1002.0, 5.0)]),
    ("Time,Voltage (V),Current (mA)\n1700000001000,5.1,800\n", "unix ms, volts x milliamps",
     [(1001.0, 5.1 * 0.8)]),  # 5.1 V x 0.8 A = 4.08 W
    ("t,volts,amps\n1700000003,5.0,1.2\n,,\n", "volts x amps, blank trailing row", [(1003.0, 6.0)]),
], ids=["unix-seconds", "iso-8601-semicolons", "unix-ms-milliamps", "volts-amps"])
def test_alignment(tmp_path: Path, text: str, header: str, expected: list[tuple[float, float]]) -> None:
    log = write(tmp_path / "meter.csv", text)
    meter = CsvMeter(path=str(log))
    assert meter.kind == "log" and meter.probe().ok, header
    got = [(r.t, r.watts) for r in meter.samples(CLOCK)]
    assert got == [pytest.approx(e) for e in expected]


def test_named_columns(tmp_path: Path) -> None:
    log = write(tmp_path / "m.csv", "when,p_a,p_b\n1700000001,1.0,9.0\n")
    with open_meter("csv", {"path": str(log), "time_column": "when", "watts_column": "p_b"}) as meter:
        assert [r.watts for r in meter.samples(CLOCK)] == [9.0]  # type: ignore[attr-defined]


def test_energy_over_a_window_from_the_log(tmp_path: Path) -> None:
    rows = "".join(f"{1_700_000_000 + s},4.0\n" for s in range(0, 11))  # 4 W for 10 s
    meter = CsvMeter(path=str(write(tmp_path / "m.csv", "time,watts\n" + rows)))
    # window [1002, 1005] monotonic = wall 2..5 s after the start: 3 s x 4 W = 12 J
    assert energy_between(meter.samples(CLOCK), 1002.0, 1005.0) == pytest.approx(12.0)


@pytest.mark.parametrize(("text", "match"), [
    ("a,b\n1,2\n", "no time column"),
    ("time,temperature\n1,2\n", "no watts column nor volts and amps"),
], ids=["no-time", "no-power"])
def test_unusable_logs(tmp_path: Path, text: str, match: str) -> None:
    meter = CsvMeter(path=str(write(tmp_path / "m.csv", text)))
    assert match in meter.probe().reason


def test_missing_file_and_live_read(tmp_path: Path) -> None:
    meter = CsvMeter(path=str(tmp_path / "later.csv"))
    assert "not found" in meter.probe().reason
    with pytest.raises(PowerError, match="not sampled live"):
        meter.read()


def test_parse_time() -> None:
    assert parse_time("1700000000") == 1_700_000_000.0
    assert parse_time("1700000000500") == pytest.approx(1_700_000_000.5)
    assert parse_time("2023-11-14T22:13:20+00:00") == 1_700_000_000.0
