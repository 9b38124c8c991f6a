"""Paced sources: frames due at t0 + k / fps, a buffer of the newest few, drops, late frames, errors, closing.

Everything but the last test runs on a manual clock, with the cost of each read scripted on it, and drives
the producer step by step (``tick``) or through its loop in this thread (``run``): no result depends on how
long a real sleep lasted. Expected frame numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from accel.core.errors import SourceError
from accel.core.frames import Frame, PixelFormat
from accel.power.fake import ManualClock
from accel.sources import SourceSpec, open_source, own_rate, pacing
from accel.sources.paced import DEFAULT_FPS, PacedSource

FPS = 8.0  # a frame every 0.125 s: due times are exact binary fractions


class Scripted:
    """A source whose reads cost ``cost_s`` of a manual clock; frame n has index n and no timestamp.
    ``fail_at``: read number N (0-based) raises ``SourceError``."""

    name = "scripted"
    format = PixelFormat.RGB
    width = height = 2

    def __init__(self, clock: ManualClock, cost_s: float = 0.0, fail_at: int | None = None) -> None:
        self.clock, self.cost_s, self.fail_at = clock, cost_s, fail_at
        self.reads = 0
        self.closed = 0

    def read(self) -> Frame:
        if self.fail_at is not None and self.reads >= self.fail_at:
            raise SourceError("end of the video after 3 frames (loop is off)")
        self.clock.sleep(self.cost_s)
        self.reads += 1
        return Frame(np.zeros((2, 2, 3), np.uint8), 2, 2, PixelFormat.RGB, 6, capture_s=self.cost_s,
                     index=self.reads - 1)

    def close(self) -> None:
        self.closed += 1

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "target": "", "fps": 25.0}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _paced(cost_s: float = 0.0, buffer_count: int = 4, fail_at: int | None = None,
           t: float = 0.0) -> tuple[PacedSource, Scripted, ManualClock]:
    clock = ManualClock(t)
    inner = Scripted(clock, cost_s, fail_at)
    return PacedSource(inner, FPS, buffer_count, clock=clock, wait=clock.sleep), inner, clock


def _tick_at_due_times(source: PacedSource, clock: ManualClock, frames: int) -> None:
    """Tick at each of the first ``frames`` due times (0, 0.125, 0.25, ...)."""
    for k in range(frames):
        clock.t = k / FPS
        source.tick()


def test_frames_come_at_their_due_times_stamped_with_them() -> None:
    source, inner, clock = _paced(t=0.0)
    assert source.tick() == 0.125  # frame 0 is due at the first tick; frame 1 next
    clock.t = 0.1
    assert source.tick() == 0.125 and source.delivered == 1  # between due times: nothing
    for k, t in enumerate([0.125, 0.25, 0.375], start=1):
        clock.t = t
        assert source.tick() == (k + 1) / 8
    frames = [source.read() for _ in range(4)]
    assert [f.timestamp for f in frames] == [0.0, 0.125, 0.25, 0.375]
    assert [f.index for f in frames] == [0, 1, 2, 3] and inner.reads == 4
    assert (source.delivered, source.dropped, source.skipped, source.taken) == (4, 0, 0, 4)


def test_the_schedule_starts_at_the_first_tick() -> None:
    source, _, clock = _paced(t=100.0)
    source.tick()
    assert source.due(0) == 100.0 and source.due(3) == 100.375
    clock.t = 100.375
    source.tick()
    assert [source.read().timestamp for _ in range(2)] == [100.0, 100.375]
    assert source.skipped == 2  # frames 1 and 2 were due while nobody ticked


def test_a_fast_consumer_gets_every_frame_and_nothing_is_dropped() -> None:
    source, _, clock = _paced(buffer_count=2)
    taken = []
    for k in range(20):
        clock.t = k / FPS
        source.tick()
        taken.append(source.read())
    assert [f.index for f in taken] == list(range(20))
    assert [f.timestamp for f in taken] == [k / 8 for k in range(20)]
    assert (source.delivered, source.dropped, source.skipped) == (20, 0, 0)


def test_a_consumer_that_never_reads_finds_the_newest_buffer_count_frames() -> None:
    source, _, clock = _paced(buffer_count=4)
    _tick_at_due_times(source, clock, 10)  # frames 0..9 delivered; 0..5 pushed out of 4 buffers
    assert (source.delivered, source.dropped) == (10, 6)
    frames = [source.read() for _ in range(4)]
    assert [f.index for f in frames] == [6, 7, 8, 9]
    assert [f.timestamp for f in frames] == [0.75, 0.875, 1.0, 1.125]


def test_a_consumer_at_half_the_rate_sees_every_other_frame_dropped() -> None:
    # Two buffers; the consumer takes one frame after every second tick:
    # tick 0 [0]; tick 1 [0 1] -> reads 0, [1]; tick 2 [1 2]; tick 3 [1 2 3]: drops 1 -> [2 3], reads 2 ...
    source, _, clock = _paced(buffer_count=2)
    taken = []
    for k in range(10):
        clock.t = k / FPS
        source.tick()
        if k % 2 == 1:
            taken.append(source.read().index)
    assert taken == [0, 2, 4, 6, 8]
    assert (source.delivered, source.dropped, source.taken) == (10, 4, 5)  # dropped: 1, 3, 5, 7
    assert source.read().index == 9


@pytest.mark.parametrize(
    ("cost_intervals", "produced", "skipped"),
    [
        # each read costs 2.5 intervals: ticks find 0, then 2 (at 2.5), 5 (at 5.0), 7 (at 7.5), 10 (at 10.0)
        pytest.param(2.5, [0, 2, 5, 7, 10], 6, id="read-costs-2.5-intervals"),
        # 1.5 intervals: 0, 1 (at 1.5), 3 (at 3.0), 4 (at 4.5), 6 (at 6.0)
        pytest.param(1.5, [0, 1, 3, 4, 6], 2, id="read-costs-1.5-intervals"),
        # half an interval: on time, every frame
        pytest.param(0.5, [0, 1, 2, 3, 4], 0, id="read-costs-half-an-interval"),
    ],
)
def test_a_producer_slower_than_the_rate_skips_to_the_newest_due_frame(
        cost_intervals: float, produced: list[int], skipped: int) -> None:
    source, inner, clock = _paced(cost_s=cost_intervals / FPS)
    frames = []
    for _ in produced:
        due = source.tick()
        frames.append(source.read())
        clock.t = max(clock.t, due)  # what the thread's wait does: sleep until due, not at all when late
    assert [f.timestamp * FPS for f in frames] == produced  # stamped on the 1/fps grid, never bunched
    assert [f.index for f in frames] == list(range(len(produced))) and inner.reads == len(produced)
    assert (source.skipped, source.dropped, source.delivered) == (skipped, 0, len(produced))


def test_the_producer_loop_waits_until_each_frame_is_due() -> None:
    clock = ManualClock()
    inner = Scripted(clock, cost_s=0.05)
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        clock.sleep(seconds)
        if len(waits) == 3:
            source.close()

    source = PacedSource(inner, FPS, clock=clock, wait=wait)
    source.run()  # in this thread, until the wait above closes the source
    assert waits == pytest.approx([0.075, 0.075, 0.075])  # each read costs 0.05 of the 0.125 s interval
    assert inner.reads == 3 and inner.closed == 1 and source.delivered == 3


def test_a_producer_error_surfaces_in_read_after_the_buffered_frames() -> None:
    source, _, clock = _paced(fail_at=3)
    _tick_at_due_times(source, clock, 3)
    clock.t = 3 / FPS
    assert source.tick() == math.inf  # the producer stops
    assert [source.read().index for _ in range(3)] == [0, 1, 2]
    with pytest.raises(SourceError, match="producer stopped: end of the video after 3 frames") as caught:
        source.read()
    assert isinstance(caught.value.__cause__, SourceError)
    assert source.tick() == math.inf and source.delivered == 3


def test_reading_with_no_producer_and_no_frame_is_an_error_not_a_hang() -> None:
    source, _, _ = _paced()
    with pytest.raises(SourceError, match="producer is not running"):
        source.read()


def test_close_is_idempotent_closes_the_inner_source_once_and_ends_reading() -> None:
    source, inner, _ = _paced()
    source.tick()
    source.close()
    source.close()
    assert inner.closed == 1 and source.tick() == math.inf
    with pytest.raises(SourceError, match="is closed"):
        source.read()  # a buffered frame is not handed out after close


def test_close_wakes_a_reader_that_is_waiting() -> None:
    inner = Scripted(ManualClock())
    source = PacedSource(inner, 0.001)  # real clock and wait: frame 0 at once, frame 1 in 1000 s
    errors: list[BaseException] = []
    first = threading.Event()

    def reader() -> None:
        source.read()  # frame 0, due at once; frame 1 only in 1000 s
        first.set()
        try:
            source.read()
        except SourceError as exc:
            errors.append(exc)

    with source:
        thread = threading.Thread(target=reader)
        thread.start()
        assert first.wait(30)
    thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1 and "is closed" in str(errors[0])
    assert inner.closed == 1


def test_describe_adds_the_pacing_and_the_counts_to_the_inner_description() -> None:
    source, _, clock = _paced(buffer_count=2)
    _tick_at_due_times(source, clock, 3)
    assert source.describe() == {"kind": "scripted", "target": "", "native_fps": 25.0, "paced": True,
                                 "fps": 8.0, "buffer_count": 2, "delivered": 3, "dropped": 1, "skipped": 0}
    assert (source.name, source.format, source.width, source.height) == ("scripted", PixelFormat.RGB, 2, 2)


@pytest.mark.parametrize(("fps", "buffer_count", "says"),
                         [(0, 4, "fps must be a number > 0"), (-1.0, 4, "fps must be"),
                          (float("nan"), 4, "fps must be"), (30.0, 0, "buffer_count must be a whole number >= 1"),
                          (30.0, 2.5, "buffer_count must be")],
                         ids=["zero-fps", "negative-fps", "nan-fps", "no-buffers", "fractional-buffers"])
def test_impossible_pacing_is_refused(fps: float, buffer_count: Any, says: str) -> None:
    with pytest.raises(SourceError, match=says):
        PacedSource(Scripted(ManualClock()), fps, buffer_count)


def test_a_real_thread_delivers_frames_in_time_order() -> None:
    """The one test with real time: it asserts only what holds however the threads are scheduled."""
    with open_source(SourceSpec("synthetic", width=48, height=32, fps=200.0, buffer_count=2)) as source:
        assert isinstance(source, PacedSource)
        frames = [source.read() for _ in range(10)]
        now = time.monotonic()
        with source._cond:  # one snapshot: the delivering thread goes on between three separate reads
            delivered, dropped, taken = source.delivered, source.dropped, source.taken
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10 and stamps[-1] <= now
    assert all((s - stamps[0]) * 200 == pytest.approx(round((s - stamps[0]) * 200)) for s in stamps)  # on the grid
    assert taken == 10 and delivered >= taken and 0 <= dropped <= delivered - taken


# --- opening paced sources --------------------------------------------------------------------------------

def test_open_source_paces_only_when_asked_and_synthetic_defaults_to_30_fps() -> None:
    with open_source(SourceSpec("synthetic", width=48, height=32)) as unpaced:
        assert not isinstance(unpaced, PacedSource)
    with open_source(SourceSpec("synthetic", width=48, height=32, fps=0, buffer_count=3)) as paced:
        assert isinstance(paced, PacedSource)
        described = paced.describe()
    assert (described["fps"], described["buffer_count"], described["paced"]) == (DEFAULT_FPS, 3, True)
    assert DEFAULT_FPS == 30.0


def test_cameras_are_never_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = Scripted(ManualClock())
    monkeypatch.setattr("accel.sources._open_unpaced", lambda spec: camera)
    assert open_source(SourceSpec("picamera2", fps=15.0)) is camera
    assert open_source(SourceSpec("v4l2", "0", fps=0)) is camera
    assert pacing(SourceSpec("picamera2", fps=15.0)) == {"paced": False}


@pytest.mark.parametrize("fps", [0, -1.5, float("inf")], ids=["fps-unknown", "fps-negative", "fps-inf"])
def test_a_file_that_does_not_say_its_rate_is_a_clear_error(fps: float) -> None:
    class Silent(Scripted):
        native_fps = fps

    with pytest.raises(SourceError, match="does not say its frame rate.*--source-fps or \\[pipeline\\] source_fps"):
        own_rate(Silent(ManualClock()))


def test_the_inner_source_is_closed_when_its_rate_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    class Silent(Scripted):
        name = "video"
        native_fps = 0.0

    video = Silent(ManualClock())
    monkeypatch.setattr("accel.sources._open_unpaced", lambda spec: video)
    with pytest.raises(SourceError, match="does not say its frame rate"):
        open_source(SourceSpec("video", "clip.avi", fps=0))
    assert video.closed == 1


@pytest.fixture
def clip_12fps(make_video: Callable[..., Path]) -> Path:
    return make_video([(30, 30, 30), (90, 90, 90), (150, 150, 150)], 12.0, (32, 24))


def test_a_video_at_fps_0_is_paced_at_the_rate_its_file_says(clip_12fps: Path) -> None:
    spec = SourceSpec("video", str(clip_12fps), fps=0)
    with open_source(spec) as source:
        assert isinstance(source, PacedSource)
        described = source.describe()
    assert described["fps"] == 12.0 and described["native_fps"] == 12.0 and described["paced"] is True
    assert pacing(spec) == {"paced": True, "fps": 12.0, "buffer_count": 4}
    with open_source(SourceSpec("video", str(clip_12fps), fps=5.0)) as faster:
        assert faster.describe()["fps"] == 5.0


@pytest.mark.parametrize(("options", "says"),
                         [({"fps": -1.0}, "fps must be a number >= 0"), ({"fps": float("nan")}, "fps must be"),
                          ({"buffer_count": 0}, "buffer_count must be a whole number >= 1")],
                         ids=["negative-fps", "nan-fps", "no-buffers"])
def test_the_spec_validates_its_pacing(options: dict[str, Any], says: str) -> None:
    with pytest.raises(SourceError, match=says):
        SourceSpec("synthetic", **options)
