"""What the parent of ``accel watch`` knows at any moment, shared by the HTTP handlers, the worker's reader
and the terminal: the newest stream frame, the worker's figures and status, this machine's figures, and
who is watching. Only the newest frame is kept: each client sends the newest one when it is ready for it,
so a slow client skips frames and never holds anyone else back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Hub", "StreamFrame"]


@dataclass(frozen=True)
class StreamFrame:
    """One encoded stream frame: its sequence number (counting up across workers), JPEG bytes, details."""

    seq: int
    jpeg: bytes
    meta: dict[str, Any]
    received: float


class Hub:
    """Thread-safe state of one watch. ``on_viewers(n)`` is called whenever the number of viewers changes
    (stream clients plus snapshot requests waiting for a frame): the worker encodes only while n > 0."""

    def __init__(self, choices: Sequence[str], max_clients: int = 8,
                 on_viewers: Callable[[int], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.choices = list(choices)
        self.max_clients = max_clients
        self.on_viewers = on_viewers or (lambda n: None)
        self._clock = clock
        self._cond = threading.Condition()
        self._frame: StreamFrame | None = None
        self._seq = 0
        self._worker: dict[str, Any] = {}
        self._system: dict[str, Any] = {}
        self._status: dict[str, Any] = {"variant": None, "status": "starting", "error": None, "since": clock()}
        self._clients: set[socket.socket] = set()
        self._waiting = 0
        self.served = 0  # stream clients since the start
        self.closed = False

    # -- frames ------------------------------------------------------------------------------------------
    def put_frame(self, jpeg: bytes, meta: dict[str, Any]) -> None:
        with self._cond:
            self._seq += 1
            self._frame = StreamFrame(self._seq, jpeg, meta, self._clock())
            self._cond.notify_all()

    def frame(self) -> StreamFrame | None:
        with self._cond:
            return self._frame

    def wait_frame(self, after: int, timeout: float) -> StreamFrame | None:
        """The newest frame once it is newer than sequence number ``after``; None after ``timeout`` seconds
        or when the hub closes."""
        deadline = self._clock() + timeout
        with self._cond:
            while not self.closed and (self._frame is None or self._frame.seq <= after):
                left = deadline - self._clock()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return None if self.closed else self._frame

    def fresh_frame(self, max_age_s: float, timeout: float) -> StreamFrame | None:
        """A frame at most ``max_age_s`` old, waiting up to ``timeout`` for one (as a viewer meanwhile, so the
        worker encodes one): what ``/snapshot.jpg`` sends."""
        frame = self.frame()
        if frame is not None and self._clock() - frame.received <= max_age_s:
            return frame
        self._viewers(+1, waiting=True)
        try:
            return self.wait_frame(frame.seq if frame is not None else 0, timeout)
        finally:
            self._viewers(-1, waiting=True)

    # -- clients -----------------------------------------------------------------------------------------
    def join(self, sock: socket.socket) -> bool:
        """Count a stream client in; False when ``max_clients`` already stream (or the hub closed)."""
        with self._cond:
            if self.closed or len(self._clients) >= self.max_clients:
                return False
            self._clients.add(sock)
            self.served += 1
        self._viewers(0)
        return True

    def leave(self, sock: socket.socket) -> None:
        with self._cond:
            self._clients.discard(sock)
        self._viewers(0)

    @property
    def clients(self) -> int:
        with self._cond:
            return len(self._clients)

    @property
    def viewers(self) -> int:
        with self._cond:
            return len(self._clients) + self._waiting

    def _viewers(self, change: int, waiting: bool = False) -> None:
        with self._cond:
            if waiting:
                self._waiting += change
            n = len(self._clients) + self._waiting
        self.on_viewers(n)

    # -- figures -----------------------------------------------------------------------------------------
    def set_status(self, variant: str | None, status: str, error: str | None = None) -> None:
        """The worker's state: "starting", "running", "failed", "crashed", "timeout" or "stopped"."""
        with self._cond:
            if status == "starting":
                self._worker = {}
            self._status = {"variant": variant, "status": status, "error": error, "since": self._clock()}

    def put_worker(self, figures: dict[str, Any]) -> None:
        with self._cond:
            self._worker = {**self._worker, **figures}

    def put_system(self, figures: dict[str, Any]) -> None:
        with self._cond:
            self._system = dict(figures)

    def stats(self) -> dict[str, Any]:
        """Everything ``/stats.json`` gives: status, the worker's figures, the machine's, the stream's."""
        with self._cond:
            status, worker, system = dict(self._status), dict(self._worker), dict(self._system)
            frame, clients, served = self._frame, len(self._clients), self.served
        now = self._clock()
        status["for_s"] = round(now - status.pop("since"), 1)
        power = dict(system.get("power") or {})
        fps = worker.get("fps")
        if power.get("watts") is not None and status["status"] == "running" and fps:
            power["j_per_frame"] = round(power["watts"] / fps, 4)
        stream = {**worker.get("stream", {}), **worker.get("encode", {}), "clients": clients,
                  "max_clients": self.max_clients, "served": served,
                  "last_frame_age_s": round(now - frame.received, 2) if frame is not None else None}
        return {**status, "choices": self.choices, **{k: v for k, v in worker.items() if k not in ("stream", "encode")},
                "system": {k: v for k, v in system.items() if k != "power"}, "power": power, "stream": stream}

    def close(self) -> None:
        """Wake every waiting client and cut the connections of those still streaming."""
        with self._cond:
            self.closed = True
            clients = list(self._clients)
            self._cond.notify_all()
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
