"""Figures over the last few seconds of a run that never ends: a sliding window, bounded in time and in
count, so memory stays flat however long ``accel watch`` runs."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from accel.results.record import StageStats

__all__ = ["Window"]

_MAX_ITEMS = 4096


@dataclass(frozen=True)
class _Frame:
    end: float
    stages: dict[str, float]
    e2e: float
    age: float | None
    detections: int


@dataclass(frozen=True)
class _Encode:
    end: float
    seconds: float
    nbytes: int


def _ms(values: list[float]) -> dict[str, float] | None:
    """Mean, p50 and p90 of durations in seconds, in ms (``StageStats``, as compare computes them)."""
    if not values:
        return None
    stats = StageStats.of(values)
    return {key: round(float(getattr(stats, key)), 3) for key in ("mean", "p50", "p90")}


class Window:
    """The frames finished and the stream frames encoded in the last ``span_s`` seconds (thread-safe:
    the detector adds frames, the encoder adds encodes, another thread summarises)."""

    def __init__(self, span_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.span_s, self._clock = span_s, clock
        self._frames: collections.deque[_Frame] = collections.deque(maxlen=_MAX_ITEMS)
        self._encodes: collections.deque[_Encode] = collections.deque(maxlen=_MAX_ITEMS)
        self._lock = threading.Lock()
        self.total = 0
        self.encoded = 0
        self.started: float | None = None

    def add(self, end: float, stages: dict[str, float], e2e: float, age: float | None, detections: int) -> None:
        """One finished frame: when (``clock`` seconds), its stage seconds, capture-to-answer seconds, its
        age when preprocessing took it, and how many detections it had."""
        with self._lock:
            if self.started is None:
                self.started = end
            self._frames.append(_Frame(end, stages, e2e, age, detections))
            self.total += 1
            self._trim(end)

    def add_encode(self, end: float, seconds: float, nbytes: int) -> None:
        """One stream frame drawn and encoded in ``seconds``, ``nbytes`` of JPEG."""
        with self._lock:
            self._encodes.append(_Encode(end, seconds, nbytes))
            self.encoded += 1
            self._trim(end)

    def _trim(self, now: float) -> None:
        horizon = now - self.span_s
        for items in (self._frames, self._encodes):
            while items and items[0].end < horizon:
                items.popleft()

    def summary(self) -> dict[str, Any]:
        """FPS, per-stage ms (mean), end-to-end and age ms (mean, p50, p90), detections per frame, and the
        encode stage (ms, rate, KB) over the window; ``frames``: every frame since the start."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            frames, encodes = list(self._frames), list(self._encodes)
            total, started = self.total, self.started
        elapsed = min(self.span_s, now - started) if started is not None else 0.0
        stages: dict[str, list[float]] = {}
        for f in frames:
            for name, seconds in f.stages.items():
                stages.setdefault(name, []).append(seconds)
        stage_ms = {name: round(float(np.mean(v)) * 1e3, 3) for name, v in stages.items()}
        if encodes:
            stage_ms["encode"] = round(float(np.mean([e.seconds for e in encodes])) * 1e3, 3)
        ages = [f.age for f in frames if f.age is not None]
        counts = [f.detections for f in frames]
        return {
            "fps": round(len(frames) / elapsed, 2) if elapsed > 0 else 0.0,
            "frames": total,
            "stage_ms": stage_ms,
            "e2e_ms": _ms([f.e2e for f in frames]),
            "age_ms": _ms(ages),
            "detections": {"last": counts[-1] if counts else None,
                           "mean": round(float(np.mean(counts)), 2) if counts else None},
            "encode": {"ms": stage_ms.get("encode"), "fps": round(len(encodes) / elapsed, 2) if elapsed > 0 else 0.0,
                       "kb": round(float(np.mean([e.nbytes for e in encodes])) / 1024, 1) if encodes else None,
                       "frames": self.encoded},
        }
