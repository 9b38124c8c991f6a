"""The background Sampler: its rate, bounded by the meter's read cost, and its thermal samples."""

from __future__ import annotations

import time

import pytest

from accel.errors import ConfigError, PowerError
from accel.power.csvlog import CsvMeter
from accel.power.fake import ScriptedMeter
from accel.power.sampler import Sampler
from accel.power.thermal import ThermalSample


def _run(sampler: Sampler, seconds: float) -> tuple[float, float]:
    t0 = time.monotonic()
    with sampler:
        time.sleep(seconds)
    return t0, time.monotonic()


def test_samples_at_the_rate() -> None:
    sampler = Sampler(ScriptedMeter(watts=lambda t: 3.0), rate_hz=50, thermal=None)
    t0, t1 = _run(sampler, 0.5)
    readings = sampler.readings
    # 50 Hz for 0.5 s: ~25 readings plus the final one at stop (loose bounds: a shared 2-core machine)
    assert 12 <= len(readings) <= 28
    assert all(t0 <= r.t <= t1 for r in readings)
    assert [r.t for r in readings] == sorted(r.t for r in readings)
    assert not sampler.errors and not sampler.running


@pytest.mark.parametrize(("meter", "floor_s"), [
    (ScriptedMeter(watts=lambda t: 1.0, min_interval_s=0.05), 0.05),
    (ScriptedMeter(watts=lambda t: 1.0, read_cost_s=0.04), 0.04),
], ids=["min-interval", "measured-read-cost"])
def test_never_faster_than_the_meter(meter: ScriptedMeter, floor_s: float) -> None:
    sampler = Sampler(meter, rate_hz=1000, thermal=None)
    _run(sampler, 0.5)
    ts = [r.t for r in sampler.readings]
    assert len(ts) <= 0.5 / floor_s + 2
    gaps = [b - a for a, b in zip(ts[:-2], ts[1:-1], strict=False)]  # the last one is the stop reading
    assert min(gaps) >= floor_s * 0.9
    assert sampler.interval_s >= floor_s


def test_thermal_samples_at_their_own_rate() -> None:
    calls: list[int] = []

    def thermal() -> ThermalSample:
        calls.append(1)
        return ThermalSample(0.0, 50.0, 1500.0, 0)

    sampler = Sampler(ScriptedMeter(watts=lambda t: 1.0), rate_hz=100, thermal=thermal, thermal_hz=10)
    t0, t1 = _run(sampler, 0.35)
    samples = sampler.thermal_samples
    assert 3 <= len(samples) <= 6 and len(samples) < len(sampler.readings)
    assert all(t0 <= s.t <= t1 for s in samples)  # restamped with the sampler's clock


def test_thermal_only() -> None:
    sampler = Sampler(None, thermal=lambda: ThermalSample(0.0, None, None, None), thermal_hz=20)
    _run(sampler, 0.2)
    assert sampler.readings == [] and len(sampler.thermal_samples) >= 2


def test_injected_clock_stamps_readings() -> None:
    ticks = iter(range(10_000))
    sampler = Sampler(ScriptedMeter(watts=lambda t: 1.0), rate_hz=100, thermal=None, clock=lambda: float(next(ticks)))
    _run(sampler, 0.05)
    assert sampler.readings[0].t == 0.5  # midpoint of the clock read before (0) and after (1)


def test_failing_meter_is_dropped_not_fatal() -> None:
    sampler = Sampler(ScriptedMeter(watts=lambda t: 1.0, fail_at=2), rate_hz=100, thermal=None)
    _run(sampler, 0.3)
    assert len(sampler.readings) == 2
    assert sampler.errors[0] == "fake: fake meter failed on read 2"
    assert sampler.errors[-1] == "fake: stopped reading after 5 failures in a row"


@pytest.mark.parametrize("rate", [0.0, -1.0], ids=["zero", "negative"])
def test_bad_rate(rate: float) -> None:
    with pytest.raises(ConfigError, match="rate_hz"):
        Sampler(ScriptedMeter(watts=lambda t: 1.0), rate_hz=rate)


def test_log_meters_are_not_sampled() -> None:
    with pytest.raises(PowerError, match="not sampled live"):
        Sampler(CsvMeter(path="meter.csv"))


def test_stop_is_idempotent() -> None:
    sampler = Sampler(ScriptedMeter(watts=lambda t: 1.0), thermal=None).start()
    sampler.stop()
    sampler.stop()
    meter = ScriptedMeter(watts=lambda t: 1.0)
    meter.close()
    meter.close()
    assert meter.closed_count == 1
