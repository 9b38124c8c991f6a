"""Throttling flags, temperatures, the per-variant thermal record and cool-down."""

from __future__ import annotations

from pathlib import Path

import pytest
from powerfakes import fake_program, write

from accel.power.thermal import (
    ThermalSample,
    cool_down,
    decode_throttled,
    flagged,
    parse_measure_temp,
    parse_throttled,
    read_throttled,
    soc_temperature_c,
    thermal_block,
    thermal_json,
)


@pytest.mark.parametrize(("value", "flags"), [
    (0x0, []),
    # 0x50005 = bits 0, 2, 16, 18
    (0x50005, ["under-voltage now", "throttled now", "under-voltage has occurred since boot",
               "throttled has occurred since boot"]),
    (0x2, ["ARM frequency capped now"]),
    (0x8, ["soft temperature limit now"]),
    (0x20000, ["ARM frequency capped has occurred since boot"]),
    (0x80000, ["soft temperature limit has occurred since boot"]),
], ids=["none", "0x50005", "capped-now", "soft-limit-now", "capped-since-boot", "soft-limit-since-boot"])
def test_decode_throttled(value: int, flags: list[str]) -> None:
    assert decode_throttled(value) == flags


@pytest.mark.parametrize(("value", "expected"), [(0x50005, True), (0x50000, False), (0x8, True), (0, False),
                                                 (None, False)],
                         ids=["0x50005", "since-boot-only", "soft-limit", "zero", "unknown"])
def test_flagged(value: int | None, expected: bool) -> None:
    assert flagged(value) is expected


def test_parsers() -> None:
    assert parse_throttled("throttled=0x50005\n") == 5 * 65536 + 5  # 327685
    assert parse_throttled("throttled=0x0\n") == 0
    assert parse_throttled("garbage") is None
    assert parse_measure_temp("temp=39.5'C\n") == 39.5
    assert parse_measure_temp("nope") is None


def test_vcgencmd_reads(tmp_path: Path, fake_vcgencmd: str) -> None:
    assert read_throttled(fake_vcgencmd) == 0x50005
    assert read_throttled(str(tmp_path / "absent")) is None
    # no thermal zone under this root: vcgencmd measure_temp answers
    assert soc_temperature_c(root=str(tmp_path), vcgencmd=fake_vcgencmd) == 39.5


def test_failing_vcgencmd_is_none(tmp_path: Path) -> None:
    assert read_throttled(fake_program(tmp_path / "vcgencmd", "exit 1\n")) is None


def test_thermal_zone_is_millidegrees(tmp_path: Path) -> None:
    write(tmp_path / "sys/class/thermal/thermal_zone0/temp", "45678\n")
    assert soc_temperature_c(root=str(tmp_path), vcgencmd=str(tmp_path / "absent")) == pytest.approx(45.678)
    assert soc_temperature_c(root=str(tmp_path / "empty"), vcgencmd=str(tmp_path / "absent")) is None


# Temperatures 40 + t deg C read each second; the window [2.5, 7.5] starts at 42.5 and ends at 47.5 C.
TEMPS = [ThermalSample(float(t), 40.0 + t, 1500.0, 0) for t in range(11)]


@pytest.mark.parametrize(("samples", "before", "after", "throttled"), [
    (TEMPS, 0, 0, {"before": 0, "after": 0, "seen": 0, "flags": [], "flagged": False}),
    # throttled now (bit 2) seen by a sample inside the window, and its since-boot bit 18 afterwards
    ([*TEMPS[:5], ThermalSample(5.0, 45.0, 1000.0, 0x4), *TEMPS[6:]], 0, 0x40000,
     {"before": 0, "after": 0x40000, "seen": 0x40004, "flags": ["throttled now", "throttled has occurred since boot"],
      "flagged": True}),
    # a condition from before the run (since-boot bits already set): reported, not flagged
    (TEMPS, 0x50000, 0x50000, {"before": 0x50000, "after": 0x50000, "seen": 0x50000,
                               "flags": ["under-voltage has occurred since boot",
                                         "throttled has occurred since boot"], "flagged": False}),
    # under-voltage came and went between samples: only its since-boot bit appeared -> flagged
    (TEMPS, 0, 0x10000, {"before": 0, "after": 0x10000, "seen": 0x10000,
                         "flags": ["under-voltage has occurred since boot"], "flagged": True}),
    # a sample outside the window does not count
    ([*TEMPS, ThermalSample(9.0, 49.0, 1500.0, 0x1)], 0, 0, {"before": 0, "after": 0, "seen": 0, "flags": [],
                                                           "flagged": False}),
], ids=["clean", "throttled-during", "since-boot-before", "appeared-between-samples", "outside-window"])
def test_thermal_block(samples: list[ThermalSample], before: int, after: int, throttled: dict[str, object]) -> None:
    block = thermal_block(samples, 2.5, 7.5, before, after)
    assert block["temp_c"] == {"start": pytest.approx(42.5), "end": pytest.approx(47.5), "max": pytest.approx(47.5)}
    assert block["throttled"] == throttled


def test_thermal_block_not_a_pi() -> None:
    samples = [ThermalSample(0.0, None, None, None), ThermalSample(1.0, 50.0, None, None)]
    block = thermal_block(samples, 0.0, 2.0, None, None)
    assert block["temp_c"] == {"start": 50.0, "end": 50.0, "max": 50.0}
    assert block["throttled"] == {"before": None, "after": None, "seen": None, "flags": [], "flagged": None}


def test_thermal_json() -> None:
    assert thermal_json([ThermalSample(2.0, 41.0, None, 0), ThermalSample(1.0, 40.0, 1500.0, None)]) == {
        "samples": [[1.0, 40.0, 1500.0, None], [2.0, 41.0, None, 0]]}


class _Script:
    """Injected temperature readings and a sleep that only records."""

    def __init__(self, temps: list[float | None]) -> None:
        self.temps = temps
        self.slept: list[float] = []

    def read(self) -> float | None:
        return self.temps.pop(0) if len(self.temps) > 1 else self.temps[0]

    def sleep(self, s: float) -> None:
        self.slept.append(s)


@pytest.mark.parametrize(("temps", "kwargs", "slept", "result"), [
    ([70.0, 65.0], {"pause_s": 30.0}, [30.0],
     {"waited_s": 30.0, "temp_before": 70.0, "temp_after": 65.0, "gave_up": False}),
    ([70.0, 68.0, 66.0, 64.0, 59.0], {"target_c": 60.0, "poll_s": 10.0}, [10.0] * 4,
     {"waited_s": 40.0, "temp_before": 70.0, "temp_after": 59.0, "gave_up": False}),
    ([50.0], {"target_c": 60.0}, [], {"waited_s": 0.0, "temp_before": 50.0, "temp_after": 50.0, "gave_up": False}),
    ([80.0], {"target_c": 60.0, "poll_s": 10.0, "max_wait_s": 25.0}, [10.0, 10.0, 5.0],
     {"waited_s": 25.0, "temp_before": 80.0, "temp_after": 80.0, "gave_up": True}),
    ([None], {"target_c": 60.0}, [], {"waited_s": 0.0, "temp_before": None, "temp_after": None, "gave_up": True}),
    ([75.0, 70.0, 58.0], {"pause_s": 5.0, "target_c": 60.0, "poll_s": 2.0}, [5.0, 2.0],
     {"waited_s": 7.0, "temp_before": 75.0, "temp_after": 58.0, "gave_up": False}),
], ids=["pause", "until-below-target", "already-cool", "gives-up", "no-sensor", "pause-then-target"])
def test_cool_down(temps: list[float | None], kwargs: dict[str, float], slept: list[float],
                   result: dict[str, object]) -> None:
    script = _Script(temps)
    got = cool_down(read=script.read, sleep=script.sleep, **kwargs)  # type: ignore[arg-type]
    assert script.slept == slept
    assert {k: got[k] for k in result} == result
    assert got["reason"] if got["gave_up"] else got["reason"] == ""
