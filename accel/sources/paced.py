"""A source that delivers frames at a rate from its own thread, as a camera does: ``PacedSource``.

In live mode the synthetic scenes, picture folders and video files stand in for a camera, so they should
behave like one: frames arrive at the camera's rate whether or not anyone is ready for them, and a
consumer that falls behind finds old frames gone, not an ever-growing queue. ``PacedSource`` wraps any
``Source``: a producer thread reads frame k from the wrapped source when it is due, at ``t0 + k / fps``,
stamps it with that time and puts it in a buffer holding the newest ``buffer_count`` frames (Picamera2's
request queue: completed requests wait there until the application takes them; when all buffers are in
use the oldest completed one is recycled).

The scheduling is a pure step, ``tick()``, on an injected clock, so tests drive it with a manual clock and
scripted read costs without starting the thread (the design of ``accel.power.sampler.Sampler``).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from accel.core.errors import SourceError
from accel.core.frames import Frame, PixelFormat
from accel.sources import Source

__all__ = ["DEFAULT_FPS", "PacedSource"]

#: The rate of the synthetic scenes and picture folders when none is given (``source_fps = 0``).
DEFAULT_FPS = 30.0


class PacedSource:
    """``inner``'s frames delivered at ``fps`` into a buffer of the newest ``buffer_count``.

    Frame k is due at ``t0 + k / fps`` on ``clock`` (monotonic seconds; ``t0`` is the first ``tick``). It
    is read from ``inner`` then, its ``timestamp`` set to its due time (as a camera stamps the start of a
    frame, not the moment an application looks at it; ``index``, ``capture_s`` and ``truth`` stay
    ``inner``'s) and appended to the buffer. A full buffer drops its oldest frame: ``dropped`` counts
    those, frames delivered that no ``read`` took.

    Late frames: when reading ``inner`` takes longer than a frame interval (a big synthetic scene, a slow
    decoder), the next tick finds several frames due. Only the newest of them is produced, stamped with
    its own due time; the earlier ones are *skipped*, like a sensor that keeps exposing at its fixed
    rate while the frames it has no buffer for are lost. So timestamps always lie on the ``1 / fps`` grid,
    the producer never bunches up a backlog, and its rate settles at the grid rate just below what
    ``inner`` can give. ``skipped`` counts them; they are not in ``dropped``, which says that the
    consumer fell behind, whereas ``skipped`` says that the source could not keep its own rate.

    ``read`` returns the oldest buffered frame (completed camera requests are handed out in order) and
    blocks while the buffer is empty and the producer runs. When the producer has failed (``inner.read``
    raised: a video's end without looping, a decoding error), the frames already buffered are returned
    first, then ``read`` raises ``SourceError`` with the producer's error. After ``close`` it raises
    ``SourceError``, also in a ``read`` that was waiting. Without a running producer (never started, or
    driven by ``tick`` alone) and an empty buffer, ``read`` raises instead of waiting forever.

    ``start()`` starts the producer thread, which runs ``run`` (``open_source`` returns the source started;
    ``with`` starts it too). Between ticks the thread calls ``wait(seconds)`` until the next due time; by
    default that waits on an event that ``close`` sets, so closing never waits out a frame interval. Give
    ``clock`` and ``wait`` together: a started source's clock must run at the speed of real seconds.
    """

    def __init__(self, inner: Source, fps: float, buffer_count: int = 4, *,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], object] | None = None) -> None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise SourceError(f"paced source: fps must be a number > 0, got {fps!r}")
        if isinstance(buffer_count, bool) or not isinstance(buffer_count, int) or buffer_count < 1:
            raise SourceError(f"paced source: buffer_count must be a whole number >= 1, got {buffer_count!r}")
        self.inner = inner
        self.name: str = inner.name
        self.format: PixelFormat = inner.format
        self.width: int = inner.width
        self.height: int = inner.height
        self.fps = float(fps)
        self.buffer_count = buffer_count
        self._clock = clock
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._cond = threading.Condition()
        self._buffer: collections.deque[Frame] = collections.deque()
        self._t0: float | None = None
        self._next = 0  # the number of the next frame to be due
        self._delivered = self._dropped = self._skipped = self._taken = 0
        self._error: BaseException | None = None
        self._closed = False
        self._producing = False  # the thread is in its loop (readers may wait for it)
        self._thread: threading.Thread | None = None

    # -- counters (read under the lock: the producer thread updates them) --------------------------------
    @property
    def delivered(self) -> int:
        """Frames produced into the buffer so far."""
        with self._cond:
            return self._delivered

    @property
    def dropped(self) -> int:
        """Frames dropped from a full buffer before any ``read`` took them."""
        with self._cond:
            return self._dropped

    @property
    def skipped(self) -> int:
        """Frames whose due time passed while the producer was still busy with an earlier one."""
        with self._cond:
            return self._skipped

    @property
    def taken(self) -> int:
        """Frames returned by ``read``."""
        with self._cond:
            return self._taken

    def due(self, k: int) -> float:
        """The clock time frame ``k`` is due (needs a first ``tick``)."""
        if self._t0 is None:
            raise SourceError("paced source: no frame is due before the first tick")
        return self._t0 + k / self.fps

    # -- producing ---------------------------------------------------------------------------------------
    def tick(self) -> float:
        """Produce the frame due most recently by ``clock()`` (none when none is due), skipping earlier due
        frames that were never produced; return the clock time the next frame is due (``inf`` once closed
        or failed). The producer thread calls this in a loop; tests call it at the times they choose."""
        with self._cond:
            if self._closed or self._error is not None:
                return math.inf
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        newest = self._newest_due(now)
        if newest >= self._next:
            self._produce(newest)
        with self._cond:
            return math.inf if self._error is not None else self.due(self._next)

    def _newest_due(self, now: float) -> int:
        """The largest k with ``due(k) <= now``, computed on the same expression as ``due`` (no rounding
        slip at exact due times)."""
        k = math.floor((now - self.due(0)) * self.fps)
        if self.due(k + 1) <= now:
            k += 1
        while k >= 0 and self.due(k) > now:
            k -= 1
        return k

    def _produce(self, k: int) -> None:
        try:
            frame = self.inner.read()
        except Exception as exc:  # the producer stops; readers get the buffered frames, then this error
            with self._cond:
                self._error = exc
                self._cond.notify_all()
            return
        frame = dataclasses.replace(frame, timestamp=self.due(k))
        with self._cond:
            self._skipped += k - self._next
            self._next = k + 1
            if len(self._buffer) >= self.buffer_count:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(frame)
            self._delivered += 1
            self._cond.notify_all()

    def run(self) -> None:
        """The producer loop the thread runs (``start``): ``tick``, then ``wait`` until the next frame is
        due, until closed or failed. Called directly it runs in the caller's thread (tests do, with a manual
        clock and a ``wait`` that moves it)."""
        try:
            while not self._stop.is_set():
                due = self.tick()
                if due == math.inf:
                    return
                self._wait(max(0.0, due - self._clock()))
        except Exception as exc:  # a failing clock or wait: readers must not wait for a dead thread
            with self._cond:
                self._error = self._error or exc
        finally:
            with self._cond:
                self._producing = False
                self._cond.notify_all()

    # -- consuming ---------------------------------------------------------------------------------------
    def read(self) -> Frame:
        """The oldest buffered frame, waiting for one while the producer runs. ``SourceError`` once closed,
        or when the producer failed and the buffer is empty (with the producer's error)."""
        with self._cond:
            while True:
                if self._closed:
                    raise SourceError(f"{self._what()} is closed")
                if self._buffer:
                    self._taken += 1
                    return self._buffer.popleft()
                if self._error is not None:
                    raise SourceError(f"{self._what()}: its producer stopped: {self._error}") from self._error
                if not self._producing:
                    raise SourceError(f"{self._what()}: no frame buffered and its producer is not running "
                                      "(start() it, or use it in a with block)")
                self._cond.wait()

    def _what(self) -> str:
        return f"{self.inner.name} source paced at {self.fps:g} fps"

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the producer thread (once; later calls do nothing). Returns the source."""
        if self._thread is None and not self._closed:
            self._producing = True
            self._thread = threading.Thread(target=self.run, name=f"accel-paced-{self.inner.name}", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the producer, wake any waiting ``read`` with ``SourceError`` and close ``inner`` (once)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # inner is never closed under a read in progress
        self.inner.close()

    def describe(self) -> dict[str, Any]:
        """``inner``'s description (its own rate, if it has one, as ``native_fps``) with ``paced``, ``fps``,
        ``buffer_count`` and the counters ``delivered``, ``dropped``, ``skipped``."""
        described = dict(self.inner.describe())
        if "fps" in described:
            described["native_fps"] = described.pop("fps")
        with self._cond:
            counts = {"delivered": self._delivered, "dropped": self._dropped, "skipped": self._skipped}
        return {**described, "paced": True, "fps": self.fps, "buffer_count": self.buffer_count, **counts}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
