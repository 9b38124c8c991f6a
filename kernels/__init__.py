"""How pre- and post-processing run: the kernel-set contract and its registry.

A kernel set turns a camera ``Frame`` into the model's input tensor (``preprocess``) and the model's raw
outputs into ``Detections`` or a ``Classification`` (``postprocess``). The ``numpy`` set is the
correctness reference every other set is tested against.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self

import numpy as np

from accel.core.errors import KernelError, UnknownPluginError
from accel.core.plugins import Availability, Registry, check_options
from accel.model.edit import POSTPROCESS_OP

if TYPE_CHECKING:

    from accel.core.detections import Classification, Detections
    from accel.core.frames import Frame

__all__ = [
    "DecodeSpec",
    "DetectionPostProcess",
    "Geometry",
    "InputSpec",
    "KernelSet",
    "KernelSetBase",
    "ResizeMode",
    "REGISTRY",
    "check_kernel_options",
    "get_kernels",
]


class ResizeMode(enum.Enum):
    """How a frame is fitted to the model input: ``stretch`` (aspect ratio lost) or ``letterbox``
    (aspect ratio kept, borders filled)."""

    STRETCH = "stretch"
    LETTERBOX = "letterbox"


@dataclass(frozen=True)
class InputSpec:
    """What the model's image input wants.

    ``dtype`` is ``"uint8"``, ``"int8"`` or ``"float32"``. For quantized inputs the tensor value is
    ``round(real / scale) + zero_point`` where ``real`` is the pixel mapped to ``norm_range``; for float32
    the value is the pixel mapped to ``norm_range``: (0, 255) raw, (0, 1) or (-1, 1).
    """

    height: int
    width: int
    dtype: str = "uint8"
    scale: float = 1.0
    zero_point: int = 0
    norm_range: tuple[float, float] = (0.0, 255.0)
    resize: ResizeMode = ResizeMode.STRETCH
    fill: int = 114
    range_from: str = ""  # which rule chose norm_range (recorded beside it)
    resize_filter: str = "auto"  # antialias | bilinear | area ([model] resize_filter); auto: the kernel set's own


@dataclass(frozen=True)
class Geometry:
    """Where the frame's content sits inside the model input, in normalized model-input units.

    A point ``m`` (0..1 of model input) maps to the frame as ``(m - offset) / scale`` per axis. Stretch is
    ``scale = 1, offset = 0``.
    """

    scale_x: float = 1.0
    scale_y: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0


@dataclass(frozen=True)
class DetectionPostProcess:
    """The options of a ``TFLite_Detection_PostProcess`` op that was split off the model: a decoder given
    them reproduces the op (``accel.kernels.detection_postprocess``) instead of accel's generic decode.

    Thresholds are kept as the op reads them (float32). ``detections_per_class`` and ``use_regular_nms``
    take the op's defaults (100, false) when the export left them out.
    """

    max_detections: int
    max_classes_per_detection: int
    num_classes: int
    score_threshold: float
    iou_threshold: float
    box_scales: tuple[float, float, float, float]  # y, x, h, w
    detections_per_class: int = 100
    use_regular_nms: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DetectionPostProcess:
        """Parse the op's custom options (as ``accel.model`` reads them); ``KernelError`` naming a missing
        or wrong key."""
        def number(key: str, kind: type, default: Any = None) -> Any:
            value = options.get(key, default)
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise KernelError(f"{POSTPROCESS_OP} option {key}: expected a number, got {value!r} "
                                  f"(options: {', '.join(sorted(options)) or 'none'})")
            return kind(np.float32(value)) if kind is float else int(value)

        found = cls(max_detections=number("max_detections", int),
                    max_classes_per_detection=number("max_classes_per_detection", int),
                    num_classes=number("num_classes", int),
                    score_threshold=number("nms_score_threshold", float),
                    iou_threshold=number("nms_iou_threshold", float),
                    box_scales=tuple(number(f"{k}_scale", float) for k in "yxhw"),  # type: ignore[arg-type]
                    detections_per_class=number("detections_per_class", int, 100),
                    use_regular_nms=bool(options.get("use_regular_nms", False)))
        if min(found.max_detections, found.max_classes_per_detection, found.num_classes,
               found.detections_per_class) < 1:
            raise KernelError(f"{POSTPROCESS_OP}: max_detections, max_classes_per_detection, num_classes and "
                              f"detections_per_class must be >= 1, got {found}")
        if not 0.0 < found.iou_threshold <= 1.0:
            raise KernelError(f"{POSTPROCESS_OP}: nms_iou_threshold must be in (0, 1], got {found.iou_threshold}")
        return found


@dataclass(frozen=True, eq=False)
class DecodeSpec:
    """How to turn one model's raw outputs into answers; built once per model by the pipeline.

    ``family`` is one of ``ssd`` (outputs of ``TFLite_Detection_PostProcess``: roles boxes, classes, scores,
    count), ``ssd-raw`` (roles ``encodings`` [1,N,4] and ``scores`` [1,N,C(+1)]; ``anchors`` [N,4] as
    (ycenter, xcenter, h, w) normalized), ``yolov5`` (role ``predictions`` [1,N,5+C]: cx, cy, w, h, objectness,
    class scores), ``yolov8`` (role ``predictions`` [1,4+C,N]: cx, cy, w, h, class scores) and ``classifier``
    (role ``logits`` [1,C]). ``quant`` gives (scale, zero_point) of every quantized output role.
    Boxes come out normalized to the original frame through ``geometry``.

    ``postprocess``: an ssd-raw model that is a detector split at its ``TFLite_Detection_PostProcess`` op
    is decoded as that op would (its thresholds, NMS mode and limits); ``score_threshold`` then only
    filters what is reported, as for the ``ssd`` family, and ``iou_threshold``, ``max_detections``,
    ``box_order``, ``score_activation``, ``background_class`` and ``class_agnostic_nms`` do not apply.
    ``postprocess_after``: what the ops the split removed after the op (QUANTIZE, DEQUANTIZE, CAST, ...) did
    to each of its outputs (role -> (op, output dtype, scale, zero point) in order), done again on the
    decoded outputs so they are the whole graph's.
    """

    family: str
    input_size: tuple[int, int]  # (height, width) of the model input
    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_detections: int = 100
    top_k: int = 5
    labels: tuple[str, ...] = ()
    quant: Mapping[str, tuple[float, int]] = field(default_factory=dict)
    anchors: np.ndarray | None = None
    box_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w
    box_order: str = "yxhw"  # ssd-raw: "yxhw"|"xywh" (TF coding, exp sizes) or "xyxy"|"yxyx" (corner offsets)
    score_activation: str = "sigmoid"  # ssd-raw scores: "sigmoid", "softmax" or "none" (already probabilities)
    background_class: bool = True  # ssd-raw: score column 0 is the background class
    class_agnostic_nms: bool = False
    postprocess: DetectionPostProcess | None = None
    postprocess_after: Mapping[str, tuple[tuple[str, str, float, int], ...]] = field(default_factory=dict)


class KernelSet(Protocol):
    """A family of pre/post-processing kernels (numpy, OpenCV, OpenCL, ...). Subclass ``KernelSetBase``.

    ``describe()`` says what the set runs on (an OpenCL device, its driver), recorded with each variant;
    ``last_timings()`` splits the last call's time (``upload_ms``, ``kernel_ms``, ``download_ms`` for a
    device), recorded as ``preprocess_upload`` ... stages; empty for a set that cannot tell. Options of
    ``[kernels.NAME]`` are the constructor's keyword arguments."""

    name: str

    def describe(self) -> dict[str, Any]: ...

    def last_timings(self) -> dict[str, float]: ...

    def probe(self) -> Availability: ...

    def preprocess(self, frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """Frame -> model input tensor of shape (1, H, W, 3) in ``spec.dtype``, plus its geometry."""
        ...

    def postprocess(
        self, outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry
    ) -> Detections | Classification:
        """Raw outputs by role -> detections (boxes normalized to the frame) or a classification."""
        ...

    def close(self) -> None: ...


class KernelSetBase:
    """The defaults of the ``KernelSet`` contract: nothing to describe, no split timings, nothing to
    release; a context manager."""

    name = ""
    #: The resize filters the set computes (``accel.kernels.resample.FILTERS``), its own first: what
    #: ``[model] resize_filter = "auto"`` gives. A model asking for another is not run with this set.
    filters: tuple[str, ...] = ("antialias",)

    def filter_for(self, spec: InputSpec) -> str:
        """The filter ``spec`` resizes with here: its own, or this set's first; ``KernelError`` when the set
        cannot compute the one asked for."""
        if spec.resize_filter == "auto":
            return self.filters[0]
        if spec.resize_filter not in self.filters:
            raise KernelError(f"kernel set {self.name!r} resizes with {' or '.join(self.filters)}, not "
                              f"{spec.resize_filter}")
        return spec.resize_filter

    def describe(self) -> dict[str, Any]:
        return {}

    def last_timings(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        """Release device resources; called once per use, and must be safe to call again."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


REGISTRY = Registry("accel.kernels")


def check_kernel_options(name: str, factory: Any, options: Mapping[str, Any]) -> None:
    """``OptionError`` for an option the kernel set's constructor does not take, or of the wrong type."""
    check_options(f"kernels.{name}", factory, dict(options))


def get_kernels(name: str, options: Mapping[str, Any] | None = None) -> KernelSet:
    """The kernel set ``name`` built with its ``[kernels.NAME]`` options (plain values, as TOML gives them).
    ``UnknownPluginError`` for a name no plugin has, ``OptionError`` for an option its constructor does not
    take, ``KernelError`` saying why it cannot run here."""
    try:
        factory = REGISTRY.load(name)
    except LookupError:
        raise UnknownPluginError(f"unknown kernel set {name!r}; known: {', '.join(REGISTRY.names())}") from None
    except ImportError as exc:
        raise KernelError(str(exc)) from exc
    options = dict(options or {})
    check_kernel_options(name, factory, options)
    made = factory(**options)
    if not isinstance(made, KernelSetBase):
        raise KernelError(f"kernel set plugin {name!r} ({type(made).__module__}.{type(made).__qualname__}) "
                          "does not derive from accel.kernels.KernelSetBase; update the package that provides it")
    kernels: Any = made
    available = kernels.probe()
    if not available.ok:
        raise KernelError(f"kernel set {name!r} is unavailable: {available.reason}")
    return kernels
