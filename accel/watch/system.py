"""This machine's figures while watching, sampled once a second in the parent: CPU per core, the worker's
and this process's CPU and memory (this process's CPU is what serving costs), temperature and the Pi
firmware's throttling flags, and power from the configured meter (``[power] meter`` as ``accel compare``
picks it). Only the newest values are kept."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from accel.core.errors import PowerError
from accel.plan.config import Config
from accel.power import PowerMeter, Reading
from accel.power.sampler import mean_watts

__all__ = ["SystemProbe", "open_live_meter"]


def open_live_meter(config: Config) -> tuple[PowerMeter | None, str]:
    """The meter ``[power] meter`` names, opened and checked as ``accel compare`` opens it
    (``accel.compare.instruments.select_meter``), or None and why: "none", nothing found by "auto", or a meter that
    is only a log read after a run (``csv``), which cannot give live figures."""
    from accel.compare.instruments import select_meter

    meter, why = select_meter(config)
    if meter is not None and meter.kind == "log":
        meter.close()
        return None, f"meter {meter.name!r} is a log read after a run; accel watch needs a live meter"
    return meter, why or (meter.name if meter is not None else "no meter")


class _Watts:
    """Watts from a meter's readings: as read (a power meter) or from an energy counter's differences."""

    def __init__(self) -> None:
        self._last: Reading | None = None

    def __call__(self, reading: Reading) -> float | None:
        if reading.watts is not None:
            return reading.watts
        last, self._last = self._last, reading
        if last is None or reading.t <= last.t:
            return None
        return mean_watts([last, reading], last.t, reading.t)  # the counter's difference, as compare takes it


class SystemProbe:
    """Samples every ``interval_s`` on a thread and hands the figures to ``put(figures)``; ``worker_pid()``
    says which process is the detector's now."""

    def __init__(self, put: Callable[[dict[str, Any]], None], worker_pid: Callable[[], int | None],
                 meter: PowerMeter | None = None, why: str = "no meter", interval_s: float = 1.0) -> None:
        import psutil

        self._psutil = psutil
        self.put, self.worker_pid, self.meter, self.why = put, worker_pid, meter, why
        self.interval_s = max(interval_s, meter.min_interval_s if meter is not None else 0.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me = psutil.Process(os.getpid())
        self._worker: Any = None
        self._watts = _Watts()

    def start(self) -> SystemProbe:
        self._me.cpu_percent()
        self._psutil.cpu_percent(percpu=True)
        self._thread = threading.Thread(target=self._run, name="watch-system", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.put(self.sample())

    def _worker_usage(self) -> tuple[float | None, float | None]:
        pid = self.worker_pid()
        if pid is None:
            return None, None
        try:
            if self._worker is None or self._worker.pid != pid:
                self._worker = self._psutil.Process(pid)
                self._worker.cpu_percent()
                return None, self._worker.memory_info().rss / 2**20
            return self._worker.cpu_percent(), self._worker.memory_info().rss / 2**20
        except self._psutil.Error:  # it ended between two samples
            self._worker = None
            return None, None

    def sample(self) -> dict[str, Any]:
        """One sample now (CPU figures since the previous one)."""
        from accel.power.thermal import decode_throttled, read_throttled, soc_temperature_c

        worker_cpu, worker_rss = self._worker_usage()
        throttled = read_throttled()
        figures: dict[str, Any] = {
            "cpu_cores": self._psutil.cpu_percent(percpu=True),
            "worker_cpu": worker_cpu, "worker_rss_mb": worker_rss,
            "server_cpu": self._me.cpu_percent(), "server_rss_mb": self._me.memory_info().rss / 2**20,
            "temp_c": soc_temperature_c(), "throttled": hex(throttled) if throttled is not None else None,
            "throttled_flags": decode_throttled(throttled) if throttled is not None else None,
            "t": time.monotonic(),
        }
        figures["power"] = self._power()
        return figures

    def _power(self) -> dict[str, Any]:
        if self.meter is None:
            return {"watts": None, "why": self.why}
        try:
            watts = self._watts(self.meter.read())
        except PowerError as exc:
            return {"watts": None, "why": f"{self.meter.name}: {exc}"}
        return {"watts": round(watts, 3) if watts is not None else None, "meter": self.meter.name,
                "estimated": self.meter.estimated, "why": None if watts is not None else "first reading"}
