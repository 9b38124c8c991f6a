"""One variant running until told to stop, inside the watch worker: the live source feeds the pipelined stages
compare measures (``Loop.stages`` on ``accel.run.pipelined.run_stages``: capture, preprocess, inference, postprocess
as threads joined by bounded queues), every finished frame goes into a sliding ``Window`` and becomes the
``Latest`` one the stream encoder draws. Nothing accumulates per frame, so a run of hours uses the memory of a
run of seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from accel.core.detections import Classification, Detections
from accel.core.errors import SourceError
from accel.core.frames import Frame
from accel.delegates import Variant, get_delegate
from accel.kernels import get_kernels
from accel.model import ModelInfo
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.run.loop import Feed, Loop, reader
from accel.run.pipeline import decode_spec, input_spec, open_runner
from accel.run.pipelined import Item, run_stages
from accel.sources import SourceSpec
from accel.watch.options import StreamOptions
from accel.watch.window import Window

__all__ = ["Detector", "Latest", "Watched"]

Result = Detections | Classification


@dataclass(frozen=True)
class Watched:
    """What a watch worker runs: a job of the plan ``accel compare`` makes (pipelined, its settings with
    ``live_source`` set), and the stream's options."""

    job: Job
    stream: StreamOptions = field(default_factory=StreamOptions)

    @property
    def label(self) -> str:
        """The choice's label: ``xnnpack threads=4 + opencv``."""
        return self.job.name

    @property
    def model(self) -> ModelInfo:
        return self.job.model

    @property
    def variant(self) -> Variant:
        return self.job.variant

    @property
    def kernels(self) -> str:
        return self.job.kernels

    @property
    def settings(self) -> Settings:
        return self.job.settings


class Latest:
    """The newest finished frame and its answers, handed from the detector to the encoder."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.seq = 0
        self.frame: Frame | None = None
        self.result: Result | None = None

    def put(self, frame: Frame, result: Result) -> None:
        with self._cond:
            self.seq += 1
            self.frame, self.result = frame, result
            self._cond.notify_all()

    def wait(self, after: int, timeout: float) -> tuple[int, Frame, Result] | None:
        """(seq, frame, answers) once newer than ``after``; None after ``timeout`` seconds."""
        with self._cond:
            if self.seq <= after:
                self._cond.wait(timeout)
            if self.seq <= after or self.frame is None or self.result is None:
                return None
            return self.seq, self.frame, self.result


def _described(source: Any) -> dict[str, Any]:
    """What the source says about itself, less its frame counters (the figures give them, kept current)."""
    return {k: v for k, v in source.describe().items() if k not in ("delivered", "dropped", "skipped")}


class Detector:
    """Runs ``job`` until ``stop`` is set; ``emit("ready", info)`` once the first inference and the warm-up
    are done, ``emit("closing", None)`` just before the source is closed. Raises ``AccelError`` when the
    variant cannot run (the worker reports it)."""

    def __init__(self, job: Watched, window: Window, latest: Latest, emit: Callable[[str, Any], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.job, self.window, self.latest, self.emit, self.clock = job, window, latest, emit, clock
        self.source: Any = None

    def drops(self) -> dict[str, int] | None:
        """Frames a paced source delivered, dropped (the detector was busy) and skipped (it was late)."""
        from accel.sources.paced import PacedSource

        source = self.source
        if not isinstance(source, PacedSource):
            return None
        return {"delivered": source.delivered, "dropped": source.dropped, "skipped": source.skipped}

    def run(self, stop: threading.Event) -> None:
        from accel.sources import open_source

        job, settings = self.job, self.job.settings
        if settings.live_source is None:
            raise SourceError("accel watch reads a live source: settings.live_source is not set")
        model = get_delegate(job.variant.delegate).prepare_model(job.model, job.variant)
        spec = input_spec(model, settings.resize, settings.fill, settings.input_range, settings.resize_filter)
        dspec = decode_spec(model, settings)
        kernels = get_kernels(job.kernels, settings.options_of(job.kernels))
        with ExitStack() as stack:
            stack.callback(kernels.close)
            self.source = stack.enter_context(open_source(self._spec(settings.live_source)))
            stack.callback(self.emit, "closing", None)  # before the source closes: what streams it stops
            t0 = time.perf_counter()
            runners = [stack.enter_context(open_runner(model, job.variant))]
            load_s = time.perf_counter() - t0
            more = range(settings.inference_streams - 1)
            runners += [stack.enter_context(open_runner(model, job.variant)) for _ in more]
            loop = Loop(model, runners, kernels, settings, spec, dspec, lambda kind, data: None)
            feed = Feed([], self.source, self.clock)
            startup = loop.start(feed, load_s)
            self.emit("ready", {"runtime": runners[0].runtime, "placement": runners[0].placement.to_json(),
                                "kernels_info": kernels.describe(), "source": _described(self.source),
                                "startup": {"load_ms": startup.load_ms,
                                            "first_inference_ms": startup.first_inference_ms},
                                "input": [spec.height, spec.width], "streams": len(runners)})
            run_stages(reader(feed), loop.stages(), partial(self._sink, stop), depth=settings.queue_depth,
                       clock=self.clock)

    def _spec(self, spec: SourceSpec) -> SourceSpec:
        """The source to open: with the stream encoded by Picamera2, the camera's main stream streamed, at
        the size the stream asks for (``StreamOptions.main_size``)."""
        if not self.job.stream.from_camera(spec.kind):
            return spec
        return replace(spec, streamed=True, main_size=self.job.stream.main_size(spec.size()))

    def _sink(self, stop: threading.Event, item: Item) -> bool:
        frame, capture_s = item.frame
        spans = item.spans
        stages = {"capture": capture_s, **{s: b - a for s, (a, b) in spans.items()}}
        done = spans["postprocess"][1]
        result: Result = item.data[0]
        self.window.add(done, stages, done - item.captured, spans["preprocess"][0] - item.captured, len(result))
        self.latest.put(frame, result)
        return not stop.is_set()
