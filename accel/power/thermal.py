"""SoC temperature, CPU frequency and the Pi firmware's throttling flags, per sample and per variant.

``vcgencmd get_throttled`` prints ``throttled=0x50005``: bits 0-3 are conditions *now* (under-voltage, ARM
frequency capped, throttled, soft temperature limit), bits 16-19 the same conditions *since boot*. A run
during which a bit 0-3 was set, or a since-boot bit appeared, is flagged: its figures are not those of an
unthrottled board. Where vcgencmd is absent (not a Pi) throttling is ``None``, never 0.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from accel.power.sysfs import which

_NOW = ("under-voltage", "ARM frequency capped", "throttled", "soft temperature limit")
NOW_MASK = 0xF
BOOT_SHIFT = 16


@dataclass(frozen=True)
class ThermalSample:
    """Temperature (deg C), CPU MHz and ``get_throttled`` bits at monotonic time ``t``; None = not exposed."""

    t: float
    temp_c: float | None
    cpu_mhz: float | None
    throttled: int | None

    def to_json(self) -> list[Any]:
        return [round(self.t, 4), self.temp_c, self.cpu_mhz, self.throttled]


def decode_throttled(value: int) -> list[str]:
    """Human flags of a ``get_throttled`` value, e.g. 0x50005 -> ["under-voltage now", "throttled now",
    "under-voltage has occurred since boot", "throttled has occurred since boot"]."""
    flags = [f"{what} now" for bit, what in enumerate(_NOW) if value >> bit & 1]
    flags += [f"{what} has occurred since boot" for bit, what in enumerate(_NOW) if value >> (BOOT_SHIFT + bit) & 1]
    return flags


def flagged(value: int | None) -> bool:
    """True when a condition is active now (bits 0-3)."""
    return bool(value is not None and value & NOW_MASK)


def parse_throttled(text: str) -> int | None:
    """``throttled=0x50005`` -> 0x50005; None when the text is not in that form."""
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    return int(m[1], 0) if m else None


def parse_measure_temp(text: str) -> float | None:
    """``temp=39.5'C`` -> 39.5; None when the text is not in that form."""
    m = re.search(r"temp=([-+]?\d+(?:\.\d+)?)", text)
    return float(m[1]) if m else None


@lru_cache(maxsize=8)
def _vcgencmd(program: str) -> str | None:
    return which(program)


def _vcgencmd_text(args: Sequence[str], vcgencmd: str, timeout_s: float = 2.0) -> str | None:
    path = _vcgencmd(vcgencmd)
    if path is None:
        return None
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def read_throttled(vcgencmd: str = "vcgencmd") -> int | None:
    """``vcgencmd get_throttled`` as an int; None where vcgencmd is absent or fails."""
    text = _vcgencmd_text(["get_throttled"], vcgencmd)
    return parse_throttled(text) if text is not None else None


def soc_temperature_c(root: str = "/", vcgencmd: str = "vcgencmd") -> float | None:
    """SoC temperature: thermal_zone0 (millidegrees), else ``vcgencmd measure_temp``, else (on the real
    root) what accel.host.usage finds through psutil; None when nothing exposes it."""
    try:
        return int((Path(root) / "sys/class/thermal/thermal_zone0/temp").read_text().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    text = _vcgencmd_text(["measure_temp"], vcgencmd)
    if text is not None and (temp := parse_measure_temp(text)) is not None:
        return temp
    if root == "/":
        from accel.host.usage import cpu_temperature_c

        return cpu_temperature_c()
    return None


def read_thermal(clock: Callable[[], float] = time.monotonic, vcgencmd: str = "vcgencmd") -> ThermalSample:
    """One thermal sample now: temperature, CPU MHz (accel.host.usage) and throttling bits."""
    from accel.host.usage import cpu_frequency_mhz

    t = clock()
    return ThermalSample(t, soc_temperature_c(vcgencmd=vcgencmd), cpu_frequency_mhz(), read_throttled(vcgencmd))


def _interp(points: Sequence[tuple[float, float]], t: float) -> float:
    """Linear interpolation in time-sorted ``points``, held constant beyond the ends."""
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def thermal_block(samples: Sequence[ThermalSample], start: float, end: float, before: int | None,
                  after: int | None) -> dict[str, Any]:
    """A variant's ``thermal`` record (docs/results.md) over its measured window ``[start, end]``.

    ``temp_c``: start and end interpolated linearly between samples (held beyond the first/last), max over
    those and the samples inside. ``throttled``: ``before``/``after`` are ``get_throttled`` read just before
    and after the window; ``seen`` ORs them with the samples inside; ``flags`` decodes ``seen``;
    ``flagged`` is True when a "now" bit (0-3) was seen, or a "since boot" bit (16-19) appeared between
    before and after (a condition that came and went between samples). A "since boot" bit already set
    before the window does not flag it. Without any throttling information they are None."""
    temps = sorted((s.t, s.temp_c) for s in samples if s.temp_c is not None)
    temp: dict[str, float | None] = {"start": None, "end": None, "max": None}
    if temps:
        t_start, t_end = _interp(temps, start), _interp(temps, end)
        inside = [v for t, v in temps if start <= t <= end]
        temp = {"start": t_start, "end": t_end, "max": max([t_start, t_end, *inside])}
    known = [v for v in (before, after, *(s.throttled for s in samples if start <= s.t <= end)) if v is not None]
    seen: int | None = None
    is_flagged: bool | None = None
    if known:
        seen = 0
        for v in known:
            seen |= v
        appeared = (after & ~before) >> BOOT_SHIFT & NOW_MASK if before is not None and after is not None else 0
        is_flagged = flagged(seen) or bool(appeared)
    return {
        "temp_c": temp,
        "throttled": {
            "before": before,
            "after": after,
            "seen": seen,
            "flags": decode_throttled(seen) if seen is not None else [],
            "flagged": is_flagged,
        },
    }


def thermal_json(samples: Sequence[ThermalSample]) -> dict[str, Any]:
    """The result document's top-level ``thermal``: ``{"samples": [[t, temp_c, cpu_mhz, throttled], ...]}``."""
    return {"samples": [s.to_json() for s in sorted(samples, key=lambda s: s.t)]}


def cool_down(target_c: float | None = None, pause_s: float = 0.0, max_wait_s: float = 300.0,
              read: Callable[[], float | None] = soc_temperature_c, sleep: Callable[[float], None] = time.sleep,
              poll_s: float = 1.0) -> dict[str, Any]:
    """Let the SoC cool between variants: a fixed ``pause_s``, then (with ``target_c``) wait until the
    temperature is below ``target_c``, polling every ``poll_s``, for at most ``max_wait_s`` in all.

    Returns ``{"waited_s", "temp_before", "temp_after", "target_c", "gave_up", "reason"}``: ``gave_up`` is
    True when the target was not reached in time or no temperature is readable (``reason`` says which)."""
    before = read()
    waited = 0.0
    if pause_s > 0:
        sleep(pause_s)
        waited += pause_s
    temp = read() if pause_s > 0 else before
    gave_up, reason = False, ""
    if target_c is not None:
        while temp is not None and temp >= target_c:
            if waited >= max_wait_s:
                gave_up, reason = True, f"still {temp:.1f} C after {waited:.0f} s (target below {target_c:g} C)"
                break
            step = min(poll_s, max_wait_s - waited)
            sleep(step)
            waited += step
            temp = read()
        if temp is None:
            gave_up, reason = True, "no temperature readable: cannot wait for a target"
    return {"waited_s": waited, "temp_before": before, "temp_after": temp, "target_c": target_c,
            "gave_up": gave_up, "reason": reason}
