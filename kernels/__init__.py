"""How pre- and post-processing run: the kernel-set contract and its registry.

A kernel set turns a camera ``Frame`` into the model's input tensor (``preprocess``) and the model's raw
outputs into ``Detections`` or a ``Classification`` (``postprocess``). The ``numpy`` set is the
correctness reference every other set is tested against.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from accel.plugins import Availability, Registry

if TYPE_CHECKING:
    import numpy as np

    from accel.detections import Classification, Detections
    from accel.frames import Frame

__all__ = [
    "Geometry",
    "InputSpec",
    "KernelSet",
    "ResizeMode",
    "REGISTRY",
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


class KernelSet(Protocol):
    """A family of pre/post-processing kernels (numpy, OpenCV, OpenCL, ...)."""

    name: str

    def probe(self) -> Availability: ...

    def preprocess(self, frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """Frame -> model input tensor of shape (1, H, W, 3) in ``spec.dtype``, plus its geometry."""
        ...

    def postprocess_ssd(
        self,
        boxes: np.ndarray,
        classes: np.ndarray,
        scores: np.ndarray,
        count: np.ndarray,
        *,
        threshold: float,
        geometry: Geometry,
        labels: Sequence[str] | None = None,
    ) -> Detections: ...

    def postprocess_classifier(
        self,
        output: np.ndarray,
        *,
        scale: float,
        zero_point: int,
        top_k: int,
        labels: Sequence[str] | None = None,
    ) -> Classification: ...

    def close(self) -> None: ...


REGISTRY = Registry("accel.kernels")
