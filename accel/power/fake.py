"""A scriptable fake meter for tests and dry runs: watts (or a cumulative energy counter) as a function of
time, on a clock it is given. Not an entry point; tests add it with ``REGISTRY.register("fake", ...)`` or
use it directly, with a ``ManualClock`` so that nothing depends on how long a real sleep lasted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from accel.core.errors import PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, MeterKind, Reading


def steps(*points: tuple[float, float]) -> Callable[[float], float]:
    """A step function: ``steps((0, 2.0), (5, 6.0))`` is 2 W before t=5 and 6 W from t=5 on."""
    ordered = sorted(points)

    def watts(t: float) -> float:
        value = ordered[0][1]
        for start, w in ordered:
            if t >= start:
                value = w
        return value

    return watts


class ManualClock:
    """A clock that moves only when told: ``clock()`` is the time now, ``clock.sleep(s)`` moves it on by
    ``s`` seconds (a wait that costs no real time), ``clock.t = x`` sets it."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass(frozen=True)
class MeterScript:
    """How a ``ScriptedMeter`` behaves besides its readings: its name, whether it is an estimate, its minimum
    interval, what a read costs (slept on the meter's ``sleep``), the read number (0-based) that raises
    ``PowerError`` (``fail_at``), and why probe() says no (``unavailable``)."""

    name: str = "fake"
    estimated: bool = False
    min_interval_s: float = 0.0
    read_cost_s: float = 0.0
    fail_at: int | None = None
    unavailable: str | None = None


class ScriptedMeter(MeterBase):
    """Readings from ``watts(t)`` (kind "power") or ``energy(t)`` (kind "energy") at ``clock()``, after
    ``sleep(script.read_cost_s)`` (give a ``ManualClock`` and its ``sleep`` to make a read cost no real time);
    the rest of its behaviour is its ``MeterScript``."""

    def __init__(self, watts: Callable[[float], float] | None = None,
                 energy: Callable[[float], float] | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, script: MeterScript = MeterScript()) -> None:
        if (watts is None) == (energy is None):
            raise ValueError("give exactly one of watts= or energy=")
        self.name = script.name
        self.kind: MeterKind = "power" if watts is not None else "energy"
        self.estimated = script.estimated
        self.min_interval_s = script.min_interval_s
        self._watts, self._energy, self._clock, self._sleep = watts, energy, clock, sleep
        self._cost, self._fail_at, self._unavailable = script.read_cost_s, script.fail_at, script.unavailable
        self.reads = 0
        self.closed_count = 0

    def probe(self) -> Availability:
        return Availability.no(self._unavailable) if self._unavailable else Availability.yes("scripted")

    def read(self) -> Reading:
        if self._fail_at is not None and self.reads >= self._fail_at:
            raise PowerError(f"fake meter failed on read {self.reads}")
        self.reads += 1
        if self._cost:
            self._sleep(self._cost)
        t = self._clock()
        if self._watts is not None:
            return Reading(t, watts=self._watts(t))
        assert self._energy is not None
        return Reading(t, energy_j=self._energy(t))

    def _close(self) -> None:
        self.closed_count += 1
