"""What the parent measures around the variants: power on a timeline, temperature and throttling,
the idle baseline, cool-down between variants, and the sustained-run summary.

One ``Instruments`` lives for a whole comparison. A sampler thread reads the meter (and, about once a
second, temperature, CPU clock and ``get_throttled``) on the monotonic clock the workers stamp their
measured windows with, so each variant is charged only for its own window: warm-up, model loading and
cool-down never count. A meter that writes a log (``csv``) is aligned by wall clock when the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from accel.core.errors import OptionError, PowerError
from accel.plan.config import Config
from accel.results.record import Charged, Power, Timings

if TYPE_CHECKING:
    from accel.power import PowerMeter

__all__ = ["Instruments", "select_meter", "sustained_summary"]


def select_meter(config: Config) -> tuple[PowerMeter | None, str | None]:
    """The meter ``[power] meter`` names, opened (the caller closes it), and None; or None and why there is
    none ("none", or what "auto" found missing). Every ``[power.NAME]`` table is checked first, so a typo in
    one not in use fails now, not the day it is used; an unknown meter or option names where it was set (the
    flag, or the file and line). ``PowerError`` when the named meter cannot run here."""
    from accel.power import check_meter_options, find_meter, open_meter

    name, meters = config.power.meter, config.meters.thaw()  # each meter checks its own plain table
    try:
        for table, options in meters.items():
            check_meter_options(table, options)
        if name == "none":
            return None, "no meter: power.meter = none"
        if name == "auto":
            meter, found = find_meter(meters)
            return meter, None if meter is not None else found
        return open_meter(name, meters.get(name, {})), None
    except OptionError as exc:
        raise config.locate(exc) from None


class Instruments:
    """Power meter + thermal sampler for one comparison (a context manager)."""

    def __init__(self, config: Config, emit: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.power = config.power
        self.thermal = config.thermal
        self._emit = emit or (lambda kind, data: None)
        self.clock = {"monotonic": time.monotonic(), "wall": time.time()}
        self.meter: Any = None
        self.why: str | None = None
        self.idle: dict[str, Any] | None = None
        self._log: Any = None  # a meter read after the run (kind "log")
        self._sampler: Any = None
        self._select(config)

    def _select(self, config: Config) -> None:
        self.meter, self.why = select_meter(config)
        if self.meter is not None and self.meter.kind == "log":
            self._log, self.meter = self.meter, None

    @property
    def metered(self) -> Any:
        """The meter whose figures end up in the results (live or log), or None."""
        return self.meter or self._log

    def __enter__(self) -> Instruments:
        from accel.power.sampler import Sampler, idle_baseline

        self._sampler = Sampler(self.meter, rate_hz=self.power.rate_hz).start()
        if self.metered is not None and self.power.idle_s > 0:
            self._emit("idle", {"seconds": self.power.idle_s, "meter": self.metered.name})
            if self.meter is not None:
                self.idle = idle_baseline(self._sampler, self.power.idle_s)
            else:  # a log meter: note the idle span now, average it once the log is read
                start = time.monotonic()
                time.sleep(self.power.idle_s)
                self.idle = {"seconds": time.monotonic() - start, "span": [start, time.monotonic()], "watts": None}
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        for meter in (self.meter, self._log):
            if meter is not None:
                meter.close()

    def before_variant(self) -> dict[str, Any]:
        """Cool down as configured, then read the throttling state the variant starts from."""
        from accel.power.thermal import cool_down, read_throttled

        t = self.thermal
        waited: dict[str, Any] = {}
        if t.cool_down_c > 0 or t.pause_s > 0:
            self._emit("cool_down", {"target_c": t.cool_down_c or None, "pause_s": t.pause_s})
            waited = cool_down(t.cool_down_c or None, t.pause_s, t.max_wait_s)
        return {"cool_down": waited, "throttled_before": read_throttled()}

    def after_variant(self, timings: Timings | None, before: dict[str, Any]) -> Charged:
        """Charge the variant's measured window: power (live meters), thermal, sustained summary."""
        from accel.power.sampler import attribute
        from accel.power.thermal import read_throttled, thermal_block

        cool_down = before["cool_down"] or None
        if timings is None or timings.window is None:
            return Charged(cool_down=cool_down)
        window = timings.window
        thermals = self._sampler.thermal_samples if self._sampler is not None else []
        power = None
        if self.meter is not None:
            power = attribute(self._sampler.readings, window.start, window.end, timings.frames_measured,
                              (self.idle or {}).get("watts"), self.meter)
        return Charged(cool_down=cool_down,
                       thermal=thermal_block(thermals, window.start, window.end, before["throttled_before"],
                                             read_throttled()),
                       power=power,
                       sustained=sustained_summary(timings, thermals) if self.thermal.sustained_s > 0 else None)

    def finish(self, measured: list[Timings | None]) -> tuple[dict[str, Any], list[Power | None] | None]:
        """Stop sampling; align a log meter and charge every measured window (``measured``: each variant's
        timings) from it. Returns the document's top-level ``power`` and ``thermal``, and with a log meter
        each variant's power (None for one that measured nothing)."""
        from accel.power.sampler import attribute, mean_watts, power_json
        from accel.power.thermal import thermal_json

        logged: list[Power | None] | None = None
        if self._sampler is not None:
            self._sampler.stop()
        readings = self._sampler.readings if self._sampler is not None else []
        if self._log is not None:
            try:
                readings = self._log.samples((self.clock["monotonic"], self.clock["wall"]))
            except PowerError as exc:
                self.why = f"no meter: {exc}"
                readings = []
            if readings and self.idle and "span" in self.idle:
                self.idle = {"seconds": self.idle["seconds"], "watts": mean_watts(readings, *self.idle.pop("span"))}
            if readings:
                idle_w = (self.idle or {}).get("watts")
                logged = [attribute(readings, t.window.start, t.window.end, t.frames_measured, idle_w, self._log)
                          if t is not None and t.window is not None else None for t in measured]
        metered = self.metered if readings or self.meter is not None else None
        out = power_json(metered, readings, self.power.rate_hz, self.idle, self.why or "no meter")
        if self._sampler is not None and self._sampler.errors:
            out["errors"] = self._sampler.errors[-5:]
        doc = {"power": out, "thermal": thermal_json(self._sampler.thermal_samples if self._sampler else [])}
        return doc, logged


def sustained_summary(timings: Timings, thermals: list[Any]) -> dict[str, Any]:
    """FPS and temperature in the first and last minute of a long run (a third of it when shorter than
    three minutes), FPS per 10-second bucket, and when throttling first showed (seconds into the run)."""
    ends = timings.frame_end
    assert timings.window is not None, "a measured window"
    window = timings.window
    duration = window.end - window.start
    span = min(60.0, duration / 3) if duration > 0 else 0.0

    def fps(lo: float, hi: float) -> float | None:
        n = sum(1 for t in ends if lo < t <= hi)
        return n / (hi - lo) if hi > lo else None

    def temp(lo: float, hi: float) -> float | None:
        t0 = window.start
        vals = [s.temp_c for s in thermals if s.temp_c is not None and t0 + lo <= s.t <= t0 + hi]
        return sum(vals) / len(vals) if vals else None

    first, last = fps(0.0, span), fps(duration - span, duration)
    throttled_at = next((s.t - window.start for s in thermals
                         if window.start <= s.t <= window.end and s.throttled and s.throttled & 0xF), None)
    step = 10.0
    buckets = [[round(lo, 1), fps(lo, min(lo + step, duration))] for lo in _range(0.0, duration, step)]
    return {
        "duration_s": duration, "span_s": span,
        "first_fps": first, "last_fps": last,
        "fps_change": (last / first - 1.0) if first and last is not None else None,
        "first_temp_c": temp(0.0, span), "last_temp_c": temp(duration - span, duration),
        "throttled_after_s": throttled_at,
        "fps_over_time": buckets,
    }


def _range(start: float, stop: float, step: float) -> list[float]:
    out, t = [], start
    while t < stop:
        out.append(t)
        t += step
    return out
