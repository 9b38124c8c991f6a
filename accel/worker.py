"""Each variant in its own process: delegates and vendor drivers crash (segfaults, aborts), and one
variant's memory must not count against the next. The parent records "crashed: signal 11" or a timeout
and goes on with the next variant.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from accel.delegates import REGISTRY as DELEGATES
from accel.delegates import Variant
from accel.errors import AccelError
from accel.frames import Frame
from accel.model import ModelInfo
from accel.pipeline import run_variant
from accel.record import Adapter, FrameLog, Measured, Outcome, Startup, Status
from accel.settings import Settings

__all__ = ["run_isolated"]

_STARTUP_S = 120.0  # spawning Python and importing a runtime on a slow Pi SD card
_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}


def _share(frames: list[Frame]) -> tuple[shared_memory.SharedMemory | None, list[tuple[Any, ...]]]:
    """Put the replay frames' pixels in one shared-memory block, so every child maps the same pages
    instead of receiving (and holding) a pickled copy."""
    total = sum(f.data.nbytes for f in frames)
    if total == 0:
        return None, []
    shm = shared_memory.SharedMemory(create=True, size=total)
    layout, offset = [], 0
    for f in frames:
        view = np.ndarray(f.data.shape, f.data.dtype, buffer=shm.buf, offset=offset)
        view[...] = f.data
        layout.append((offset, f.data.shape, f.data.dtype.str, replace(f, data=np.empty(0, np.uint8))))
        offset += f.data.nbytes
    return shm, layout


def _unshare(name: str | None, layout: list[tuple[Any, ...]]) -> tuple[Any, list[Frame]]:
    if name is None:
        return None, []
    shm = shared_memory.SharedMemory(name=name)
    frames = [replace(meta, data=np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=offset))
              for offset, shape, dtype, meta in layout]
    return shm, frames


def _child(conn: Connection, stderr_path: str, model: ModelInfo, variant: Variant, kernels: str, execution: str,
           shm_name: str | None, layout: list[tuple[Any, ...]], settings: Settings, plugins: dict[str, str]) -> None:
    # Runtime chatter ("INFO: Created TensorFlow Lite XNNPACK delegate") goes to a file the parent reads
    # back only when the child dies, so it can say what the driver printed.
    fd = os.open(stderr_path, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 2)
    os.close(fd)

    def progress(n: int, total: int) -> None:
        conn.send(("progress", n, total))

    def on_frame(kind: str, data: Any) -> None:
        conn.send((kind, data))

    shm, frames = _unshare(shm_name, layout)
    try:
        _register(plugins)
        conn.send(("started",))  # imports done: the variant's own time limit starts now
        conn.send(("result", Outcome.ok(run_variant(model, variant, kernels, frames, settings, progress, on_frame,
                                                    execution))))
    except AccelError as exc:
        conn.send(("result", Outcome.failed(exc)))
    except Exception as exc:  # a plugin bug: recorded with its traceback, never shown raw to the user
        conn.send(("result", replace(Outcome.failed(exc), traceback=traceback.format_exc())))
    finally:
        conn.close()
        del frames
        if shm is not None:
            shm.close()


def _register(plugins: dict[str, str]) -> None:
    """Delegates registered by hand in the parent ('module:Class'), registered again in the child."""
    import importlib

    from accel.delegates import REGISTRY

    for name, target in plugins.items():
        module, _, attr = target.partition(":")
        REGISTRY.register(name, getattr(importlib.import_module(module), attr))


def _adapter(path: str) -> Adapter | None:
    """The GPU adapter a runtime reported choosing (LiteRT's WebGPU accelerator prints "Selected adapter:
    NAME (...), arch=..., vendor=..., backend=Vulkan, adapterType=CPU / Software")."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh.read().splitlines() if "Selected adapter:" in ln]
    except OSError:
        return None
    if not lines:
        return None
    text = lines[-1].split("Selected adapter:", 1)[1].strip()
    fields = dict(part.split("=", 1) for part in text.split(", ") if "=" in part)
    return Adapter(text.split(", arch=")[0], fields.get("backend"), fields.get("adapterType"),
                   "software" in text.lower())


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = [ln.strip() for ln in fh.read().splitlines() if ln.strip() and not ln.startswith("INFO:")]
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _signal(code: int) -> str:
    name = signal.Signals(-code).name if -code in signal.Signals.__members__.values() else str(-code)
    return f"signal {-code} ({name})"


@dataclass
class _Streamed:
    """The frames a worker reported as it measured them: what a variant that crashes or hangs part-way
    still leaves behind (its stage timings and measured window up to the last frame)."""

    start: float | None = None
    startup: Startup | None = None
    log: FrameLog = field(default_factory=FrameLog)
    result: Outcome | None = None

    def take(self, msg: tuple[Any, ...], progress: Callable[[int, int], None] | None) -> None:
        kind = msg[0]
        if kind == "frame":
            self.log.add(*msg[1])
        elif kind == "window":
            self.start = msg[1]
        elif kind == "init":
            self.startup = msg[1]
        elif kind == "progress" and progress is not None:
            progress(msg[1], msg[2])
        elif kind == "result":
            self.result = msg[1]

    def drain(self, recv: Connection, progress: Callable[[int, int], None] | None) -> None:
        """Take what the worker sent before it died or was killed and the parent did not read yet."""
        try:
            while recv.poll(0):
                self.take(recv.recv(), progress)
        except (EOFError, OSError):
            pass

    def keep(self, status: Status, why: str) -> Outcome:
        """The outcome of a worker that failed, died or hung before reporting a measurement, with the
        start-up and the frames it streamed."""
        if self.start is None or not self.log:
            return Outcome(status, error=why, measured=Measured(startup=self.startup) if self.startup else None)
        timings = self.log.timings(self.start, self.log.ends[-1])
        return Outcome(status, error=f"{why} (after {len(self.log)} measured frames, whose timings are kept)",
                       measured=Measured(startup=self.startup, timings=timings), partial=True)


def run_isolated(model: ModelInfo, variant: Variant, kernels: str, frames: list[Frame], settings: Settings,
                 progress: Callable[[int, int], None] | None = None, execution: str = "serial") -> Outcome:
    """``run_variant`` in a spawned child process, with a timeout (``settings.timeout_s`` plus start-up).
    Delegates registered by hand in this process are registered again in the child."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile(prefix="accel-worker-", suffix=".log", delete=False) as log:
        stderr_path = log.name
    shm, layout = _share(frames)
    proc = ctx.Process(target=_child, daemon=True, args=(send, stderr_path, model, variant, kernels, execution,
                                                         shm and shm.name, layout, settings, DELEGATES.by_hand()))
    try:
        _start(proc)
        send.close()
        streamed = _Streamed()
        if not _collect(proc, recv, streamed, settings.timeout_s, progress):
            proc.kill()
            proc.join()
            streamed.drain(recv, progress)
            said = _tail(stderr_path)
            why = f"timed out after {settings.timeout_s:g} s (raise pipeline.timeout_s for slow backends)"
            return streamed.keep(Status.TIMEOUT, why + (f"; it printed: {said}" if said else ""))
        proc.join(timeout=30)
        streamed.drain(recv, progress)
        return _conclude(streamed, proc.exitcode, stderr_path)
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        os.unlink(stderr_path)
        if shm is not None:
            shm.close()
            shm.unlink()


def _start(proc: Any) -> None:
    """Start the worker with glibc's malloc thresholds pinned. glibc serves large allocations with mmap
    below an adaptive threshold that a fresh process has not raised yet: every frame's temporaries were then
    mapped and unmapped, making pre-processing ~60% slower in a worker than in a long-running process."""
    saved = {k: os.environ.get(k) for k in _MALLOC_ENV}
    os.environ.update({k: os.environ.get(k) or v for k, v in _MALLOC_ENV.items()})
    try:
        proc.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _collect(proc: Any, recv: Connection, streamed: _Streamed, timeout_s: float,
             progress: Callable[[int, int], None] | None) -> bool:
    """Read the worker's messages until its result, its death or its deadline (False: timed out). Until it
    says it started (Python and the runtime imported), a start-up grace applies."""
    deadline = time.monotonic() + _STARTUP_S
    while streamed.result is None:
        if time.monotonic() > deadline:
            return False
        if recv.poll(0.2):
            try:
                msg = recv.recv()
            except EOFError:
                break
            if msg[0] == "started":
                deadline = time.monotonic() + timeout_s
            streamed.take(msg, progress)
        elif not proc.is_alive():
            break
    return True


def _conclude(streamed: _Streamed, code: int | None, stderr_path: str) -> Outcome:
    said = _tail(stderr_path)
    printed = f"; it printed: {said}" if said else ""
    if streamed.result is not None and streamed.result.measured is None:  # it failed part-way: keep its frames
        kept = streamed.keep(streamed.result.status, streamed.result.error or "failed")
        streamed.result = replace(kept, traceback=streamed.result.traceback)
    if streamed.result is not None:
        result = replace(streamed.result, adapter=_adapter(stderr_path))
        if code is not None and code < 0:  # measured, then the runtime crashed while tearing down
            result = replace(result, teardown=f"crashed at exit: {_signal(code)}{printed}")
        return result
    why = _signal(code) if code is not None and code < 0 else \
        f"worker exited with code {code} before reporting"
    return streamed.keep(Status.CRASHED, why + printed)
