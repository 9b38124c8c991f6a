"""One variant's measured run: preprocess -> inference -> postprocess over the frames, timed per stage.

``run_job`` is process-agnostic and returns the parts it measured (``accel.results.record.Measured``);
``accel.run.worker`` runs it in a child process so a crashing delegate takes down only its own variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import numpy as np

from accel.core.errors import DelegateError, KernelError
from accel.core.frames import Frame
from accel.delegates import Runner, RunnerBase, Variant, get_delegate
from accel.kernels import DecodeSpec, DetectionPostProcess, InputSpec, KernelSet, ResizeMode, get_kernels
from accel.model import Family, ModelInfo, ssd_raw_anchors
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.results.record import Flow, Measured, RunInfo
from accel.run.loop import STAGES, Feed, Loop

__all__ = ["decode_spec", "input_spec", "open_runner", "run_job"]

_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}


def input_spec(model: ModelInfo, resize: str = "auto", fill: int = 114, input_range: str = "auto",
               resize_filter: str = "auto") -> InputSpec:
    """How to feed the model's image input.

    uint8 inputs take raw pixels (the converter's intent for image models: real = scale * (q - zp) spans
    the training range); int8 inputs take ``round(r / scale) + zp`` with ``r`` the pixel mapped onto the
    real range the network was trained on: ``[model] input_range`` when set, else 0..1 for YOLO exports
    (Ultralytics trains on 0..1, whatever span the calibration gave the input's quantization: one real
    YOLOv8n export spans -2.13..2.63), else the span snapped to (0, 1), (-1, 1) or (0, 255); float32 inputs
    take ``[model] input_range`` (auto: 0..1 for YOLO exports, else -1..1, the TensorFlow image-model
    convention). ``range_from`` says which rule decided. Resize ``auto`` letterboxes YOLO models (as they
    were trained) and stretches the others. ``resize_filter`` ([model] resize_filter) is the kernel set's
    to honour (auto: its own).
    """
    t = model.image_input
    h, w = model.input_size
    yolo = model.family.value.startswith("yolo")
    mode = ResizeMode(resize) if resize != "auto" else (ResizeMode.LETTERBOX if yolo else ResizeMode.STRETCH)
    if t.dtype == "uint8":
        return InputSpec(h, w, "uint8", 1.0, 0, (0.0, 255.0), mode, fill, "uint8 input: raw pixels", resize_filter)
    if t.dtype not in ("int8", "float32"):
        raise KernelError(f"{model.path.name}: image input of dtype {t.dtype} is not supported "
                          "(expected uint8, int8 or float32)")
    scale, zero_point = (t.scale or 1.0, t.zero_point) if t.dtype == "int8" else (1.0, 0)
    if input_range != "auto":
        rng, why = _RANGES[input_range], f"[model] input_range = {input_range}"
    elif yolo:
        rng, why = (0.0, 1.0), f"{model.family.value} family: YOLO exports take 0..1"
    elif t.dtype == "float32":
        rng, why = (-1.0, 1.0), "float32 input: the TensorFlow image-model convention -1..1"
    else:
        lo, hi = scale * (-128 - zero_point), scale * (127 - zero_point)
        rng = _snap_range(lo, hi)
        why = f"int8 quantization spans {lo:.3g}..{hi:.3g}: nearest {rng[0]:g}..{rng[1]:g}"
    return InputSpec(h, w, t.dtype, scale, zero_point, rng, mode, fill, why, resize_filter)


def _snap_range(lo: float, hi: float) -> tuple[float, float]:
    return min(_RANGES.values(), key=lambda r: abs(r[0] - lo) + abs(r[1] - hi))


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
    if d.box_scales:
        fields["box_scales"] = d.box_scales
    if d.box_order != "auto":
        fields["box_order"] = d.box_order
    if d.score_activation != "auto":
        fields["score_activation"] = d.score_activation
    if d.background_class != "auto":
        fields["background_class"] = d.background_class == "yes"
    if model.family is Family.SSD_RAW:
        fields["anchors"] = ssd_raw_anchors(model, d.anchor_options())
    if fields.get("postprocess") is not None:
        fields["postprocess"] = DetectionPostProcess.from_options(fields["postprocess"])
    return DecodeSpec(family=model.family.value, input_size=model.input_size,
                      score_threshold=settings.score_threshold, iou_threshold=settings.iou_threshold,
                      max_detections=settings.max_detections, top_k=settings.top_k, labels=settings.labels,
                      quant=quant, **fields)


FrameHook = Callable[[str, Any], None]


def run_job(job: Job, frames: list[Frame], progress: Callable[[int, int], None] | None = None,
            on_frame: FrameHook | None = None) -> Measured:
    """Measure one job: its variant and kernel set on its model, serial or pipelined, over ``frames`` (replay)
    or its live source. Raises ``AccelError`` on failure; the caller records it and goes on.

    ``on_frame`` streams the measurement as it happens: ``("init", Startup)`` after the first inference,
    ``("window", start)`` when the measured loop starts (monotonic seconds), then ``("frame", (seconds since
    start, {stage: seconds}, end-to-end seconds, age seconds or None))`` per frame, so a caller keeps what was
    measured even if the process dies before the record is returned."""
    # The input and the decoding are checked before the delegate opens: a model accel cannot feed fails
    # with that reason, not with whatever a GPU driver does first.
    model, variant, settings, execution = job.model, job.variant, job.settings, job.execution
    spec = input_spec(model, settings.resize, settings.fill, settings.input_range, settings.resize_filter)
    dspec = decode_spec(model, settings)
    kernels = get_kernels(job.kernels, settings.options_of(job.kernels))
    source = None
    if settings.live_source is not None:
        from accel.sources import open_source

        source = open_source(settings.live_source)
    try:
        feed = Feed(frames, source)
        with ExitStack() as stack:
            t0 = time.perf_counter()
            runners = [stack.enter_context(open_runner(model, variant))]
            load_s = time.perf_counter() - t0
            streams = settings.inference_streams if execution == "pipelined" else 1
            runners += [stack.enter_context(open_runner(model, variant)) for _ in range(streams - 1)]
            loop = Loop(model, runners, kernels, settings, spec, dspec, on_frame or (lambda kind, data: None))
            startup = loop.start(feed, load_s)
            if execution == "pipelined":
                bound_fps, bound_stage = loop.calibrate(feed)
                loop.measure_pipelined(feed, progress)
            else:
                loop.measure(feed, progress)
                bound_fps, bound_stage = loop.serial_bound(feed.live)
        flow = Flow(queue_depth=settings.queue_depth if execution == "pipelined" else None,
                    inference_streams=streams, bound_fps=bound_fps, bound_stage=bound_stage,
                    frames_dropped=loop.frames_dropped, trace=loop.trace or None)
        return Measured(_run_info(runners[0], kernels, loop, source is not None), startup, loop.timings(), flow)
    finally:
        kernels.close()
        if source is not None:
            source.close()


def open_runner(model: ModelInfo, variant: Variant) -> Runner:
    """The variant's delegate opened on the model, checked to be a Runner (a plugin's open() may return
    anything): how compare's and watch's detectors get their runners."""
    runner = get_delegate(variant.delegate).open(model, variant)
    if not isinstance(runner, RunnerBase):
        raise DelegateError(f"{variant.delegate}: open() returned a {type(runner).__qualname__}, not an "
                            "accel.delegates.RunnerBase; update the package that provides it")
    return runner



def _filter_of(kernels: KernelSet, spec: InputSpec) -> str:
    """The resize filter the kernel set used (a plugin set without ``filter_for`` says its own, unknown)."""
    choose = getattr(kernels, "filter_for", None)
    return str(choose(spec)) if choose is not None else spec.resize_filter


def _run_info(runner: Runner, kernels: KernelSet, loop: Loop, live: bool) -> RunInfo:
    spec = loop.spec
    inference = loop.log.stages["inference"]
    inference_mean = float(np.mean(inference)) if inference else 0.0
    return RunInfo(
        runtime=runner.runtime, placement=runner.placement, kernels_info=kernels.describe(),
        input={"dtype": spec.dtype, "scale": spec.scale, "zero_point": spec.zero_point,
               "norm_range": list(spec.norm_range), "norm_range_from": spec.range_from, "resize": spec.resize.value,
               "resize_filter": _filter_of(kernels, spec), "size": [spec.height, spec.width]},
        fps_stages=sorted(STAGES if live else STAGES[1:]),
        inference_fps=1.0 / inference_mean if inference_mean > 0 else 0.0,
        usage=loop.usage, detections={str(k): v for k, v in loop.detections.items()})
