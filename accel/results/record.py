"""One frozen, typed record per variant, built from the parts each stage of the flow returns.

    pipeline    -> Measured   (RunInfo: what ran and where; Startup; Timings of the measured loop, from a FrameLog)
    worker      -> Outcome    (status, error, the Measured parts, or those streamed before a crash)
    instruments -> Charged    (power, thermal, sustained summary, cool-down of the variant's own window)
    compare     -> Cache, ModelRan; after the loop Agreement and accuracy

``VariantRecord.to_json()`` is the flat variant object that docs/results.md documents (each part's fields
side by side, optional ones absent when not measured); ``VariantRecord.from_json`` reads it back, from
every schema version ``accel.results.document`` reads. A new figure is one field in the part its producer returns:
the JSON form follows from the dataclass.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from accel.core.errors import AccelError, ConfigError
from accel.core.jsonform import FLAT, OMIT_FALSE, dump, keeps_none, load
from accel.delegates import Placement
from accel.host.usage import Usage

__all__ = ["Adapter", "Agreement", "Cache", "Charged", "Flow", "FrameLog", "Measured", "ModelRan", "Outcome", "Power",
           "RunInfo", "SecondStart", "StageStats", "Startup", "Status", "Timings", "Usage", "VariantRecord", "Window"]



class Status(enum.Enum):
    """How a variant ended."""

    OK = "ok"
    FAILED = "failed"  # the backend or a kernel raised an error a user can act on
    UNAVAILABLE = "unavailable"  # the backend cannot run here (not run)
    CRASHED = "crashed"  # its process died (signal) or exited without reporting
    TIMEOUT = "timeout"  # it ran past pipeline.timeout_s and was killed
    INTERRUPTED = "interrupted"  # the run was stopped (Ctrl-C, SIGTERM, SIGHUP) while it ran


@dataclass(frozen=True)
class Window:
    """The measured loop's span in monotonic seconds (warm-up excluded)."""

    start: float
    end: float


@keeps_none
@dataclass(frozen=True)
class StageStats:
    """Latency statistics of one stage in milliseconds; None when no frame was measured."""

    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    stdev: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, samples_s: Sequence[float]) -> StageStats:
        """Statistics of durations in seconds: numpy's linear-interpolation percentiles, sample stdev."""
        import numpy as np

        if len(samples_s) == 0:
            return cls()
        a = np.asarray(samples_s, dtype=np.float64) * 1e3
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(float(a.mean()), float(p50), float(p90), float(p99),
                   float(a.std(ddof=1)) if a.size > 1 else 0.0, float(a.min()), float(a.max()))


@dataclass(frozen=True)
class Timings:
    """The measured loop: every frame's stage durations and end time. The same for a finished run and for
    the frames a worker streamed before it crashed."""

    frames_measured: int
    wall_s: float
    fps: float
    stages: dict[str, StageStats]
    raw_ms: dict[str, list[float]] = field(default_factory=dict)
    frame_end: list[float] = field(default_factory=list)  # seconds after window.start
    window: Window | None = None
    e2e_ms: StageStats | None = None  # from a frame's capture to its detections being ready
    frame_age_ms: StageStats | None = None  # live: from a frame's capture to the start of its preprocessing

    @classmethod
    def of(cls, per_stage_s: Mapping[str, Sequence[float]], frame_end_s: Sequence[float], start: float | None,
           wall_s: float, e2e_s: Sequence[float] = (), age_s: Sequence[float] = ()) -> Timings:
        n = len(frame_end_s)
        return cls(frames_measured=n, wall_s=wall_s, fps=n / wall_s if wall_s > 0 else 0.0,
                   stages={s: StageStats.of(v) for s, v in per_stage_s.items()},
                   raw_ms={s: [round(x * 1e3, 4) for x in v] for s, v in per_stage_s.items()},
                   frame_end=[round(t, 5) for t in frame_end_s],
                   window=Window(start, start + wall_s) if start is not None else None,
                   e2e_ms=StageStats.of(e2e_s) if e2e_s else None,
                   frame_age_ms=StageStats.of(age_s) if age_s else None)


@dataclass(frozen=True)
class Startup:
    """Delegate creation and the first inference (shader compilation and weight packing land here)."""

    load_ms: float | None = None
    first_inference_ms: float | None = None


@dataclass(frozen=True)
class RunInfo:
    """What a finished measurement ran, where, and what it found."""

    runtime: str
    placement: Placement
    # Every run has these; a document from an older accel may lack them (None: not recorded).
    kernels_info: dict[str, Any] | None = None  # the kernel set's own description
    input: dict[str, Any] | None = None  # how frames were fitted and quantized
    fps_stages: list[str] | None = None  # the stages FPS counts
    inference_fps: float | None = None
    usage: Usage | None = None
    detections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # the first saved frames


@dataclass(frozen=True)
class Measured:
    """What a variant's measurement produced: ``pipeline.run_job`` returns all three parts; a worker
    that died part-way leaves the start-up and the timings of the frames it streamed (no ``run``)."""

    run: RunInfo | None = field(default=None, metadata=FLAT)
    startup: Startup | None = field(default=None, metadata=FLAT)
    timings: Timings | None = field(default=None, metadata=FLAT)
    flow: Flow | None = field(default=None, metadata=FLAT)


@dataclass(frozen=True)
class Flow:
    """How the stages ran together, and the rate that bounds them. ``bound_fps`` is what the slowest stage
    allows (1000 / its mean ms, times its parallel workers) in a serial calibration in the same worker;
    ``frames_dropped`` (live) the frames the source delivered that the pipeline never took; ``trace`` a few
    frames' stage spans ``[frame, stage, start_ms, end_ms]`` (ms after the window's start)."""

    queue_depth: int | None = None
    inference_streams: int | None = None
    bound_fps: float | None = None
    bound_stage: str | None = None
    frames_dropped: int | None = None
    trace: list[list[Any]] | None = None


@dataclass
class FrameLog:
    """Every measured frame's stage durations, end time (seconds after the window's start), and its
    end-to-end latency and age at preprocessing (seconds), collected as the loop measures them: by the
    pipeline, and by the parent from the frames a worker streams."""

    stages: dict[str, list[float]] = field(default_factory=dict)
    ends: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    age: list[float] = field(default_factory=list)

    def add(self, end: float, stages: Mapping[str, float], e2e: float | None = None,
            age: float | None = None) -> None:
        self.ends.append(end)
        for stage, seconds in stages.items():
            self.stages.setdefault(stage, []).append(seconds)
        if e2e is not None:
            self.e2e.append(e2e)
        if age is not None:
            self.age.append(age)

    def __len__(self) -> int:
        return len(self.ends)

    def timings(self, start: float | None, wall_s: float) -> Timings:
        return Timings.of(self.stages, self.ends, start, wall_s, self.e2e, self.age)


@keeps_none
@dataclass(frozen=True)
class Adapter:
    """The GPU adapter a runtime said it selected."""

    name: str
    backend: str | None = None
    type: str | None = None
    software: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a variant's run ended, as the worker saw it. A crashed, timed-out or interrupted variant keeps the
    frames it streamed (``partial``); one that crashed only while tearing down keeps its result (``teardown``)."""

    status: Status
    error: str | None = None
    traceback: str | None = None
    measured: Measured | None = field(default=None, metadata=FLAT)
    partial: bool = field(default=False, metadata=OMIT_FALSE)
    adapter: Adapter | None = None
    teardown: str | None = None

    @classmethod
    def ok(cls, measured: Measured) -> Outcome:
        return cls(Status.OK, measured=measured)

    @classmethod
    def failed(cls, error: BaseException | str, status: Status = Status.FAILED) -> Outcome:
        message = str(error) if isinstance(error, (AccelError, str)) else f"{type(error).__name__}: {error}"
        return cls(status, error=message)

    @property
    def run(self) -> RunInfo | None:
        return self.measured.run if self.measured is not None else None

    @property
    def startup(self) -> Startup | None:
        return self.measured.startup if self.measured is not None else None

    @property
    def timings(self) -> Timings | None:
        return self.measured.timings if self.measured is not None else None


@keeps_none
@dataclass(frozen=True)
class Power:
    """Power charged to the variant's measured window (a live meter, or a log aligned after the run)."""

    meter: str
    estimated: bool
    samples: Any  # readings inside the window (a count; older documents kept a list)
    gross_w: float | None = None
    net_w: float | None = None
    energy_j: float | None = None
    j_per_frame: float | None = None
    net_j_per_frame: float | None = None
    fps_per_w: float | None = None


@dataclass(frozen=True)
class Charged:
    """What the parent's instruments measured around the variant's window."""

    cool_down: dict[str, Any] | None = None
    thermal: dict[str, Any] | None = None
    power: Power | None = None
    sustained: dict[str, Any] | None = None


@dataclass(frozen=True)
class SecondStart:
    load_ms: float | None = None
    first_inference_ms: float | None = None
    error: str | None = None
    teardown: str | None = None


@dataclass(frozen=True)
class Cache:
    """A variant whose start-up fills a cache, started a second time in a fresh process."""

    path: str
    was_empty: bool
    filled: bool
    second_start: SecondStart


@dataclass(frozen=True)
class ModelRan:
    """The model a delegate ran instead of the given one (e.g. split at its post-process op)."""

    path: str
    sha256: str
    family: str
    why: str


@dataclass(frozen=True)
class Agreement:
    """Detections matching the reference variant's on the same frames."""

    reference: str
    score: float | None = None
    mean_iou: float | None = None
    score_drift: float | None = None
    frames: int | None = None
    at_cut: int | None = None  # detections one side lacks only at a score cut (accel.results.agreement), not counted

    def to_json(self) -> dict[str, Any]:
        if self.frames is None:  # no frame shared with the reference: nothing was compared
            return {"reference": self.reference, "score": None}
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # None stays: "n/a"
        if self.at_cut is None:  # documents written before it was counted
            del out["at_cut"]
        return out


@dataclass(frozen=True)
class VariantRecord:
    """One variant of a comparison: what ran (delegate variant x kernel set) and every part measured."""

    variant: str
    delegate: str
    options: dict[str, Any]
    kernels: str
    execution: str  # "serial" or "pipelined"
    outcome: Outcome = field(metadata=FLAT)
    charged: Charged = field(default_factory=Charged, metadata=FLAT)
    cache: Cache | None = None
    model_ran: ModelRan | None = None
    agreement: Agreement | None = None
    accuracy: dict[str, Any] | None = None
    model: str | None = None  # the model's name (its file name; None: a backend skipped for every model)

    # The parts most readers want, by name.
    @property
    def key(self) -> tuple[str | None, str, str, str]:
        """What tells the records of one comparison apart: model, variant, kernel set, execution."""
        return self.model, self.variant, self.kernels, self.execution

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def ok(self) -> bool:
        return self.outcome.status is Status.OK

    @property
    def error(self) -> str | None:
        return self.outcome.error

    @property
    def run(self) -> RunInfo | None:
        return self.outcome.run

    @property
    def startup(self) -> Startup | None:
        return self.outcome.startup

    @property
    def timings(self) -> Timings | None:
        return self.outcome.timings

    @property
    def power(self) -> Power | None:
        return self.charged.power

    @property
    def window(self) -> Window | None:
        return self.outcome.timings.window if self.outcome.timings is not None else None

    def to_json(self) -> dict[str, Any]:
        return dump(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VariantRecord:
        """The record of a variant object; ``ConfigError`` (one line) for one accel cannot read."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a variant of the result is not an object: {data!r}")
        name = data.get("variant", "?")
        if "status" not in data:
            raise ConfigError(f"variant {name!r} of the result has no status")
        try:  # documents from before pipelined execution ran every variant serially
            return typing.cast(VariantRecord, load(cls, {"execution": "serial", **data}))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"variant {name!r} of the result is not one accel reads: {exc}") from exc
