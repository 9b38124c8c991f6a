"""Stages as concurrent threads joined by bounded queues, the way a camera application runs them: while the
network runs on frame N, the CPU converts frame N+1 and decodes frame N-1.

``run_stages`` knows nothing of models or kernels: a ``read`` callable yields frames, each ``Stage`` has one
callable per worker thread (several for ``inference_streams``), and ``sink`` receives the finished items in
frame order and says when to stop. Each item records the span of every stage it went through on ``clock``.
The numpy, OpenCV, OpenCL and LiteRT calls inside the stages release the GIL, so the threads overlap; a
kernel set whose work is Python-level loops does not, and the figures show it.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item", "Stage", "run_stages"]

_POLL_S = 0.05  # how often a blocked thread looks whether the run is over


@dataclass
class Item:
    """One frame going through the stages: when it was captured (monotonic seconds), the span of each stage
    ``{stage: (start, end)}``, and what the previous stage left for the next (``data``)."""

    index: int
    frame: Any
    captured: float
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    data: Any = None


@dataclass(frozen=True)
class Stage:
    """A named stage: one callable per worker thread, each taking an item and setting its ``data``."""

    name: str
    workers: Sequence[Callable[[Item], None]]


class _Stop(Exception):
    pass


class _Run:
    """The shared state of one run: the stop flag, the first error, and bounded hand-offs."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.stop.set()

    def put(self, q: queue.Queue[Item], item: Item) -> None:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise _Stop

    def get(self, q: queue.Queue[Item]) -> Item:
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        raise _Stop


def run_stages(read: Callable[[int], tuple[Any, float]], stages: Sequence[Stage], sink: Callable[[Item], bool],
               *, depth: int = 2, clock: Callable[[], float] = time.monotonic, join_s: float = 30.0) -> None:
    """Run until ``sink`` returns False (or a stage raises, re-raised here). ``read(i)`` returns frame i and
    its capture time on ``clock``; it runs on a capture thread ahead of the first stage. Between the stages
    are queues of ``depth`` items, so a slow stage holds the others back instead of piling frames up."""
    run = _Run()
    queues: list[queue.Queue[Item]] = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=_capture, args=(run, read, queues[0]), name="capture", daemon=True)]
    for k, stage in enumerate(stages):
        for w, work in enumerate(stage.workers):
            threads.append(threading.Thread(target=_work, args=(run, stage.name, work, queues[k], queues[k + 1],
                                                                clock), name=f"{stage.name}-{w}", daemon=True))
    for t in threads:
        t.start()
    try:
        _collect(run, queues[-1], sink)
    finally:
        run.stop.set()
        for t in threads:
            t.join(timeout=join_s)
    if run.error is not None:
        raise run.error


def _capture(run: _Run, read: Callable[[int], tuple[Any, float]], out: queue.Queue[Item]) -> None:
    i = 0
    try:
        while not run.stop.is_set():
            frame, captured = read(i)
            run.put(out, Item(i, frame, captured))
            i += 1
    except _Stop:
        pass
    except BaseException as exc:  # noqa: B036 - whatever a source raises ends the run and is re-raised there
        run.fail(exc)


def _work(run: _Run, name: str, work: Callable[[Item], None], inbox: queue.Queue[Item], out: queue.Queue[Item],
          clock: Callable[[], float]) -> None:
    try:
        while True:
            item = run.get(inbox)
            start = clock()
            work(item)
            item.spans[name] = (start, clock())
            run.put(out, item)
    except _Stop:
        pass
    except BaseException as exc:  # noqa: B036 - a stage's error ends the run and is re-raised there
        run.fail(exc)


def _collect(run: _Run, inbox: queue.Queue[Item], sink: Callable[[Item], bool]) -> None:
    """Hand finished items to ``sink`` in frame order (parallel inference streams finish out of order)."""
    pending: list[tuple[int, Item]] = []
    expected = 0
    try:
        while True:
            item = run.get(inbox)
            heapq.heappush(pending, (item.index, item))
            while pending and pending[0][0] == expected:
                _, ready = heapq.heappop(pending)
                expected += 1
                if not sink(ready):
                    return
    except _Stop:
        return
