"""The watch session with real worker processes (the parent in this process): a variant runs and streams,
a crashing delegate is reported as crashed while the session goes on, a hang as a timeout, a bad source as
failed, and switching starts each choice in a fresh process; a worker whose stream fails stops as failed."""

from __future__ import annotations

import io
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

import psutil
import pytest
from PIL import Image
from watch_helpers import wait_until

from accel.delegates import REGISTRY, Variant
from accel.model import load_model
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.sources import SourceSpec
from accel.watch.choices import Choice
from accel.watch.detector import Watched
from accel.watch.hub import Hub
from accel.watch.options import StreamOptions
from accel.watch.session import Session

NULL = Choice(Variant("null"), "numpy")
SEGV = Choice(Variant("crashy", (("how", "segv"), ("after", 8))), "numpy")  # crashes after its warm-up
ABORT = Choice(Variant("crashy", (("how", "abort"), ("after", 8))), "numpy")  # a driver's abort, with its words
HANG = Choice(Variant("crashy", (("how", "hang"), ("after", 0))), "numpy")  # hangs at its first inference
BROKEN = Choice(Variant("null"), "opencv")  # given a source that cannot open, below
SETTINGS = Settings(warmup=2, timeout_s=3.0, live_source=SourceSpec("synthetic", "160x120", fps=20.0))


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch, tiny_classifier: Any) -> Iterator[Session]:
    """A session over a tiny classifier (what the crashy delegate's one output fits)."""
    monkeypatch.setitem(REGISTRY._extra, "crashy", __import__("crashy_plugin").CrashyDelegate)
    model = load_model(tiny_classifier[0])

    def job_for(choice: Choice) -> Watched:
        # 3 s for the hang to time out in; the others get 60 s to start on a loaded machine
        settings = replace(SETTINGS, timeout_s=3.0 if choice == HANG else 60.0)
        if choice == BROKEN:
            settings = replace(settings, live_source=SourceSpec("image", "/nonexistent"))
        return Watched(Job(model, choice.variant, choice.kernels, settings), StreamOptions(fps=10))

    choices = [NULL, SEGV, ABORT, HANG, BROKEN]
    s = Session(Hub([c.label for c in choices]), choices, job_for)
    yield s
    s.close()


def _status(session: Session, status: str) -> dict[str, Any]:
    stats = session.hub.stats()
    return stats if stats["status"] == status else {}


def test_a_variant_runs_and_streams_and_stops_with_its_process(session: Session) -> None:
    session.start(NULL)
    stats = wait_until(lambda: _status(session, "running") and session.hub.stats().get("fps"), timeout=60,
                       what="the null variant to run")
    assert stats > 0
    frame = session.hub.fresh_frame(max_age_s=0.0, timeout=30)  # a viewer: the worker encodes
    assert frame is not None
    with Image.open(io.BytesIO(frame.jpeg)) as im:
        assert im.format == "JPEG" and im.size == (160, 120)
    figures = wait_until(lambda: session.hub.stats()["stream"].get("ms"), what="the draw+encode figure")
    assert figures > 0 and session.hub.stats()["stream"]["encoder"]
    pid = session.worker_pid
    assert pid is not None and psutil.pid_exists(pid)
    session.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# The abort double raises SIGABRT from the inference thread and SIGSEGV on its next line: which of the two
# ends the process first is the kernel's choice, so either signal is right; what it printed must be there.
@pytest.mark.parametrize("crash,why", [
    (SEGV, r"signal 11 \(SIGSEGV\)"),
    (ABORT, r"signal (6 \(SIGABRT\)|11 \(SIGSEGV\)); it printed: free\(\): invalid size"),
], ids=["segv", "abort"])
def test_a_crash_is_shown_and_the_next_choice_runs_in_a_fresh_process(session: Session, crash: Choice,
                                                                      why: str) -> None:
    session.start(NULL)
    wait_until(lambda: _status(session, "running"), timeout=60, what="the null variant to run")
    first = session.worker_pid
    assert session.switch(crash.label) == crash
    crashed = wait_until(lambda: _status(session, "crashed"), timeout=60, what="the crash to be reported")
    assert crashed["variant"] == crash.label and re.fullmatch(why, crashed["error"]), crashed["error"]
    session.switch(NULL.label)
    wait_until(lambda: _status(session, "running") and session.hub.stats()["variant"] == NULL.label, timeout=60,
               what="the null variant to run again")
    assert session.worker_pid not in (None, first)
    with pytest.raises(LookupError):
        session.switch("nosuch + numpy")


@pytest.mark.parametrize("choice,status,why", [(HANG, "timeout", "no first frame after 3 s"),
                                               (BROKEN, "failed", "/nonexistent")], ids=["hang", "bad-source"])
def test_a_variant_that_cannot_run_says_why(session: Session, choice: Choice, status: str, why: str) -> None:
    session.start(choice)
    ended = wait_until(lambda: _status(session, status), timeout=60, what=f"the {status} to be reported")
    assert why in ended["error"]
    assert session.hub.stats()["choices"][0] == NULL.label


def test_a_failure_in_draw_encode_fails_the_variant_and_stops_the_worker(monkeypatch: pytest.MonkeyPatch,
                                                                        tiny_classifier: Any) -> None:
    """The worker in this process, on a socket pair: its encoder thread raises at the first frame a viewer
    asks for. The variant is reported failed, in one line naming the error, and the worker stops (the
    detector with it), rather than detecting on with a stream that stopped."""
    from accel.watch import child

    class Broken(child.Renderer):
        def render(self, *args: Any, **kwargs: Any) -> bytes:
            raise RuntimeError("the encoder broke")

    monkeypatch.setattr(child, "Renderer", Broken)
    ours, theirs = socket.socketpair()
    parent, conn = Connection(ours.detach()), Connection(theirs.detach())
    job = Watched(Job(load_model(tiny_classifier[0]), NULL.variant, NULL.kernels, SETTINGS), StreamOptions(fps=10))
    worker = threading.Thread(target=child._Worker(conn, job).run, daemon=True)
    worker.start()
    parent.send(("viewers", 1))
    said: list[tuple[Any, ...]] = []
    try:
        def stopped() -> bool:
            while parent.poll(0):
                said.append(parent.recv())
            return bool(said) and said[-1] == ("stopped",)

        wait_until(stopped, timeout=60, what="the worker to stop")
        worker.join(30)
    finally:
        parent.close()
        conn.close()
    assert not worker.is_alive()
    kinds = [m[0] for m in said]
    assert "ready" in kinds and "frame" not in kinds, kinds
    failed = [m for m in said if m[0] == "failed"]
    assert len(failed) == 1 and failed[0][1] == "draw+encode: RuntimeError: the encoder broke", failed
    assert "Traceback" in failed[0][2]  # for the worker's log
