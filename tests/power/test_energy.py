"""Energy over a window, per-variant attribution, idle baseline and the JSON timeline: pure functions
over readings whose energy is known by formula."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accel.core.jsonform import dump
from accel.power import Reading
from accel.power.fake import ManualClock, MeterScript, ScriptedMeter, steps
from accel.power.sampler import Sampler, attribute, energy_between, idle_baseline, mean_watts, power_json, timeline_json


def _sampled(watts: Callable[[float], float], t_end: float, dt: float) -> list[Reading]:
    """Readings of ``watts(t)`` at t = 0, dt, 2 dt, ... t_end (index-computed: no drift)."""
    return [Reading(i * dt, watts=watts(i * dt)) for i in range(round(t_end / dt) + 1)]


@pytest.mark.parametrize(("samples", "t0", "t1", "joules"), [
    # P = 2 + 0.5 t is linear, so interpolation is exact at any sampling:
    # integral over [1.25, 7.5] = 2 x 6.25 + 0.25 x (7.5^2 - 1.25^2) = 12.5 + 0.25 x 54.6875 = 26.171875 J
    (_sampled(lambda t: 2 + 0.5 * t, 10, 0.1), 1.25, 7.5, 26.171875),
    # the same ramp read at uneven times
    ([Reading(t, watts=2 + 0.5 * t) for t in (0.0, 0.7, 3.1, 3.2, 8.9, 10.0)], 1.25, 7.5, 26.171875),
    # a 2 W -> 6 W step at t=5 read each second: the segment [4, 5] is seen as a ramp 2 -> 6 (4 W mean):
    # [0, 4] 2 W x 4 s = 8 J, [4, 5] 4 W x 1 s = 4 J, [5, 10] 6 W x 5 s = 30 J: 42 J (true 40 J)
    (_sampled(steps((0, 2.0), (5, 6.0)), 10, 1.0), 0.0, 10.0, 42.0),
    # inside a flat part the step is exact: [6, 10] = 6 W x 4 s = 24 J
    (_sampled(steps((0, 2.0), (5, 6.0)), 10, 1.0), 6.0, 10.0, 24.0),
    # edges interpolated inside the smeared segment: [2.5, 4] 2 W x 1.5 s = 3 J; [4, 4.5] from 2 W to
    # 4 W (halfway up the 2 -> 6 ramp): (2 + 4) / 2 x 0.5 = 1.5 J; total 4.5 J
    (_sampled(steps((0, 2.0), (5, 6.0)), 10, 1.0), 2.5, 4.5, 4.5),
    # one reading of 5 W held over the whole window [0, 2]: 10 J
    ([Reading(1.0, watts=5.0)], 0.0, 2.0, 10.0),
    # beyond the last reading the last value is held: 3 W over [0, 1], then 3 W to t=3: 9 J
    ([Reading(0.0, watts=3.0), Reading(1.0, watts=3.0)], 0.0, 3.0, 9.0),
    # an energy counter E = 3 t (3 W) read every 0.5 s: [0.25, 2.0] = 3 x 1.75 = 5.25 J
    ([Reading(0.5 * i, energy_j=1.5 * i) for i in range(6)], 0.25, 2.0, 5.25),
    # the counter extrapolated with its nearest segment's slope past the last reading: [2, 3] = 3 J
    ([Reading(0.0, energy_j=10.0), Reading(2.0, energy_j=16.0)], 2.0, 3.0, 3.0),
    # an empty window
    (_sampled(lambda t: 4.0, 2, 0.5), 1.0, 1.0, 0.0),
], ids=["ramp", "ramp-uneven", "step-smeared", "step-flat", "step-edges", "single-reading", "hold-last",
        "counter", "counter-extrapolated", "empty-window"])
def test_energy_between(samples: list[Reading], t0: float, t1: float, joules: float) -> None:
    assert energy_between(samples, t0, t1) == pytest.approx(joules, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("samples", [[], [Reading(0.0, energy_j=1.0)], [Reading(0.0)]],
                         ids=["none", "one-counter-reading", "empty-reading"])
def test_energy_needs_samples(samples: list[Reading]) -> None:
    assert energy_between(samples, 0.0, 1.0) is None


def test_window_backwards() -> None:
    with pytest.raises(ValueError):
        energy_between([Reading(0.0, watts=1.0)], 2.0, 1.0)


# A scripted run: idle 2 W, warm-up at 8 W from t=10, the measured loop at 6 W over [12, 22], idle again
# from t=22.5; read every 0.5 s (so no reading falls inside a transition that touches the window).
RUN = steps((0.0, 2.0), (10.0, 8.0), (12.0, 6.0), (22.5, 2.0))


def _run_samples() -> list[Reading]:
    meter = ScriptedMeter(watts=RUN, clock=iter([0.5 * i for i in range(61)]).__next__)
    return [meter.read() for _ in range(61)]  # t = 0 .. 30


def test_attribute_counts_only_the_window() -> None:
    meter = ScriptedMeter(watts=RUN, script=MeterScript(estimated=True))
    block = attribute(_run_samples(), 12.0, 22.0, frames=300, idle_w=2.0, meter=meter)
    # 6 W x 10 s = 60 J (with the warm-up it would be 60 + 8 W x 2 s = 76 J); 300 frames in 10 s = 30 FPS
    assert dump(block) == {
        "meter": "fake",
        "estimated": True,
        "samples": 21,                       # t = 12.0, 12.5, ..., 22.0
        "gross_w": pytest.approx(6.0),
        "net_w": pytest.approx(4.0),         # 6 W - 2 W idle
        "energy_j": pytest.approx(60.0),
        "j_per_frame": pytest.approx(0.2),   # 60 J / 300
        "net_j_per_frame": pytest.approx(4.0 * 10 / 300),  # 40 J above idle / 300 = 0.1333 J
        "fps_per_w": pytest.approx(5.0),     # 30 FPS / 6 W
    }


def test_attribute_without_baseline_or_frames() -> None:
    meter = ScriptedMeter(watts=RUN)
    block = attribute(_run_samples(), 12.0, 22.0, frames=0, idle_w=None, meter=meter)
    assert block.gross_w == pytest.approx(6.0)
    assert block.net_w is None and block.net_j_per_frame is None
    assert block.j_per_frame is None and block.fps_per_w is None


def test_attribute_without_samples() -> None:
    block = attribute([], 0.0, 1.0, frames=10, idle_w=2.0, meter=ScriptedMeter(watts=RUN))
    assert block.samples == 0 and block.energy_j is None and block.gross_w is None


def test_idle_from_the_run_samples() -> None:
    # the idle phase of the scripted run up to its last reading before the warm-up: [0, 9.5] at 2 W
    assert mean_watts(_run_samples(), 0.0, 9.5) == pytest.approx(2.0)
    # up to t=10 the reading at 10 (8 W) smears [9.5, 10]: (19 J + (2 + 8) / 2 W x 0.5 s) / 10 s = 2.15 W
    assert mean_watts(_run_samples(), 0.0, 10.0) == pytest.approx(2.15)


def test_idle_baseline_with_a_temporary_sampler() -> None:
    """A meter reading P = 2 + t W on a manual clock, sampled at 64 Hz for 0.3 s without a thread: the
    mean of a linear P over [0, 0.3] is P(0.15) = 2.15 W (the trapezoid is exact for a line)."""
    clock = ManualClock()
    meter = ScriptedMeter(watts=lambda t: 2.0 + t, clock=clock)
    idle = idle_baseline(meter, 0.3, rate_hz=64, wait=clock.sleep, clock=clock)
    assert idle == {"seconds": 0.3, "watts": pytest.approx(2.15, rel=1e-12)}
    assert meter.reads == 21  # at k/64 while k/64 < 0.3 (k = 0 .. 19), and the final one at t = 0.3


def test_idle_baseline_on_a_running_sampler_only_waits() -> None:
    clock = ManualClock(5.0)
    sampler = Sampler(ScriptedMeter(watts=lambda t: 1.5, clock=clock), thermal=None, clock=clock)
    sampler.tick()  # one reading at t = 5: held over the whole idle span
    idle = idle_baseline(sampler, 2.0, wait=clock.sleep, clock=clock)
    assert idle == {"seconds": 2.0, "watts": 1.5} and len(sampler.readings) == 1


def test_timeline_json() -> None:
    readings = [Reading(2.0, energy_j=13.0), Reading(1.0, energy_j=10.0), Reading(3.00001, watts=2.123456)]
    # sorted by t; the counter's second reading gets (13 - 10) J / 1 s = 3 W; the first has no predecessor
    assert timeline_json(readings) == [[2.0, 3.0], [3.0, 2.1235]]


def test_power_json() -> None:
    meter = ScriptedMeter(watts=RUN)
    block = power_json(meter, [Reading(0.0, watts=2.0), Reading(2.0, watts=4.0)], 10.0, {"seconds": 5, "watts": 2.0})
    assert block == {"meter": "fake", "estimated": False, "why": None, "rate_hz": 10.0,
                     "idle": {"seconds": 5, "watts": 2.0}, "samples": [[0.0, 2.0], [2.0, 4.0]],
                     "energy_j": pytest.approx(6.0)}  # (2 + 4) / 2 W x 2 s
    empty = power_json(None, [], 10.0, why="no meter: ...")
    assert empty["meter"] is None and empty["why"] == "no meter: ..." and empty["energy_j"] is None
