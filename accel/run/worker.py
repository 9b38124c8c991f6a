"""Each variant in its own process: delegates and vendor drivers crash (segfaults, aborts), and one
variant's memory must not count against the next. The parent records "crashed: signal 11" or a timeout
and goes on with the next variant.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing as mp
import os
import pickle
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from accel.core.errors import AccelError
from accel.core.frames import Frame
from accel.delegates import REGISTRY as DELEGATES
from accel.plan.job import Job
from accel.results.record import Adapter, FrameLog, Measured, Outcome, Startup, Status
from accel.run.interrupt import Interrupted
from accel.run.pipeline import run_job

__all__ = ["MALLOC_ENV", "adapter_of", "describe_signal", "last_lines", "read_log", "register_plugins", "run_isolated"]

_STARTUP_S = 120.0  # spawning Python and importing a runtime on a slow Pi SD card
_DRAIN_S = 1.0  # past its deadline, how long what a worker sent in time is still read
# The environment a worker runs in, beside the parent's: glibc keeps large buffers (frames, tensors) mapped
# rather than growing and trimming the heap every frame. accel watch starts its worker with it too.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}
_PARENT_HANDLES = (signal.SIGINT, signal.SIGHUP)  # the parent stops the worker on these (see _die_with_parent)


class _Fd:
    """A file descriptor handed to a spawned worker: multiprocessing passes it at spawn time, under the same
    number, as it does a Pipe's; the worker receives the number."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return _received, (reduction.DupFd(self.fd),)


def _received(dup: Any) -> int:
    return int(dup.detach())


def _anonymous_file() -> int:
    """A file with no name anywhere (a memfd; else a file unlinked at once): it is freed when the last process
    holding it exits, however that process ends, so nothing is left in /dev/shm after a SIGKILL."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):  # a kernel or sandbox without memfd_create
            return os.memfd_create("accel-replay-frames", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="accel-replay-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.unlink(path)
    return fd


@dataclass(frozen=True)
class _Shared:
    """The replay frames as a worker receives them: the shared file (``fd``: an ``_Fd`` in the parent, the
    descriptor's number once the child has it; None: no frames), its size, and each frame's place in it
    (offset, shape, dtype, the frame without its pixels)."""

    fd: Any
    size: int = 0
    layout: tuple[tuple[Any, ...], ...] = ()


def _share(frames: list[Frame]) -> tuple[int | None, _Shared]:
    """Put the replay frames' pixels in one anonymous shared file, so every child maps the same pages
    instead of receiving (and holding) a pickled copy. Returns its descriptor and what a child is sent."""
    total = sum(f.data.nbytes for f in frames)
    if total == 0:
        return None, _Shared(None)
    fd = _anonymous_file()
    layout, offset = [], 0
    try:
        os.ftruncate(fd, total)
        with mmap.mmap(fd, total) as mm:
            for f in frames:
                view = np.ndarray(f.data.shape, f.data.dtype, buffer=mm, offset=offset)
                view[...] = f.data
                del view  # the mapping closes only once no array uses it
                layout.append((offset, f.data.shape, f.data.dtype.str, replace(f, data=np.empty(0, np.uint8))))
                offset += f.data.nbytes
    except BaseException:
        os.close(fd)
        raise
    return fd, _Shared(_Fd(fd), total, tuple(layout))


def _unshare(shared: _Shared) -> tuple[mmap.mmap | None, list[Frame]]:
    """The replay frames over a private (copy-on-write) mapping of the parent's shared file: the pages are
    shared until a variant writes into a frame, which then changes only its own copy."""
    fd, size, places = shared.fd, shared.size, shared.layout
    if fd is None:
        return None, []
    mm = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
    os.close(fd)
    frames = [replace(meta, data=np.ndarray(shape, np.dtype(dtype), buffer=mm, offset=offset))
              for offset, shape, dtype, meta in places]
    return mm, frames


def _die_with_parent(parent: int) -> None:
    """The worker does not outlive accel: Linux kills it when the parent dies, even by SIGKILL. Ctrl-C and a
    terminal hang-up reach the whole process group; the parent handles them (it stops this worker and keeps
    what it streamed), so the worker ignores them (they are ignored from its start: see ``_start``)."""
    for sig in _PARENT_HANDLES:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_HANDLES)
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no parent-death signal
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _child(conn: Connection, log_fd: int, parent: int, job: Job, shared: _Shared, plugins: dict[str, str]) -> None:
    _die_with_parent(parent)
    # Runtime chatter ("INFO: Created TensorFlow Lite XNNPACK delegate") goes to a file the parent reads
    # back only when the child dies, so it can say what the driver printed.
    os.dup2(log_fd, 2)
    os.close(log_fd)

    def progress(n: int, total: int) -> None:
        conn.send(("progress", n, total))

    def on_frame(kind: str, data: Any) -> None:
        conn.send((kind, data))

    mm, frames = _unshare(shared)
    try:
        register_plugins(plugins)
        conn.send(("started",))  # imports done: the variant's own time limit starts now
        conn.send(("result", Outcome.ok(run_job(job, frames, progress, on_frame))))
    except AccelError as exc:
        conn.send(("result", Outcome.failed(exc)))
    except Exception as exc:  # a plugin bug: recorded with its traceback, never shown raw to the user
        conn.send(("result", replace(Outcome.failed(exc), traceback=traceback.format_exc())))
    finally:
        conn.close()
        del frames
        if mm is not None:
            with contextlib.suppress(BufferError):  # a result still holds a frame: the exit unmaps it
                mm.close()


def register_plugins(plugins: dict[str, str]) -> None:
    """Delegates registered by hand in the parent ('module:Class'), registered again in the child."""
    import importlib

    from accel.delegates import REGISTRY

    for name, target in plugins.items():
        module, _, attr = target.partition(":")
        REGISTRY.register(name, getattr(importlib.import_module(module), attr))


def read_log(log: Any) -> str:
    """What the worker wrote to its stderr (read without moving the file offset it shares with the worker)."""
    try:
        fd = log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return ""


def adapter_of(printed: str) -> Adapter | None:
    """The GPU adapter a runtime reported choosing (LiteRT's WebGPU accelerator prints "Selected adapter:
    NAME (...), arch=..., vendor=..., backend=Vulkan, adapterType=CPU / Software")."""
    lines = [ln for ln in printed.splitlines() if "Selected adapter:" in ln]
    if not lines:
        return None
    text = lines[-1].split("Selected adapter:", 1)[1].strip()
    fields = dict(part.split("=", 1) for part in text.split(", ") if "=" in part)
    return Adapter(text.split(", arch=")[0], fields.get("backend"), fields.get("adapterType"),
                   "software" in text.lower())


def last_lines(printed: str, lines: int = 3) -> str:
    """The last ``lines`` non-empty lines a worker printed (LiteRT's INFO lines left out), joined by " | ":
    the wording a failed or crashed variant's error ends with."""
    text = [ln.strip() for ln in printed.splitlines() if ln.strip() and not ln.startswith("INFO:")]
    return " | ".join(text[-lines:])


def describe_signal(code: int) -> str:
    """A worker's negative exit code (killed by a signal) in words: ``signal 11 (SIGSEGV)``."""
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
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, MemoryError):
            pass  # the end of what it sent, or a message an interrupt cut in half: the frames before it are kept

    def keep(self, status: Status, why: str) -> Outcome:
        """The outcome of a worker that failed, died or hung before reporting a measurement, with the
        start-up and the frames it streamed."""
        if self.start is None or not self.log:
            return Outcome(status, error=why, measured=Measured(startup=self.startup) if self.startup else None)
        timings = self.log.timings(self.start, self.log.ends[-1])
        return Outcome(status, error=f"{why} (after {len(self.log)} measured frames, whose timings are kept)",
                       measured=Measured(startup=self.startup, timings=timings), partial=True)


def run_isolated(job: Job, frames: list[Frame], progress: Callable[[int, int], None] | None = None) -> Outcome:
    """``run_job`` in a spawned child process, with a timeout (the job's ``timeout_s`` plus start-up).
    Delegates registered by hand in this process are registered again in the child. Nothing the worker uses
    has a name on disk (its frames, its stderr log), so nothing is left behind however either process ends.

    An interrupt (``KeyboardInterrupt``, or ``Interrupted`` for SIGTERM and SIGHUP) stops the worker and is
    raised again as ``Interrupted`` whose ``outcome`` keeps the frames the worker streamed (status
    ``interrupted``)."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    log = tempfile.TemporaryFile(prefix="accel-worker-", suffix=".log")
    fd, shared = _share(frames)
    proc = ctx.Process(target=_child, daemon=True, args=(
        send, _Fd(log.fileno()), os.getpid(), job, shared, DELEGATES.by_hand()))
    streamed = _Streamed()
    timeout_s = job.settings.timeout_s
    try:
        _start(proc)
        send.close()
        if not _collect(proc, recv, streamed, timeout_s, progress):
            _stop(proc)
            streamed.drain(recv, progress)
            said = last_lines(read_log(log))
            why = f"timed out after {timeout_s:g} s (raise pipeline.timeout_s for slow backends)"
            return streamed.keep(Status.TIMEOUT, why + (f"; it printed: {said}" if said else ""))
        proc.join(timeout=30)
        streamed.drain(recv, progress)
        return _conclude(streamed, proc.exitcode, read_log(log))
    except KeyboardInterrupt as exc:
        stop = Interrupted.of(exc)
        _stop(proc)
        streamed.drain(recv, None)
        stop.outcome = _conclude(streamed, None, read_log(log)) if streamed.result is not None else \
            streamed.keep(Status.INTERRUPTED, f"stopped by {stop.name}")
        raise stop from None
    finally:
        recv.close()
        _stop(proc)
        log.close()
        if fd is not None:
            os.close(fd)


def _stop(proc: Any) -> None:
    if proc.pid is not None and proc.exitcode is None:
        proc.kill()
        proc.join()


def _start(proc: Any) -> None:
    """Start the worker with glibc's malloc thresholds pinned, and SIGINT and SIGHUP ignored from its first
    instruction on (the parent handles both; see ``_die_with_parent``). glibc serves large allocations with
    mmap below an adaptive threshold that a fresh process has not raised yet: every frame's temporaries were
    then mapped and unmapped, making pre-processing ~60% slower in a worker than in a long-running process.
    The signals are blocked meanwhile, so one that arrives while the worker is spawned is not lost: it
    reaches this process's handler once the worker has started."""
    import threading

    saved = {k: os.environ.get(k) for k in MALLOC_ENV}
    os.environ.update({k: os.environ.get(k) or v for k, v in MALLOC_ENV.items()})
    main = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_HANDLES) if main else None
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _PARENT_HANDLES} if main else {}
    try:
        proc.start()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
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
        now = time.monotonic()
        # past the deadline, what it already sent is still read (the parent may look late), for a second at most
        if now > deadline and (now > deadline + _DRAIN_S or not recv.poll(0)):
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


def _conclude(streamed: _Streamed, code: int | None, printed: str) -> Outcome:
    said = last_lines(printed)
    printed_note = f"; it printed: {said}" if said else ""
    if streamed.result is not None and streamed.result.measured is None:  # it failed part-way: keep its frames
        kept = streamed.keep(streamed.result.status, streamed.result.error or "failed")
        streamed.result = replace(kept, traceback=streamed.result.traceback)
    if streamed.result is not None:
        result = replace(streamed.result, adapter=adapter_of(printed))
        if code is not None and code < 0:  # measured, then the runtime crashed while tearing down
            result = replace(result, teardown=f"crashed at exit: {describe_signal(code)}{printed_note}")
        return result
    why = describe_signal(code) if code is not None and code < 0 else \
        f"worker exited with code {code} before reporting"
    return streamed.keep(Status.CRASHED, why + printed_note)
