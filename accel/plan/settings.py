"""What every variant of a comparison runs with, made from the config in one place.

``Settings.from_config(config, model, dataset=..., labels=...)`` is where accel.toml, the environment and
the command line become a variant's frame counts, thresholds, decoding and kernel options; nothing else
copies config into settings or patches them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from accel.core.errors import ConfigError, SourceError
from accel.core.frames import PixelFormat
from accel.model import ModelInfo
from accel.plan.config import Config
from accel.plan.sections import DecodeSection, ModelSection, Table
from accel.sources import SELF_PACED, SourceSpec, parse_source

if TYPE_CHECKING:
    from accel.dataset.coco import Dataset

__all__ = ["Settings", "source_spec"]


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
    resize_filter: str = "auto"  # [model] resize_filter of this model
    save_detections: int = 20
    labels: tuple[str, ...] = ()
    live_source: SourceSpec | None = None  # set when each variant pulls frames from the source itself
    timeout_s: float = 600.0
    queue_depth: int = 2  # pipelined: frames each queue between two stages holds
    inference_streams: int = 1  # pipelined: runners of the variant inferring in parallel
    decode: DecodeSection = DecodeSection()  # the [decode] table of accel.toml
    kernel_options: Table = Table()  # [kernels.NAME] tables

    @classmethod
    def from_config(cls, config: Config, model: ModelInfo, *, dataset: Dataset | None = None,
                    labels: tuple[str, ...] = (), live: bool | None = None,
                    section: ModelSection | None = None) -> Settings:
        """The settings ``config`` asks for on ``model``. With a dataset every image is decoded down to the
        evaluation threshold and kept (AP sees the low-score tail); a sustained run measures every variant
        for its duration, whatever the frame count. ``live`` (default: ``[pipeline] live``): every variant
        pulls frames from the source itself, as ``accel watch`` always does. ``section``: the model's own
        [model] keys (a ``[[models]]`` table; default [model])."""
        p, decode, own = config.pipeline, config.decode, section or config.model
        live = p.live if live is None else live
        frames, seconds, timeout_s = p.frames, p.seconds, p.timeout_s
        score_threshold, save_detections = p.score_threshold, config.output.save_detections
        if dataset is not None:
            score_threshold = min(score_threshold, config.accuracy.eval_score_threshold)
            save_detections = len(dataset.images)
            frames = max(frames, len(dataset.images))
        sustained = config.thermal.sustained_s
        if sustained > 0:
            frames, seconds, timeout_s = 1, sustained, max(timeout_s, sustained + 300)
        return cls(frames=frames, seconds=seconds, warmup=p.warmup, score_threshold=score_threshold,
                   iou_threshold=decode.iou_threshold, max_detections=decode.max_detections,
                   top_k=p.top_k, resize=p.resize, fill=p.fill, input_range=own.input_range,
                   resize_filter=own.resize_filter,
                   save_detections=save_detections, labels=labels,
                   live_source=source_spec(config, model, live=True) if live else None, timeout_s=timeout_s,
                   queue_depth=p.queue_depth, inference_streams=p.inference_streams,
                   decode=decode, kernel_options=config.kernels)

    def options_of(self, kernels: str) -> dict[str, Any]:
        """The ``[kernels.NAME]`` options of the kernel set ``kernels``, plain (as TOML gave them)."""
        table = self.kernel_options.get(kernels)
        return table.thaw() if table is not None else {}

    def startup_only(self) -> Settings:
        """The same variant started and run once: creation and first inference, nothing measured."""
        return replace(self, frames=0, seconds=0.0, warmup=0, save_detections=0)


def source_spec(config: Config, model: ModelInfo, *, live: bool | None = None) -> SourceSpec:
    """The configured source. Size ``auto`` is 640x480 for synthetic scenes, the model's input size for the
    Pi camera's lores stream (how Picamera2's own TFLite examples size it), and the native size otherwise.

    Live runs (``[pipeline] live``) pace the source at ``source_fps`` with ``buffer_count`` frames kept
    (0: its own rate); replay capture is unpaced: the frames are read once, as fast as they come. A camera
    runs at its sensor's rate, so a ``source_fps`` other than 0 for one is a ``ConfigError``. ``live``
    overrides ``[pipeline] live``."""
    p = config.pipeline
    live = p.live if live is None else live
    try:
        kind, target = parse_source(p.source)
    except SourceError as exc:
        raise ConfigError(f"{config.where('pipeline', 'source')}: {exc}") from None
    size = p.source_size
    if kind == "synthetic" and re.fullmatch(r"\d+x\d+", target):
        size = target
    elif size == "auto":
        h, w = model.input_size
        size = {"synthetic": "640x480", "picamera2": f"{w}x{h}"}.get(kind, "native")
    width, height = (int(v) for v in size.split("x")) if size != "native" else (None, None)
    fmt = None if p.source_format == "auto" else PixelFormat.parse(p.source_format)
    fps = p.source_fps if live and kind not in SELF_PACED else None
    if live and kind in SELF_PACED and p.source_fps:
        raise ConfigError(f"{config.where('pipeline', 'source_fps')}: {kind} cameras deliver at their sensor's own "
                          f"rate and are not paced; got source_fps = {p.source_fps:g}: set it to 0 (or leave "
                          "--source-fps out)")
    return SourceSpec(kind=kind, target=target, width=width, height=height, format=fmt, seed=p.seed, loop=True,
                      fps=fps, buffer_count=p.buffer_count, max_pixels=p.max_pixels)
