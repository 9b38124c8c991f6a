"""Measurement helpers: process/system CPU, memory, temperature and frequency.

Figures the OS does not expose are ``None`` (reported "n/a"), never guessed.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accel.core.jsonform import keeps_none


def cpu_temperature_c() -> float | None:
    """SoC/CPU temperature in degrees C: thermal_zone0 (millidegrees, as on a Pi), else psutil."""
    zone = Path("/sys/class/thermal/thermal_zone0/temp")
    try:
        return int(zone.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    try:
        import psutil

        temps = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        return None
    for key in ("cpu_thermal", "coretemp", "k10temp", "soc_thermal", "acpitz"):
        if temps.get(key):
            return float(temps[key][0].current)
    return None


def cpu_frequency_mhz() -> float | None:
    """Current CPU frequency in MHz where the OS exposes it (cpufreq), else None."""
    try:
        import psutil

        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, FileNotFoundError):
        return None
    return float(freq.current) if freq and freq.current else None


def _peak_rss_kib() -> int:
    """Peak resident memory of this process in KiB. Linux's VmHWM belongs to the address space, so it
    starts afresh in a spawned worker; ``ru_maxrss`` survives execve and would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclass
class _Snapshot:
    wall: float
    proc_cpu: float
    sys_busy: float
    sys_total: float


@keeps_none
@dataclass(frozen=True)
class Usage:
    """The variant process's CPU and memory over its window; temperature and clock where exposed."""

    process_cpu_percent: float | None = None
    system_cpu_percent: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    temperature_c: dict[str, float] | None = None  # {start, end, max}
    cpu_mhz: dict[str, float] | None = None  # {mean, min, max}
    cpu_cores_busy: list[float] | None = None  # % busy per core over the window: what is left for the app


class UsageMeter:
    """CPU use of this process and of the whole system over a window, plus memory.

    ``start()`` and ``stop()`` bracket the measured window; process CPU % is (user + system time) / wall
    and can exceed 100 with several threads; system CPU % is busy time / all time over every core.
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(os.getpid())
        self._start: _Snapshot | None = None
        self._temps: list[float] = []
        self._freqs: list[float] = []
        self._cores: list[Any] = []

    def _snap(self) -> _Snapshot:
        t = self._proc.cpu_times()
        s = self._psutil.cpu_times()
        total = sum(s)
        idle = s.idle + getattr(s, "iowait", 0.0)
        return _Snapshot(time.perf_counter(), t.user + t.system, total - idle, total)

    def start(self) -> None:
        self._start = self._snap()
        self._cores = self._psutil.cpu_times(percpu=True)
        self.sample()

    def sample(self) -> None:
        """Record temperature and frequency now (called a few times per window, cheap)."""
        temp, freq = cpu_temperature_c(), cpu_frequency_mhz()
        if temp is not None:
            self._temps.append(temp)
        if freq is not None:
            self._freqs.append(freq)

    def stop(self) -> Usage:
        assert self._start is not None, "start() first"
        self.sample()
        end, begin = self._snap(), self._start
        wall = max(end.wall - begin.wall, 1e-9)
        sys_total = end.sys_total - begin.sys_total
        peak_kib = _peak_rss_kib()
        return Usage(
            process_cpu_percent=100.0 * (end.proc_cpu - begin.proc_cpu) / wall,
            system_cpu_percent=(100.0 * (end.sys_busy - begin.sys_busy) / sys_total) if sys_total > 0 else None,
            rss_mb=self._proc.memory_info().rss / 2**20,
            peak_rss_mb=peak_kib / 1024.0,
            temperature_c={"start": self._temps[0], "end": self._temps[-1], "max": max(self._temps)}
            if self._temps else None,
            cpu_mhz={"mean": float(np.mean(self._freqs)), "min": min(self._freqs), "max": max(self._freqs)}
            if self._freqs else None,
            cpu_cores_busy=cores_busy(self._cores, self._psutil.cpu_times(percpu=True)),
        )


def cores_busy(before: Sequence[Any], after: Sequence[Any]) -> list[float] | None:
    """Per-core % busy between two ``psutil.cpu_times(percpu=True)`` readings: 100 x (1 - idle share of
    the core's time), idle counting iowait. None when the OS reports no per-core times."""
    if not before or len(before) != len(after):
        return None
    out = []
    for a, b in zip(before, after, strict=True):
        total = sum(b) - sum(a)
        idle = (b.idle + getattr(b, "iowait", 0.0)) - (a.idle + getattr(a, "iowait", 0.0))
        out.append(round(100.0 * (1.0 - idle / total), 1) if total > 0 else 0.0)
    return out
