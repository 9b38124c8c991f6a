"""The variant being watched: one worker process at a time. Switching stops it and starts the new choice in
a fresh process, so what one delegate did (a crash, a leak, a wedged driver) never reaches the next; the
hub says "crashed" or "failed" with why, and the page and the server stay up."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from accel.watch.choices import Choice, find
from accel.watch.detector import Watched
from accel.watch.hub import Hub
from accel.watch.process import Message, WorkerProcess

__all__ = ["Session"]


class Session:
    """Owns the worker; ``job_for(choice)`` makes the job a choice runs."""

    def __init__(self, hub: Hub, options: Sequence[Choice], job_for: Callable[[Choice], Watched],
                 startup_s: float | None = None) -> None:
        self.hub, self.options, self.job_for = hub, list(options), job_for
        self.startup_s = startup_s
        self.choice: Choice | None = None
        self.worker: WorkerProcess | None = None
        self._switching = threading.Lock()  # one switch at a time, in the order asked
        self._state = threading.Lock()
        self._generation = 0
        self._status = "starting"
        self._closed = False
        self._threads: list[threading.Thread] = []
        hub.on_viewers = self._viewers

    @property
    def worker_pid(self) -> int | None:
        worker = self.worker
        return worker.pid if worker is not None else None

    def start(self, choice: Choice) -> None:
        """Run ``choice`` now (stopping the worker before it, if any); returns once its process started."""
        with self._switching:
            if self._closed:
                return
            with self._state:
                old, self.worker = self.worker, None
                self._generation += 1
                generation = self._generation
                self.choice, self._status = choice, "starting"
            self.hub.set_status(choice.label, "starting")
            if old is not None:
                old.stop()
            kwargs: dict[str, Any] = {} if self.startup_s is None else {"startup_s": self.startup_s}
            worker = WorkerProcess(self.job_for(choice), lambda msg: self._message(generation, msg),
                                   lambda status, why: self._end(generation, status, why), **kwargs)
            with self._state:
                self.worker = worker
            try:
                worker.start(self.hub.viewers)
            except OSError as exc:  # no process could be started (out of memory, too many processes)
                with self._state:
                    self.worker, self._status = None, "failed"
                worker.stop()
                self.hub.set_status(choice.label, "failed", f"the worker could not be started: {exc}")

    def switch(self, label: str) -> Choice:
        """Start the choice ``label`` names in the background and return it; ``LookupError`` for a label
        that is not a configured choice. The running choice is not restarted unless it ended."""
        choice = find(self.options, label)
        if choice is None:
            raise LookupError(label)
        with self._state:
            same = choice == self.choice and self._status in ("starting", "running")
        if not same:
            thread = threading.Thread(target=self.start, args=(choice,), name="watch-switch", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        return choice

    def _viewers(self, n: int) -> None:
        worker = self.worker
        if worker is not None:
            worker.set_viewers(n)

    def _message(self, generation: int, msg: Message) -> None:
        if generation != self._generation:
            return  # a worker being replaced: what it still says is no one's
        kind, label = msg[0], self.choice.label if self.choice else None
        if kind == "ready":
            info = dict(msg[1])
            self.hub.put_worker({"stream": info.pop("stream"), "ready": info})
            with self._state:
                self._status = "running"
            self.hub.set_status(label, "running")
        elif kind == "stats":
            self.hub.put_worker(msg[1])
        elif kind == "frame":
            self.hub.put_frame(msg[1], msg[2])

    def _end(self, generation: int, status: str, why: str | None) -> None:
        with self._state:
            if generation != self._generation or status == "stopped":
                return
            self._status = status
        self.hub.set_status(self.choice.label if self.choice else None, status, why)

    def close(self) -> None:
        """Stop the worker and any switch in progress; idempotent."""
        with self._state:
            self._closed = True
        for thread in self._threads:
            thread.join(timeout=30)
        with self._switching:
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()
