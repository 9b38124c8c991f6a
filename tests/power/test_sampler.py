"""The Sampler on a manual clock: its rate, bounded by the meter's read cost, its thermal samples, how a
failing meter is dropped, and the final reading at stop. Every expected time is a multiple of a power of
two, so the clock's sums are exact and the comparisons too; no test waits for real time."""

from __future__ import annotations

import pytest

from accel.core.errors import ConfigError, PowerError
from accel.power.csvlog import CsvMeter
from accel.power.fake import ManualClock, MeterScript, ScriptedMeter
from accel.power.sampler import Sampler
from accel.power.thermal import ThermalSample

STOP = 0.5 + 1 / 128  # off every sampling grid below, so the reading at stop is never a duplicate


def _meter(clock: ManualClock, **kwargs: object) -> ScriptedMeter:
    return ScriptedMeter(watts=lambda t: 3.0, clock=clock, sleep=clock.sleep,
                         script=MeterScript(**kwargs))  # type: ignore[arg-type]


def _drive(sampler: Sampler, clock: ManualClock, seconds: float) -> None:
    """What the sampler's thread does, without a thread: tick at each due time up to ``seconds``, then stop
    there (clocks never go back: a read that ran past a due time is followed by a tick at once)."""
    due = sampler.tick()
    while due <= seconds:
        clock.t = max(clock.t, due)
        due = sampler.tick()
    clock.t = max(clock.t, seconds)
    sampler.stop()


def test_samples_at_the_rate() -> None:
    clock = ManualClock()
    sampler = Sampler(_meter(clock), rate_hz=64, thermal=None, clock=clock)
    _drive(sampler, clock, STOP)
    # one reading every 1/64 s from t=0 while t <= STOP (k = 0 .. 32), then the final one at stop
    assert [r.t for r in sampler.readings] == [k / 64 for k in range(33)] + [STOP]
    assert all(r.watts == 3.0 for r in sampler.readings)
    assert not sampler.errors and not sampler.running


@pytest.mark.parametrize(("kwargs", "times", "interval"), [
    # the meter's own minimum interval (1/16 s) wins over 1000 Hz: reads at k/16 for k = 0 .. 8, then stop
    ({"min_interval_s": 1 / 16}, [k / 16 for k in range(9)] + [STOP], 1 / 16),
    # a read that takes 1/32 s is stamped at its middle and the next starts when it ends: reads over
    # [k/32, (k+1)/32] stamped (2k + 1)/64 for k = 0 .. 16 (the last starts at 0.5), then the stop read
    ({"read_cost_s": 1 / 32}, [(2 * k + 1) / 64 for k in range(18)], 1 / 32),
], ids=["min-interval", "measured-read-cost"])
def test_never_faster_than_the_meter(kwargs: dict[str, float], times: list[float], interval: float) -> None:
    clock = ManualClock()
    sampler = Sampler(_meter(clock, **kwargs), rate_hz=1000, thermal=None, clock=clock)
    _drive(sampler, clock, STOP)
    assert [r.t for r in sampler.readings] == times
    assert sampler.interval_s == interval


def test_readings_are_stamped_mid_read_on_the_sampler_clock() -> None:
    clock = ManualClock(10.0)
    meter = _meter(clock, read_cost_s=0.25)
    sampler = Sampler(meter, thermal=None, clock=clock)
    sampler.tick()
    # the read runs over [10.0, 10.25]: stamped 10.125, not at the meter's own 10.25
    assert [r.t for r in sampler.readings] == [10.125]


def test_thermal_samples_at_their_own_rate() -> None:
    calls: list[int] = []

    def thermal() -> ThermalSample:
        calls.append(1)
        return ThermalSample(0.0, 50.0, 1500.0, 0)

    clock = ManualClock()
    sampler = Sampler(_meter(clock), rate_hz=64, thermal=thermal, thermal_hz=8, clock=clock)
    _drive(sampler, clock, 0.4)
    # thermal every 1/8 s (k = 0 .. 3), restamped with the sampler's clock; none at stop
    assert [s.t for s in sampler.thermal_samples] == [0.0, 0.125, 0.25, 0.375] and len(calls) == 4
    # power every 1/64 s while t <= 0.4 (k = 0 .. 25), then the stop reading at 0.4
    assert [r.t for r in sampler.readings] == [k / 64 for k in range(26)] + [0.4]


def test_thermal_only() -> None:
    clock = ManualClock()
    sampler = Sampler(None, thermal=lambda: ThermalSample(0.0, None, None, None), thermal_hz=16, clock=clock)
    _drive(sampler, clock, 0.2)
    assert sampler.readings == [] and [s.t for s in sampler.thermal_samples] == [0.0, 0.0625, 0.125, 0.1875]


def test_nothing_to_sample_is_never_due() -> None:
    assert Sampler(None, thermal=None, clock=ManualClock()).tick() == float("inf")


def test_failing_meter_is_dropped_not_fatal() -> None:
    clock = ManualClock()
    sampler = Sampler(_meter(clock, fail_at=2), rate_hz=64, thermal=None, clock=clock)
    _drive(sampler, clock, STOP)
    # reads 0 and 1 work, the next 5 fail, then the meter is no longer read (not at stop either)
    assert [r.t for r in sampler.readings] == [0.0, 1 / 64]
    assert sampler.errors == ["fake: fake meter failed on read 2"] * 5 + [
        "fake: stopped reading after 5 failures in a row"]


@pytest.mark.parametrize("rate", [0.0, -1.0], ids=["zero", "negative"])
def test_bad_rate(rate: float) -> None:
    with pytest.raises(ConfigError, match="rate_hz"):
        Sampler(ScriptedMeter(watts=lambda t: 1.0, clock=ManualClock()), rate_hz=rate)


def test_log_meters_are_not_sampled() -> None:
    with pytest.raises(PowerError, match="not sampled live"):
        Sampler(CsvMeter(path="meter.csv"))


def test_the_thread_reads_at_start_and_at_stop() -> None:
    """A real thread; what is asserted does not depend on how long it ran: the thread's first tick reads
    at once and stop() reads once more, so there are at least two readings, in time order."""
    sampler = Sampler(ScriptedMeter(watts=lambda t: 3.0, clock=ManualClock()), rate_hz=10, thermal=None).start()
    sampler.stop()
    readings = sampler.readings
    assert len(readings) >= 2 and all(r.watts == 3.0 for r in readings)
    assert [r.t for r in readings] == sorted(r.t for r in readings)
    assert not sampler.running and not sampler.errors


def test_stop_is_idempotent() -> None:
    clock = ManualClock()
    never = Sampler(_meter(clock), thermal=None, clock=clock)
    never.stop()  # never started: nothing to finish
    assert never.readings == []
    sampler = Sampler(_meter(clock), thermal=None, clock=clock).start()
    sampler.stop()
    count = len(sampler.readings)
    sampler.stop()
    assert len(sampler.readings) == count
    meter = ScriptedMeter(watts=lambda t: 1.0, clock=clock)
    meter.close()
    meter.close()
    assert meter.closed_count == 1
