"""One variant's measured run: preprocess -> inference -> postprocess over the frames, timed per stage.

``run_variant`` is process-agnostic; ``accel.worker`` runs it in a child process so a crashing delegate
takes down only its own variant.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accel.delegates import Variant, get_delegate
from accel.detections import Classification, Detections
from accel.errors import AccelError, ConfigError, KernelError
from accel.frames import Frame
from accel.kernels import REGISTRY as KERNELS
from accel.kernels import DecodeSpec, InputSpec, KernelSet, ResizeMode
from accel.measure import UsageMeter, stats_ms
from accel.model import Family, ModelInfo, ssd_raw_anchors

__all__ = ["Settings", "decode_spec", "get_kernels", "input_spec", "run_variant"]

_STAGES = ("capture", "preprocess", "inference", "postprocess")
_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


@dataclass(frozen=True)
class Settings:
    """What every variant of a comparison shares."""

    frames: int = 100
    seconds: float = 2.0
    warmup: int = 10
    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_detections: int = 100
    top_k: int = 5
    resize: str = "auto"
    fill: int = 114
    input_range: str = "auto"
    save_detections: int = 20
    labels: tuple[str, ...] = ()
    live_source: Any = None  # a SourceSpec when each variant pulls frames from the source itself
    timeout_s: float = 600.0
    decode: dict[str, Any] = field(default_factory=dict)  # the [decode] table of accel.toml
    kernel_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # [kernels.NAME] tables
    extra: dict[str, Any] = field(default_factory=dict)


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
    """The kernel set ``name`` built with its ``[kernels.NAME]`` options, or ``KernelError`` saying why it
    cannot run here (``ConfigError`` for an option it does not take)."""
    try:
        factory = KERNELS.load(name)
    except LookupError:
        raise KernelError(f"unknown kernel set {name!r}; known: {', '.join(KERNELS.names())}") from None
    except ImportError as exc:
        raise KernelError(str(exc)) from exc
    try:
        kernels: KernelSet = factory(**(options or {}))
    except TypeError as exc:
        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        key = found.group(1) if found else next(iter(options or {}), None) if "no arguments" in str(exc) else None
        raise ConfigError(f"kernels.{name}: unknown option {key!r}" if key else f"kernels.{name}: {exc}") from None
    available = kernels.probe()
    if not available.ok:
        raise KernelError(f"kernel set {name!r} is unavailable: {available.reason}")
    return kernels


def decode_spec(model: ModelInfo, settings: Settings) -> DecodeSpec:
    """How this model's outputs become answers: family, thresholds, quantization of each output role, and
    the decoding the model implies (``model.decode_hints``) overridden by every ``[decode]`` key set to a
    value other than auto (``box_scales = []``, ``"auto"``). ssd-raw anchors: ``anchors = "model"`` takes
    the model's (an error when it has none), ``"generate"`` always generates them from the ``anchor_*``
    keys (``accel.anchors``), ``"auto"`` takes the model's when it has them, else generates."""
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
                on_frame: FrameHook | None = None) -> dict[str, Any]:
    """Measure one (delegate variant, kernel set) pair. Raises ``AccelError`` on failure; the caller
    records it and goes on.

    ``on_frame`` streams the measurement as it happens: ``("init", {load_ms, first_inference_ms})`` after the
    first inference, ``("window", start)`` when the measured loop
    starts (monotonic seconds), then ``("frame", (seconds since start, {stage: seconds}))`` per frame, so a
    caller keeps what was measured even if the process dies before the record is returned."""
    kernels = get_kernels(kernels_name, settings.kernel_options.get(kernels_name))
    source = None
    if settings.live_source is not None:
        from accel.sources import open_source

        source = open_source(settings.live_source)
    try:
        return _measure(model, variant, kernels, frames, settings, source, progress, on_frame)
    finally:
        kernels.close()
        if source is not None:
            source.close()


def _measure(model: ModelInfo, variant: Variant, kernels: KernelSet, frames: list[Frame], settings: Settings,
             source: Any, progress: Callable[[int, int], None] | None, on_frame: FrameHook | None) -> dict[str, Any]:
    spec = input_spec(model, settings.resize, settings.fill, settings.input_range)
    dspec = decode_spec(model, settings)

    def next_frame(i: int) -> tuple[Frame, float]:
        if source is None:
            frame = frames[i % len(frames)]
            return frame, frame.capture_s
        t = time.perf_counter()
        frame = source.read()
        return frame, time.perf_counter() - t

    t0 = time.perf_counter()
    runner = get_delegate(variant.delegate).open(model, variant)
    load_s = time.perf_counter() - t0
    try:
        frame, _ = next_frame(0)
        tensor, _ = kernels.preprocess(frame, spec)
        t0 = time.perf_counter()
        runner.run([tensor])
        first_s = time.perf_counter() - t0
        if on_frame is not None:
            on_frame("init", {"load_ms": load_s * 1e3, "first_inference_ms": first_s * 1e3})
        for i in range(settings.warmup):
            frame, _ = next_frame(i)
            tensor, geometry = kernels.preprocess(frame, spec)
            _postprocess(model, kernels, runner.run([tensor]), geometry, dspec)

        timings: dict[str, list[float]] = {s: [] for s in _STAGES}
        split = getattr(kernels, "last_timings", None)
        detections: dict[int, Any] = {}
        frame_end: list[float] = []
        meter = UsageMeter()
        meter.start()
        window_start = time.monotonic()
        start = time.perf_counter()
        if on_frame is not None:
            on_frame("window", window_start)
        deadline = start + settings.timeout_s
        n = 0
        elapsed = 0.0
        while (n < settings.frames or elapsed < settings.seconds) and time.perf_counter() < deadline:
            frame, capture_s = next_frame(n)
            ta = time.perf_counter()
            tensor, geometry = kernels.preprocess(frame, spec)
            tb = time.perf_counter()
            if split is not None:
                for key, value in split().items():
                    timings.setdefault(f"preprocess_{key[:-3]}", []).append(value / 1e3)
            outs = runner.run([tensor])
            tc = time.perf_counter()
            result = _postprocess(model, kernels, outs, geometry, dspec)
            td = time.perf_counter()
            for stage, dt in zip(_STAGES, (capture_s, tb - ta, tc - tb, td - tc), strict=True):
                timings[stage].append(dt)
            if split is not None:  # kernel sets that run on a device: transfers apart from kernel time
                for key, value in split().items():
                    timings.setdefault(f"postprocess_{key[:-3]}", []).append(value / 1e3)
            invoke_s = getattr(runner, "last_invoke_s", None)
            if invoke_s is not None:
                timings.setdefault("invoke", []).append(invoke_s)
            frame_end.append(td - start)
            if on_frame is not None:
                on_frame("frame", (td - start, {k: v[-1] for k, v in timings.items() if v}))
            if len(detections) < settings.save_detections and frame.index not in detections:
                detections[frame.index] = result.to_json()
            n += 1
            elapsed = td - start
            if progress is not None and n % 5 == 0:
                progress(n, settings.frames)
            if n % 50 == 0:
                meter.sample()
        wall = time.perf_counter() - start
        usage = meter.stop()
    finally:
        runner.close()

    inference_mean = float(np.mean(timings["inference"])) if n else 0.0
    loop_stages = ("capture", "preprocess", "inference", "postprocess") if source else ("preprocess", "inference",
                                                                                        "postprocess")
    return {
        "variant": variant.label,
        "delegate": variant.delegate,
        "options": dict(variant.options),
        "kernels": kernels.name,
        "kernels_info": kernels.describe() if hasattr(kernels, "describe") else {},
        "status": "ok",
        "runtime": runner.runtime,
        "placement": runner.placement.to_json(),
        "input": {"dtype": spec.dtype, "scale": spec.scale, "zero_point": spec.zero_point,
                  "norm_range": list(spec.norm_range), "resize": spec.resize.value, "size": [spec.height, spec.width]},
        "frames_measured": n,
        "wall_s": wall,
        "window": {"start": window_start, "end": window_start + wall},
        "load_ms": load_s * 1e3,
        "first_inference_ms": first_s * 1e3,
        "fps": n / wall if wall > 0 else 0.0,
        "fps_stages": sorted(loop_stages),
        "inference_fps": 1.0 / inference_mean if inference_mean > 0 else 0.0,
        "usage": usage,
        "detections": {str(k): v for k, v in detections.items()},
        **timing_fields(timings, frame_end),
    }


def timing_fields(timings: dict[str, list[float]], frame_end: list[float]) -> dict[str, Any]:
    """A record's per-frame figures: stage statistics, every frame's stage durations (ms) and end times
    (seconds after the window's start). Shared by finished records and partial ones a worker leaves."""
    return {"stages": {s: stats_ms(v) for s, v in timings.items()},
            "raw_ms": {s: [round(x * 1e3, 4) for x in v] for s, v in timings.items()},
            "frame_end": [round(t, 5) for t in frame_end]}


def failure(variant: Variant, kernels_name: str, exc: BaseException | str, status: str = "failed") -> dict[str, Any]:
    """The record of a variant that did not run to the end."""
    message = str(exc) if isinstance(exc, (AccelError, str)) else f"{type(exc).__name__}: {exc}"
    return {"variant": variant.label, "delegate": variant.delegate, "options": dict(variant.options),
            "kernels": kernels_name, "status": status, "error": message}
