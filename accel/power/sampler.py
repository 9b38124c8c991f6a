"""Sampling a meter in the background, and turning samples into energy, per-variant power and JSON.

A ``Sampler`` reads the meter on a thread at ``rate_hz`` (never faster than the meter's own read cost)
and, at ~1 Hz, temperature/frequency/throttling. Timestamps are monotonic seconds, the clock of every
``window`` in the result document, so attribution is a pure function of the samples and a window:
warm-up before ``start`` and anything after ``end`` never count.

Between samples power is linear (trapezoidal integration, interpolated at the window's edges) and held
constant beyond the first/last sample; an energy counter is interpolated the same way and differenced.
Attribution sorts once (only when the samples are out of order) and finds a window's edges by binary
search, so charging a variant from an hour of 10 Hz samples costs milliseconds, not seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any

import numpy as np

from accel.core.errors import ConfigError, PowerError
from accel.power import PowerMeter, Reading
from accel.power.thermal import ThermalSample, read_thermal
from accel.results.record import Power

__all__ = ["Sampler", "attribute", "energy_between", "idle_baseline", "mean_watts", "power_json",
           "timeline_json"]

_MAX_CONSECUTIVE_ERRORS = 5


class Sampler:
    """Background sampling of ``meter`` (may be None: thermal only) at ``rate_hz`` and of ``thermal()``
    at ``thermal_hz`` (``thermal=None``: none). A context manager; ``start()``/``stop()`` are idempotent.

    The power interval is ``max(1/rate_hz, meter.min_interval_s, last read's duration)``: a slow meter is
    read back to back at worst, never overlapped. Each reading is stamped with ``clock()`` at the middle
    of its read. A meter that fails 5 times in a row stops being read; ``errors`` keeps the messages.
    A final reading is taken at ``stop()`` so a window ending just before it is covered.

    ``clock`` schedules the readings too: the thread waits ``due - clock()`` seconds between them, so a
    clock given to a started sampler must run at the speed of real seconds. Tests drive a sampler
    without its thread instead: ``tick()`` at each due time of a manual clock, then ``stop()``."""

    def __init__(self, meter: PowerMeter | None, rate_hz: float = 10.0,
                 thermal: Callable[[], ThermalSample] | None = read_thermal, thermal_hz: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_hz > 0 or not thermal_hz > 0:
            raise ConfigError(f"power.rate_hz: expected a rate > 0, got {rate_hz!r} (thermal {thermal_hz!r})")
        if meter is not None and meter.kind == "log":
            raise PowerError(f"meter {meter.name!r} is a log read after the run, not sampled live")
        self.meter = meter
        self.rate_hz = float(rate_hz)
        self.thermal_hz = float(thermal_hz)
        self._thermal = thermal
        self._clock = clock
        self._readings: list[Reading] = []
        self._thermals: list[ThermalSample] = []
        self.errors: list[str] = []
        self.interval_s = 1.0 / self.rate_hz
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = meter            # the meter still read (None once it failed too often)
        self._next_power = self._next_thermal = -math.inf
        self._failures = 0
        self._ticked = self._finished = False

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> Sampler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="accel-power-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (if started) and take the final reading; later calls do nothing."""
        if self._finished or (self._thread is None and not self._ticked):
            return
        self._finished = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._timed(self._live.read, self._readings, self._live.name)

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- data --------------------------------------------------------------------------------------------
    @property
    def readings(self) -> list[Reading]:
        """A copy of the power readings so far, in time order."""
        with self._lock:
            return list(self._readings)

    @property
    def thermal_samples(self) -> list[ThermalSample]:
        """A copy of the thermal samples so far, in time order."""
        with self._lock:
            return list(self._thermals)

    # -- sampling ----------------------------------------------------------------------------------------
    def _timed(self, read: Callable[[], Any], into: list[Any], who: str) -> tuple[float, bool]:
        """One reading appended to ``into``, restamped mid-read; returns (its duration, whether it worked)."""
        c0 = self._clock()
        try:
            value = read()
        except Exception as exc:  # the thread must not die silently: the message goes to ``errors``
            value = None
            self.errors.append(f"{who}: {exc}")
        c1 = self._clock()
        if value is not None:
            with self._lock:
                into.append(replace(value, t=(c0 + c1) / 2))
        return c1 - c0, value is not None

    def tick(self) -> float:
        """Take the readings due at ``clock()`` (power and/or thermal) and return the clock time the next
        one is due (``inf`` when nothing is sampled). The thread calls this in a loop."""
        self._ticked = True
        now = self._clock()
        meter, thermal = self._live, self._thermal
        if meter is not None and now >= self._next_power:
            cost, ok = self._timed(meter.read, self._readings, meter.name)
            self._failures = 0 if ok else self._failures + 1
            if self._failures >= _MAX_CONSECUTIVE_ERRORS:
                self.errors.append(f"{meter.name}: stopped reading after {self._failures} failures in a row")
                self._live = None
            self.interval_s = max(1.0 / self.rate_hz, meter.min_interval_s, cost)
            self._next_power = now + self.interval_s
        if thermal is not None and now >= self._next_thermal:
            cost, _ = self._timed(thermal, self._thermals, "thermal")
            self._next_thermal = now + max(1.0 / self.thermal_hz, cost)
        return min(self._next_power if self._live is not None else math.inf,
                   self._next_thermal if thermal is not None else math.inf)

    def _run(self) -> None:
        while True:
            due = self.tick()
            if self._stop.wait(None if due == math.inf else max(0.0, due - self._clock())):
                break


# -- pure functions over samples ---------------------------------------------------------------------------
# O(n log n) at worst in the number of samples: one pass to collect them, a sort only when they are out
# of order, binary searches for a window's edges.
_NONE = np.empty(0)


def _series(samples: Sequence[Reading], attr: str) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of the readings that have ``attr``, in time order, one per time: readings at the
    same time (a log with a coarse clock) count as their mean."""
    pairs = [(r.t, v) for r in samples if (v := getattr(r, attr)) is not None]
    if not pairs:
        return _NONE, _NONE
    both = np.array(pairs, dtype=np.float64)
    t, v = both[:, 0], both[:, 1]
    if len(t) > 1 and not bool(np.all(t[1:] > t[:-1])):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        first = np.flatnonzero(np.append(True, t[1:] != t[:-1]))
        t, v = t[first], np.add.reduceat(v, first) / np.diff(np.append(first, len(t)))
    return t, v


def _counter_at(t: np.ndarray, e: np.ndarray, at: float) -> float:
    """Counter value at ``at``: linear between readings, extrapolated with the nearest segment's slope
    (needs two readings)."""
    i = min(max(int(np.searchsorted(t, at, side="right")) - 1, 0), len(t) - 2)
    return float(e[i] + (e[i + 1] - e[i]) * (at - t[i]) / (t[i + 1] - t[i]))


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    """The trapezoidal integral of ``y`` over ``x`` (written out: np.trapz and np.trapezoid are split
    across the numpy versions accel supports)."""
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)))


def energy_between(samples: Sequence[Reading], t0: float, t1: float) -> float | None:
    """Joules between monotonic times ``t0`` and ``t1``. Readings with ``energy_j`` (a counter) are
    interpolated at both ends and differenced (needs 2 readings at different times); otherwise watts are
    integrated by the trapezoidal rule with linear interpolation at the window's edges and held constant
    beyond the first and last reading (needs 1). None without enough."""
    if t1 < t0:
        raise ValueError(f"window ends before it starts: [{t0}, {t1}]")
    t, e = _series(samples, "energy_j")
    if len(t):
        return _counter_at(t, e, t1) - _counter_at(t, e, t0) if len(t) >= 2 else None
    t, p = _series(samples, "watts")
    if not len(t):
        return None
    lo, hi = np.searchsorted(t, t0, side="right"), np.searchsorted(t, t1, side="left")  # t[lo:hi] inside
    edges = np.interp([t0, t1], t, p)  # np.interp holds the end values beyond the first and last reading
    x = np.concatenate(([t0], t[lo:hi], [t1]))
    y = np.concatenate((edges[:1], p[lo:hi], edges[1:]))
    return _trapezoid(x, y)


def mean_watts(samples: Sequence[Reading], t0: float, t1: float) -> float | None:
    """Mean watts over ``[t0, t1]`` (energy / duration); None without samples or for an empty window."""
    energy = energy_between(samples, t0, t1)
    return energy / (t1 - t0) if energy is not None and t1 > t0 else None


def attribute(samples: Sequence[Reading], start: float, end: float, frames: int, idle_w: float | None,
              meter: PowerMeter) -> Power:
    """A variant's ``power`` record (docs/results.md) over its measured window ``[start, end]``:
    ``meter``, ``estimated``, ``samples`` (readings inside the window), ``gross_w`` (mean watts),
    ``net_w`` (gross minus the idle baseline ``idle_w``), ``energy_j``, ``j_per_frame``,
    ``net_j_per_frame`` and ``fps_per_w`` (frames per second per gross watt). Figures that cannot be
    computed (no samples, no frames, no baseline) are None."""
    duration = end - start
    energy = energy_between(samples, start, end) if duration > 0 else None
    gross = energy / duration if energy is not None else None
    net = gross - idle_w if gross is not None and idle_w is not None else None
    per_frame = frames > 0 and energy is not None
    return Power(
        meter=meter.name,
        estimated=bool(meter.estimated),
        samples=sum(1 for r in samples if start <= r.t <= end),
        gross_w=gross,
        net_w=net,
        energy_j=energy,
        j_per_frame=energy / frames if per_frame and energy is not None else None,
        net_j_per_frame=net * duration / frames if per_frame and net is not None else None,
        fps_per_w=frames / duration / gross if frames > 0 and gross else None,
    )


def idle_baseline(source: Sampler | PowerMeter, seconds: float, rate_hz: float = 10.0,
                  wait: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Idle watts: wait ``seconds`` doing nothing while ``source`` is sampled and average over that span.
    ``source`` is a running ``Sampler`` (the idle span then lands in its timeline) or a meter, read at
    ``rate_hz`` by a temporary sampler ticked between waits (no thread). ``wait`` and ``clock`` are the
    waiting and the time: a test passes a manual clock. Returns ``{"seconds", "watts"}`` (watts None
    without samples)."""
    if not seconds > 0:
        raise ConfigError(f"power.idle_s: expected seconds > 0, got {seconds!r}")
    t0 = clock()
    if isinstance(source, Sampler):
        sampler = source
        wait(seconds)
        t1 = clock()
    else:
        sampler = Sampler(source, rate_hz, thermal=None, clock=clock)
        end = t0 + seconds
        while clock() < end:
            due = sampler.tick()
            wait(max(0.0, min(due, end) - clock()))
        t1 = clock()
        sampler.stop()
    return {"seconds": t1 - t0, "watts": mean_watts(sampler.readings, t0, t1)}


def timeline_json(samples: Sequence[Reading], digits: int = 4) -> list[list[float]]:
    """The result document's ``power.samples``: ``[[t, watts], ...]`` in time order. Counter readings
    without watts get the mean watts since the previous counter reading."""
    out: list[list[float]] = []
    prev: Reading | None = None
    for r in sorted(samples, key=lambda r: r.t):
        watts = r.watts
        if watts is None and r.energy_j is not None and prev is not None and prev.energy_j is not None \
                and r.t > prev.t:
            watts = (r.energy_j - prev.energy_j) / (r.t - prev.t)
        if watts is not None:
            out.append([round(r.t, digits), round(watts, digits)])
        prev = r
    return out


def power_json(meter: PowerMeter | None, samples: Sequence[Reading], rate_hz: float,
               idle: dict[str, Any] | None = None, why: str | None = None) -> dict[str, Any]:
    """The result document's top-level ``power``: ``meter`` (name or None), ``estimated``, ``why`` (the
    reason when no meter), ``rate_hz``, ``idle`` (``idle_baseline``'s dict), ``samples`` (timeline) and
    ``energy_j`` over the whole sampled span."""
    ordered = sorted(samples, key=lambda r: r.t)
    energy = energy_between(ordered, ordered[0].t, ordered[-1].t) if ordered else None
    return {
        "meter": meter.name if meter is not None else None,
        "estimated": bool(meter.estimated) if meter is not None else False,
        "why": why if meter is None else None,
        "rate_hz": rate_hz,
        "idle": idle,
        "samples": timeline_json(ordered),
        "energy_j": energy,
    }
