"""The measured loop of one variant, serial or pipelined, on one monotonic clock.

Serial: preprocess -> inference -> postprocess, then the next frame: what one frame costs. Pipelined: the
same stages as threads joined by bounded queues (``accel.run.pipelined``): what a camera application gets.
Either way every frame's stage durations, its end time, its end-to-end latency (capture to detections
ready) and, live, its age when preprocessing took it go into one ``FrameLog`` and are streamed to the parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from accel.core.detections import Classification, Detections
from accel.core.frames import Frame
from accel.delegates import Runner
from accel.host.usage import UsageMeter
from accel.kernels import DecodeSpec, InputSpec, KernelSet
from accel.model import ModelInfo
from accel.plan.settings import Settings
from accel.results.record import FrameLog, Startup, Timings, Usage
from accel.run.pipelined import Item, Stage, run_stages

__all__ = ["STAGES", "Feed", "Loop", "bound"]

STAGES = ("capture", "preprocess", "inference", "postprocess")
FrameHook = Callable[[str, Any], None]
_CALIBRATION_FRAMES = 30


class Feed:
    """Frame i of the replayed frames (their capture cost was paid once, up front; captured = when the loop
    took it), or the next frame read from a live source (its read is the capture stage; captured = the
    frame's own timestamp)."""

    def __init__(self, frames: Sequence[Frame], source: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._frames, self.source, self._clock = frames, source, clock

    @property
    def live(self) -> bool:
        return self.source is not None

    def counts(self) -> tuple[int, int] | None:
        """(frames delivered, frames taken) by a paced source so far; None for one that does not count."""
        from accel.sources.paced import PacedSource

        if isinstance(self.source, PacedSource):
            return self.source.delivered, self.source.taken
        return None

    def __call__(self, i: int) -> tuple[Frame, float, float]:
        """(frame, capture seconds, captured at)."""
        if self.source is None:
            frame = self._frames[i % len(self._frames)]
            return frame, frame.capture_s, self._clock()
        t = self._clock()
        frame = self.source.read()
        now = self._clock()
        return frame, now - t, frame.timestamp or now


def reader(feed: Feed) -> Callable[[int], tuple[Any, float]]:
    """``run_stages``' read over ``feed``: an item's frame is (frame, capture seconds), with its capture time."""
    def read(i: int) -> tuple[Any, float]:
        frame, capture_s, captured = feed(i)
        return (frame, capture_s), captured

    return read


def bound(means_s: dict[str, float], streams: int = 1) -> tuple[float | None, str | None]:
    """The rate the slowest stage allows, and which stage: 1 / its mean seconds (inference: times the
    parallel streams)."""
    rates = {s: (streams if s == "inference" else 1) / m for s, m in means_s.items() if m > 0}
    if not rates:
        return None, None
    stage = min(rates, key=lambda s: rates[s])
    return rates[stage], stage


@dataclass
class Loop:
    """One variant's loop state: the frame log, saved detections, the measured window and usage."""

    model: ModelInfo
    runners: Sequence[Runner]  # one per inference stream; the first also does warm-up and serial runs
    kernels: KernelSet
    settings: Settings
    spec: InputSpec
    dspec: DecodeSpec
    emit: FrameHook
    clock: Callable[[], float] = time.monotonic
    log: FrameLog = field(default_factory=lambda: FrameLog({s: [] for s in STAGES}))
    trace: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.detections: dict[int, Any] = {}
        self._counts: tuple[int, int] | None = None
        self.frames_dropped: int | None = None
        self.window_start: float | None = None
        self.wall = 0.0
        self.usage = Usage()

    def _postprocess(self, outs: list[np.ndarray], geometry: Any) -> Detections | Classification:
        return self.kernels.postprocess({role: outs[pos] for role, pos in self.model.roles.items()}, self.dspec,
                                        geometry)

    def start(self, feed: Feed, load_s: float) -> Startup:
        """The first inference (timed on its own: shader compilation lands here), then the warm-up on every
        inference stream."""
        tensor, _ = self.kernels.preprocess(feed(0)[0], self.spec)
        t0 = time.perf_counter()
        self.runners[0].run([tensor])
        startup = Startup(load_s * 1e3, (time.perf_counter() - t0) * 1e3)
        self.emit("init", startup)
        for runner in self.runners:
            for i in range(self.settings.warmup if runner is self.runners[0] else 2):
                tensor, geometry = self.kernels.preprocess(feed(i)[0], self.spec)
                self._postprocess(runner.run([tensor]), geometry)
        return startup

    def _serial_frame(self, feed: Feed, i: int) -> tuple[Frame, dict[str, float], Any, float, float, float]:
        """One frame through the stages in turn: (frame, stage seconds, answers, captured at, preprocessing
        started at, done at)."""
        frame, capture_s, captured = feed(i)
        clock, runner = self.clock, self.runners[0]
        ta = clock()
        tensor, geometry = self.kernels.preprocess(frame, self.spec)
        tb = clock()
        stages = {"capture": capture_s, "preprocess": tb - ta, **self._split("preprocess")}
        outs = runner.run([tensor])
        tc = clock()
        result = self._postprocess(outs, geometry)
        td = clock()
        stages.update({"inference": tc - tb, "postprocess": td - tc, **self._split("postprocess")})
        if runner.last_invoke_s is not None:
            stages["invoke"] = runner.last_invoke_s
        return frame, stages, result, captured, ta, td

    def calibrate(self, feed: Feed) -> tuple[float | None, str | None]:
        """A short serial run, not recorded: what each stage costs alone, so what the slowest allows."""
        sums = dict.fromkeys(STAGES if feed.live else STAGES[1:], 0.0)
        n = min(_CALIBRATION_FRAMES, max(self.settings.frames, 1))
        for i in range(n):
            stages = self._serial_frame(feed, i)[1]
            for s in sums:
                sums[s] += stages[s]
        return bound({s: v / n for s, v in sums.items()}, len(self.runners))

    def serial_bound(self, live: bool) -> tuple[float | None, str | None]:
        """The same figure from this serial run's own stage means."""
        stages = STAGES if live else STAGES[1:]
        return bound({s: float(np.mean(self.log.stages[s])) for s in stages if self.log.stages.get(s)})

    def _window(self, feed: Feed) -> tuple[UsageMeter, float]:
        self._counts = feed.counts()
        meter = UsageMeter()
        meter.start()
        self.window_start = start = self.clock()
        self.emit("window", start)
        return meter, start

    def _keep(self, frame: Frame, stages: dict[str, float], result: Any, captured: float, done: float,
              age: float | None) -> int:
        """Record one finished frame (times from the measured window's start); returns how many are measured."""
        start = self.window_start
        assert start is not None, "_window starts the measured window before any frame is kept"
        self.log.add(done - start, stages, done - captured, age)
        self.emit("frame", (done - start, stages, done - captured, age))
        if len(self.detections) < self.settings.save_detections and frame.index not in self.detections:
            self.detections[frame.index] = result.to_json()
        return len(self.log)

    def _going(self, n: int, elapsed: float, meter: UsageMeter, progress: Callable[[int, int], None] | None) -> bool:
        """After frame n: report progress, sample the meter, and say whether the run goes on."""
        if progress is not None and n % 5 == 0:
            progress(n, self.settings.frames)
        if n % 50 == 0:
            meter.sample()
        return (n < self.settings.frames or elapsed < self.settings.seconds) and elapsed < self.settings.timeout_s

    def measure(self, feed: Feed, progress: Callable[[int, int], None] | None) -> None:
        """Serial: each frame through every stage before the next is read."""
        meter, start = self._window(feed)
        going = self.settings.frames > 0 or self.settings.seconds > 0
        i, elapsed = 0, 0.0
        while going:
            frame, stages, result, captured, started, done = self._serial_frame(feed, i)
            age = started - captured if feed.live else None
            n = self._keep(frame, stages, result, captured, done, age)
            i, elapsed = i + 1, done - start
            going = self._going(n, elapsed, meter, progress)
        self.wall = (self.clock() - start) if len(self.log) else 0.0
        self._close_window(feed, meter)

    def measure_pipelined(self, feed: Feed, progress: Callable[[int, int], None] | None) -> None:
        """Pipelined: capture, preprocess, inference (one thread per stream) and postprocess run at once."""
        meter, start = self._window(feed)
        last = [start]

        def sink(item: Item) -> bool:
            frame, capture_s = item.frame
            spans = item.spans
            stages = {"capture": capture_s, **{s: b - a for s, (a, b) in spans.items()}}
            if item.data[1] is not None:
                stages["invoke"] = item.data[1]
            done = spans["postprocess"][1]
            age = spans["preprocess"][0] - item.captured if feed.live else None
            if len(self.trace) < 8 * 3:
                self.trace += [[item.index, s, round((a - start) * 1e3, 3), round((b - start) * 1e3, 3)]
                               for s, (a, b) in spans.items()]
            n = self._keep(frame, stages, item.data[0], item.captured, done, age)
            last[0] = done
            return self._going(n, done - start, meter, progress)

        run_stages(reader(feed), self.stages(), sink, depth=self.settings.queue_depth, clock=self.clock)
        self.wall = last[0] - start
        self._close_window(feed, meter)

    def _close_window(self, feed: Feed, meter: UsageMeter) -> None:
        """Usage over the window, and the frames a paced source delivered in it that nobody took."""
        self.usage = meter.stop()
        end = feed.counts()
        if self._counts is not None and end is not None:
            self.frames_dropped = max(0, (end[0] - self._counts[0]) - (end[1] - self._counts[1]))

    def stages(self) -> list[Stage]:
        """The pipelined stages over items read by ``reader``: preprocess, inference (a worker per stream),
        postprocess; an item's data ends as (answers, the runtime's invoke seconds or None)."""
        return [Stage("preprocess", [self._pre]), Stage("inference", [partial(self._infer, r) for r in self.runners]),
                Stage("postprocess", [self._post])]

    def _pre(self, item: Item) -> None:
        item.data = self.kernels.preprocess(item.frame[0], self.spec)

    def _infer(self, runner: Runner, item: Item) -> None:
        tensor, geometry = item.data
        outs = runner.run([tensor])
        item.data = (outs, geometry, runner.last_invoke_s)

    def _post(self, item: Item) -> None:
        outs, geometry, invoke_s = item.data
        item.data = (self._postprocess(outs, geometry), invoke_s)

    def _split(self, stage: str) -> dict[str, float]:
        """Kernel sets that run on a device: transfers apart from kernel time (``preprocess_upload`` ...).
        Serial only: in a pipeline the stages' calls interleave and the split of the last call is no one's."""
        return {f"{stage}_{key.removesuffix('_ms')}": ms / 1e3 for key, ms in self.kernels.last_timings().items()}

    def timings(self) -> Timings:
        return self.log.timings(self.window_start, self.wall)
