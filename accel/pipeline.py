"""One variant's measured run: preprocess -> inference -> postprocess over the frames, timed per stage.

``run_variant`` is process-agnostic and returns the parts it measured (``accel.record.Measured``);
``accel.worker`` runs it in a child process so a crashing delegate takes down only its own variant.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accel.delegates import Runner, RunnerBase, Variant, get_delegate
from accel.detections import Classification, Detections
from accel.errors import DelegateError, KernelError, OptionError, UnknownPluginError
from accel.frames import Frame
from accel.kernels import REGISTRY as KERNELS
from accel.kernels import DecodeSpec, InputSpec, KernelSet, KernelSetBase, ResizeMode
from accel.measure import UsageMeter
from accel.model import Family, ModelInfo, ssd_raw_anchors
from accel.record import FrameLog, Measured, RunInfo, Startup, Timings, Usage
from accel.settings import Settings

__all__ = ["decode_spec", "get_kernels", "input_spec", "run_variant"]

_STAGES = ("capture", "preprocess", "inference", "postprocess")
_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


def input_spec(model: ModelInfo, resize: str = "auto", fill: int = 114, input_range: str = "auto") -> InputSpec:
    """How to feed the model's image input.

    uint8 inputs take raw pixels (the converter's intent for image models: real = scale * (q - zp) spans
    the training range); int8 inputs take ``round(r / scale) + zp`` with ``r`` the pixel mapped onto the
    real range the quantization spans, snapped to (0, 1), (-1, 1) or (0, 255); float32 inputs take the
    range from ``[model] input_range`` (auto: 0..1 for YOLO exports, else -1..1, the TensorFlow
    image-model convention). Resize ``auto`` letterboxes YOLO models (as they were trained) and stretches
    the others.
    """
    t = model.image_input
    h, w = model.input_size
    yolo = model.family.value.startswith("yolo")
    mode = ResizeMode(resize) if resize != "auto" else (ResizeMode.LETTERBOX if yolo else ResizeMode.STRETCH)
    if t.dtype == "uint8":
        return InputSpec(h, w, "uint8", 1.0, 0, (0.0, 255.0), mode, fill)
    if t.dtype == "int8":
        scale = t.scale or 1.0
        lo, hi = scale * (-128 - t.zero_point), scale * (127 - t.zero_point)
        rng = _RANGES[input_range] if input_range != "auto" else _snap_range(lo, hi)
        return InputSpec(h, w, "int8", scale, t.zero_point, rng, mode, fill)
    if t.dtype == "float32":
        rng = _RANGES[input_range] if input_range != "auto" else ((0.0, 1.0) if yolo else (-1.0, 1.0))
        return InputSpec(h, w, "float32", 1.0, 0, rng, mode, fill)
    raise KernelError(f"{model.path.name}: image input of dtype {t.dtype} is not supported "
                      "(expected uint8, int8 or float32)")


def _snap_range(lo: float, hi: float) -> tuple[float, float]:
    return min(_RANGES.values(), key=lambda r: abs(r[0] - lo) + abs(r[1] - hi))


def get_kernels(name: str, options: dict[str, Any] | None = None) -> KernelSet:
    """The kernel set ``name`` built with its ``[kernels.NAME]`` options. ``UnknownPluginError`` for a name
    no plugin has, ``OptionError`` for an option its constructor does not take, ``KernelError`` saying why
    it cannot run here."""
    try:
        factory = KERNELS.load(name)
    except LookupError:
        raise UnknownPluginError(f"unknown kernel set {name!r}; known: {', '.join(KERNELS.names())}") from None
    except ImportError as exc:
        raise KernelError(str(exc)) from exc
    options = dict(options or {})
    takes = _keywords(factory)
    unknown = sorted(set(options) - takes) if takes is not None else []
    if unknown:
        known = f"known: {', '.join(sorted(takes or ()))}" if takes else "it takes none"
        raise OptionError(f"kernels.{name}", f"unknown option {unknown[0]!r}; {known}", unknown[0])
    kernels = factory(**options)
    if not isinstance(kernels, KernelSetBase):
        raise KernelError(f"kernel set plugin {name!r} ({type(kernels).__module__}.{type(kernels).__qualname__}) "
                          "does not derive from accel.kernels.KernelSetBase; update the package that provides it")
    available = kernels.probe()
    if not available.ok:
        raise KernelError(f"kernel set {name!r} is unavailable: {available.reason}")
    return kernels


def _keywords(factory: Any) -> set[str] | None:
    """The keyword arguments ``factory`` takes, or None when it takes any (``**kwargs``) or cannot tell."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def decode_spec(model: ModelInfo, settings: Settings) -> DecodeSpec:
    """How this model's outputs become answers: family, thresholds, quantization of each output role, and
    the decoding the model implies (``model.decode_hints``) overridden by every ``[decode]`` key set to a
    value other than auto (``box_scales = []``, ``"auto"``). ssd-raw anchors: ``anchors = "model"`` takes
    the model's (an error when it has none), ``"generate"`` always generates them from the ``anchor_*``
    keys (``accel.model.anchors``), ``"auto"`` takes the model's when it has them, else generates."""
    quant = {role: (model.outputs[pos].scale, model.outputs[pos].zero_point)
             for role, pos in model.roles.items() if model.outputs[pos].quantized}
    d = settings.decode
    fields: dict[str, Any] = dict(model.decode_hints)
    if d.get("box_scales"):
        fields["box_scales"] = tuple(float(v) for v in d["box_scales"])
    for key in ("box_order", "score_activation"):
        if d.get(key, "auto") != "auto":
            fields[key] = d[key]
    if d.get("background_class", "auto") != "auto":
        fields["background_class"] = d["background_class"] == "yes"
    if model.family is Family.SSD_RAW:
        fields["anchors"] = ssd_raw_anchors(model, d)
    return DecodeSpec(family=model.family.value, input_size=model.input_size,
                      score_threshold=settings.score_threshold, iou_threshold=settings.iou_threshold,
                      max_detections=settings.max_detections, top_k=settings.top_k, labels=settings.labels,
                      quant=quant, **fields)


def _postprocess(model: ModelInfo, kernels: KernelSet, outs: list[np.ndarray], geometry: Any,
                 spec: DecodeSpec) -> Detections | Classification:
    return kernels.postprocess({role: outs[pos] for role, pos in model.roles.items()}, spec, geometry)


FrameHook = Callable[[str, Any], None]


def run_variant(model: ModelInfo, variant: Variant, kernels_name: str, frames: list[Frame],
                settings: Settings, progress: Callable[[int, int], None] | None = None,
                on_frame: FrameHook | None = None) -> Measured:
    """Measure one (delegate variant, kernel set) pair. Raises ``AccelError`` on failure; the caller
    records it and goes on.

    ``on_frame`` streams the measurement as it happens: ``("init", Startup)`` after the first inference,
    ``("window", start)`` when the measured loop starts (monotonic seconds), then ``("frame", (seconds since
    start, {stage: seconds}))`` per frame, so a caller keeps what was measured even if the process dies
    before the record is returned."""
    # The input and the decoding are checked before the delegate opens: a model accel cannot feed fails
    # with that reason, not with whatever a GPU driver does first.
    spec = input_spec(model, settings.resize, settings.fill, settings.input_range)
    dspec = decode_spec(model, settings)
    kernels = get_kernels(kernels_name, settings.kernel_options.get(kernels_name))
    source = None
    if settings.live_source is not None:
        from accel.sources import open_source

        source = open_source(settings.live_source)
    try:
        feed = _Feed(frames, source)
        t0 = time.perf_counter()
        runner = get_delegate(variant.delegate).open(model, variant)
        load_s = time.perf_counter() - t0
        if not isinstance(runner, RunnerBase):
            raise DelegateError(f"{variant.delegate}: open() returned a {type(runner).__qualname__}, not an "
                                "accel.delegates.RunnerBase; update the package that provides it")
        with runner:
            loop = _Loop(model, runner, kernels, settings, spec, dspec, on_frame or (lambda kind, data: None))
            startup = loop.start(feed, load_s)
            loop.measure(feed, progress)
        return Measured(_run_info(runner, kernels, loop, source is not None), startup, loop.timings())
    finally:
        kernels.close()
        if source is not None:
            source.close()


class _Feed:
    """Frame i of the replayed frames (their capture cost was paid once, up front), or the next frame read
    from a live source (its read counts as the capture stage)."""

    def __init__(self, frames: Sequence[Frame], source: Any) -> None:
        self._frames, self._source = frames, source

    def __call__(self, i: int) -> tuple[Frame, float]:
        if self._source is None:
            frame = self._frames[i % len(self._frames)]
            return frame, frame.capture_s
        t = time.perf_counter()
        frame = self._source.read()
        return frame, time.perf_counter() - t


@dataclass
class _Loop:
    """The measured loop's state: per-stage durations of every frame, their end times, saved detections."""

    model: ModelInfo
    runner: Runner
    kernels: KernelSet
    settings: Settings
    spec: InputSpec
    dspec: DecodeSpec
    emit: FrameHook

    def __post_init__(self) -> None:
        self.log = FrameLog({s: [] for s in _STAGES})
        self.detections: dict[int, Any] = {}
        self.window_start: float | None = None
        self.wall = 0.0
        self.usage = Usage()

    def start(self, feed: _Feed, load_s: float) -> Startup:
        """The first inference (timed on its own: shader compilation lands here), then the warm-up."""
        tensor, _ = self.kernels.preprocess(feed(0)[0], self.spec)
        t0 = time.perf_counter()
        self.runner.run([tensor])
        startup = Startup(load_s * 1e3, (time.perf_counter() - t0) * 1e3)
        self.emit("init", startup)
        for i in range(self.settings.warmup):
            tensor, geometry = self.kernels.preprocess(feed(i)[0], self.spec)
            _postprocess(self.model, self.kernels, self.runner.run([tensor]), geometry, self.dspec)
        return startup

    def measure(self, feed: _Feed, progress: Callable[[int, int], None] | None) -> None:
        settings, kernels = self.settings, self.kernels
        meter = UsageMeter()
        meter.start()
        self.window_start = time.monotonic()
        start = time.perf_counter()
        self.emit("window", self.window_start)
        deadline = start + settings.timeout_s
        n, elapsed = 0, 0.0
        while (n < settings.frames or elapsed < settings.seconds) and time.perf_counter() < deadline:
            frame, capture_s = feed(n)
            ta = time.perf_counter()
            tensor, geometry = kernels.preprocess(frame, self.spec)
            tb = time.perf_counter()
            stages = {"capture": capture_s, "preprocess": tb - ta, **self._split("preprocess")}
            outs = self.runner.run([tensor])
            tc = time.perf_counter()
            result = _postprocess(self.model, kernels, outs, geometry, self.dspec)
            td = time.perf_counter()
            stages.update({"inference": tc - tb, "postprocess": td - tc, **self._split("postprocess")})
            if self.runner.last_invoke_s is not None:
                stages["invoke"] = self.runner.last_invoke_s
            self.log.add(td - start, stages)
            self.emit("frame", (td - start, stages))
            if len(self.detections) < settings.save_detections and frame.index not in self.detections:
                self.detections[frame.index] = result.to_json()
            n += 1
            elapsed = td - start
            if progress is not None and n % 5 == 0:
                progress(n, settings.frames)
            if n % 50 == 0:
                meter.sample()
        self.wall = time.perf_counter() - start
        self.usage = meter.stop()

    def _split(self, stage: str) -> dict[str, float]:
        """Kernel sets that run on a device: transfers apart from kernel time (``preprocess_upload`` ...)."""
        return {f"{stage}_{key.removesuffix('_ms')}": ms / 1e3 for key, ms in self.kernels.last_timings().items()}

    def timings(self) -> Timings:
        return self.log.timings(self.window_start, self.wall)


def _run_info(runner: Runner, kernels: KernelSet, loop: _Loop, live: bool) -> RunInfo:
    spec = loop.spec
    inference = loop.log.stages["inference"]
    inference_mean = float(np.mean(inference)) if inference else 0.0
    return RunInfo(
        runtime=runner.runtime, placement=runner.placement, kernels_info=kernels.describe(),
        input={"dtype": spec.dtype, "scale": spec.scale, "zero_point": spec.zero_point,
               "norm_range": list(spec.norm_range), "resize": spec.resize.value, "size": [spec.height, spec.width]},
        fps_stages=sorted(_STAGES if live else _STAGES[1:]),
        inference_fps=1.0 / inference_mean if inference_mean > 0 else 0.0,
        usage=loop.usage, detections={str(k): v for k, v in loop.detections.items()})
