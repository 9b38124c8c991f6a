"""``energy_between`` and ``attribute`` against a reference written apart from them: plain Python, one
segment at a time, no numpy and no binary search. Random irregular series (some read twice at the same
time, handed over out of order) and windows inside, across, before and after the samples, with edges on
exact sample times and of zero width."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable

import pytest

from accel.power import Reading
from accel.power.fake import ManualClock, ScriptedMeter
from accel.power.sampler import attribute, energy_between

Point = tuple[float, float]


def _merged(readings: list[tuple[float, float]]) -> list[Point]:
    """(t, value) in time order, readings at the same time replaced by their mean."""
    at: defaultdict[float, list[float]] = defaultdict(list)
    for t, v in readings:
        at[t].append(v)
    return [(t, sum(vs) / len(vs)) for t, vs in sorted(at.items())]


def _line(a: Point, b: Point, t: float) -> float:
    return a[1] + (b[1] - a[1]) * (t - a[0]) / (b[0] - a[0])


def reference_power_joules(points: list[Point], t0: float, t1: float) -> float:
    """Watts held at the first value before the first reading and at the last after the last one, linear
    on each segment in between: each piece's overlap with [t0, t1] integrated exactly on its own."""
    (first_t, first_w), (last_t, last_w) = points[0], points[-1]
    joules = first_w * max(0.0, min(t1, first_t) - t0) + last_w * max(0.0, t1 - max(t0, last_t))
    for a, b in zip(points, points[1:], strict=False):
        lo, hi = max(a[0], t0), min(b[0], t1)
        if hi > lo:  # a linear piece: the mean of its ends is exact
            joules += (_line(a, b, lo) + _line(a, b, hi)) / 2 * (hi - lo)
    return joules


def reference_counter_joules(points: list[Point], t0: float, t1: float) -> float:
    """The counter on the segment holding t (the first or last one beyond the readings), differenced."""
    def at(t: float) -> float:
        for a, b in zip(points, points[1:], strict=False):
            if t <= b[0]:
                return _line(a, b, t)
        return _line(points[-2], points[-1], t)
    return at(t1) - at(t0)


def _series(rng: random.Random) -> list[float]:
    """10-60 times with irregular gaps (1 ms to 2 s), a few of them read twice."""
    times, t = [], rng.uniform(-5.0, 5.0)
    for _ in range(rng.randint(10, 60)):
        t += rng.choice([rng.uniform(0.001, 0.01), rng.uniform(0.05, 0.2), rng.uniform(0.5, 2.0)])
        times.append(t)
        if rng.random() < 0.1:
            times.append(t)
    return times


def _watts(rng: random.Random) -> tuple[list[float], list[tuple[float, float]]]:
    """The times of a random series and its (t, watts) readings, 0.5 to 12 W."""
    times = _series(rng)
    return times, [(t, rng.uniform(0.5, 12.0)) for t in times]


def _windows(rng: random.Random, times: list[float]) -> list[tuple[float, float]]:
    lo, hi = times[0], times[-1]
    on = rng.sample(times, 4)
    windows = [
        (lo - 3.0, lo - 1.0), (hi + 1.0, hi + 4.0),     # wholly before, wholly after the samples
        (lo - 1.0, hi + 1.0), (lo, hi),                 # across all of them; exactly their span
        (lo - 0.5, times[2]), (times[-3], hi + 0.5),    # partly outside
        tuple(sorted(on[:2])), (on[2], on[2]),          # edges on sample times; zero width on one
        (on[3], on[3] + 1e-4),                          # starting on a sample time, barely wide
    ]
    for _ in range(6):
        a, b = rng.uniform(lo - 2, hi + 2), rng.uniform(lo - 2, hi + 2)
        windows.append((min(a, b), max(a, b)))
    return windows  # type: ignore[return-value]


Case = tuple[list[float], list[Reading], Callable[[float, float], float], float]


def _power_case(rng: random.Random) -> Case:
    """Watts readings handed over out of order; the reference, and the absolute tolerance near 0 J."""
    times, raw = _watts(rng)
    shuffled = raw[:]
    rng.shuffle(shuffled)
    points = _merged(raw)
    return (times, [Reading(t, watts=w) for t, w in shuffled],
            lambda t0, t1: reference_power_joules(points, t0, t1), 1e-12)


def _counter_case(rng: random.Random) -> Case:
    """A counter from about 1e6 J up, read once per time, handed over newest first (the absolute
    tolerance allows for differencing numbers that large)."""
    times = sorted(set(_series(rng)))
    raw, joules = [], rng.uniform(0, 1e6)
    for t in times:
        joules += rng.uniform(0.0, 20.0)
        raw.append((t, joules))
    return (times, [Reading(t, energy_j=e) for t, e in reversed(raw)],
            lambda t0, t1: reference_counter_joules(raw, t0, t1), 1e-6)


@pytest.mark.parametrize("seed", range(30), ids=lambda s: f"seed{s}")
@pytest.mark.parametrize("case", [_power_case, _counter_case], ids=["watts", "counter"])
def test_energy_matches_the_reference(case: Callable[[random.Random], Case], seed: int) -> None:
    rng = random.Random(seed)
    times, readings, reference, tolerance = case(rng)
    for t0, t1 in _windows(rng, times):
        assert energy_between(readings, t0, t1) == pytest.approx(reference(t0, t1), rel=1e-9, abs=tolerance), \
            (t0, t1)


@pytest.mark.parametrize("seed", range(5), ids=lambda s: f"seed{s}")
def test_attribute_matches_the_reference(seed: int) -> None:
    rng = random.Random(2000 + seed)
    times, raw = _watts(rng)
    readings = [Reading(t, watts=w) for t, w in raw]
    meter = ScriptedMeter(watts=lambda t: 0.0, clock=ManualClock())
    for start, end in _windows(rng, times):
        if end <= start:
            continue
        block = attribute(readings, start, end, frames=50, idle_w=1.0, meter=meter)
        joules = reference_power_joules(_merged(raw), start, end)
        assert block.samples == sum(1 for t in times if start <= t <= end)
        assert block.energy_j == pytest.approx(joules, rel=1e-9, abs=1e-12)
        assert block.gross_w == pytest.approx(joules / (end - start), rel=1e-9, abs=1e-9)
        assert block.j_per_frame == pytest.approx(joules / 50, rel=1e-9, abs=1e-12)
