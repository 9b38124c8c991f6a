"""The parent's side of a watch worker: one ``Watched`` job in a process of its own (``accel.watch.child``), as
``accel.run.worker`` runs a compared variant, so a delegate that segfaults or aborts ends only that process and
the parent says "crashed: signal 11 (SIGSEGV)" with what the driver printed.

The worker starts in a session of its own: Ctrl-C in the terminal and an SSH hang-up reach the parent
only, which then stops the worker in order (the camera released, the runtime closed), and kills it if it
does not stop in time. A worker whose parent dies sees its connection close and stops too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from accel.delegates import REGISTRY as DELEGATES
from accel.run.worker import MALLOC_ENV, describe_signal, last_lines, read_log
from accel.watch.detector import Watched

__all__ = ["WorkerProcess"]

_STARTUP_S = 120.0  # spawning Python and importing a runtime on a slow Pi SD card
_STOP_S = 10.0  # a worker told to stop finishes its frame and closes the camera and runtime within this

Message = tuple[Any, ...]


class WorkerProcess:
    """Runs ``job`` in a child process. ``on_message(msg)`` gets every message the worker sends (see
    ``accel.watch.child``); ``on_end(status, why)`` is called once when the worker ends: status "stopped"
    (asked to), "failed" (the variant raised), "crashed" (died), or "timeout" (no first frame in time)."""

    def __init__(self, job: Watched, on_message: Callable[[Message], None], on_end: Callable[[str, str | None], None],
                 startup_s: float = _STARTUP_S) -> None:
        self.job, self.on_message, self.on_end = job, on_message, on_end
        self.startup_s = startup_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._stopping = False
        self._failure: str | None = None
        self._timed_out = False
        self._reader: threading.Thread | None = None
        # What the runtime prints goes to a file no one else sees, already unlinked: nothing is left behind,
        # even when this process is killed; read back through /proc when the worker dies.
        self._log = tempfile.TemporaryFile(prefix="accel-watch-", suffix=".log")  # closed in stop()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, viewers: int = 0) -> WorkerProcess:
        ours, theirs = socket.socketpair()
        env = {**os.environ, **{k: os.environ.get(k) or v for k, v in MALLOC_ENV.items()}}
        self.proc = subprocess.Popen([sys.executable, "-m", "accel.watch.child", str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log, env=env, start_new_session=True)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._reader = threading.Thread(target=self._read, name="watch-worker-reader", daemon=True)
        self.send((list(sys.path), DELEGATES.by_hand()))
        self.send(self.job)
        self.send(("viewers", viewers))
        self._reader.start()
        return self

    def send(self, msg: Any) -> None:
        """Send to the worker; a worker that is gone is noticed by the reader, not here."""
        conn = self._conn
        if conn is None:
            return
        try:
            with self._send_lock:
                conn.send(msg)
        except (OSError, EOFError, ValueError):
            pass

    def set_viewers(self, n: int) -> None:
        self.send(("viewers", n))

    def _read(self) -> None:
        assert self._conn is not None and self.proc is not None
        deadline = time.monotonic() + self.startup_s
        ready = False
        while True:
            try:
                if not self._conn.poll(0.25):
                    if not ready and not self._stopping and time.monotonic() > deadline:
                        self._timed_out = True
                        self.proc.kill()
                    continue
                msg = self._conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "started":
                deadline = time.monotonic() + self.job.settings.timeout_s
            elif msg[0] == "ready":
                ready = True
            elif msg[0] == "failed":
                self._failure = msg[1]
            self.on_message(msg)
        try:
            code = self.proc.wait(timeout=_STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.on_end(*self._outcome(code))

    def _outcome(self, code: int) -> tuple[str, str | None]:
        if self._stopping:
            return "stopped", None
        if self._failure is not None and not self._timed_out:
            return "failed", self._failure
        said = last_lines(read_log(self._log))  # the log is read only when it says why: it grows as long as it runs
        printed = f"; it printed: {said}" if said else ""
        if self._timed_out:
            return "timeout", (f"no first frame after {self.job.settings.timeout_s:g} s (raise pipeline.timeout_s "
                               f"for slow backends){printed}")
        if code < 0:
            return "crashed", f"{describe_signal(code)}{printed}"  # after the status: "crashed: signal 11 (SIGSEGV)"
        return "crashed", f"the worker exited with code {code}{printed}"

    def stop(self, timeout_s: float = _STOP_S) -> None:
        """Ask the worker to stop, kill it if it has not within ``timeout_s``, and clean up (idempotent)."""
        if self.proc is None:
            self._log.close()
            return
        self._stopping = True
        self.send(("stop",))
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=_STOP_S + 5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._log.close()
