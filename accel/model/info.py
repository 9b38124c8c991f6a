"""What a model is: ``ModelInfo`` (inputs, outputs, ops, parameters, family, output roles), ``TensorInfo`` and
``Family``, the one list of the model families accel knows."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Family", "ModelInfo", "TensorInfo", "default_model_path"]


class Family(enum.Enum):
    """Model families accel knows how to pre- and post-process."""

    SSD = "ssd"  # detector ending in TFLite_Detection_PostProcess (EfficientDet-Lite, SSD MobileNet)
    SSD_RAW = "ssd-raw"  # SSD without the post-process op: box encodings [1,N,4] + class scores [1,N,C(+1)]
    YOLOV5 = "yolov5"  # one output [1, N, 5 + C]: cx, cy, w, h, objectness, class scores
    YOLOV8 = "yolov8"  # one output [1, 4 + C, N]: cx, cy, w, h, class scores (YOLOv8, YOLO11)
    CLASSIFIER = "classifier"  # image classifier: one [1, C] output

    @classmethod
    def parse(cls, text: str) -> Family:
        for member in cls:
            if member.value == text:
                return member
        raise ValueError(f"unknown model family {text!r}; valid: {', '.join(m.value for m in cls)}")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the graph (an input or output, or any tensor the flatbuffer reader lists)."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.quantized:
            out["quantization"] = {"scale": self.scale, "zero_point": self.zero_point}
        return out


@dataclass(frozen=True)
class ModelInfo:
    """What a model is. ``roles`` maps a role name (ssd: boxes, classes, scores, count; ssd-raw: encodings,
    scores, anchors; yolo: predictions; classifier: logits) to the position of that output in the graph's
    output list (the order a runtime returns them in). ``num_classes``: real classes, background excluded
    (None when the model does not say)."""

    path: Path
    size_bytes: int
    sha256: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    ops: dict[str, int]
    params: int
    family: Family
    roles: dict[str, int] = field(default_factory=dict)
    description: str = ""
    postprocess_options: dict[str, object] = field(default_factory=dict)
    decode_hints: dict[str, Any] = field(default_factory=dict)  # extra DecodeSpec fields (anchors, scales, ...)
    num_classes: int | None = None

    @property
    def image_input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the image input."""
        shape = self.image_input.shape
        return int(shape[1]), int(shape[2])

    @property
    def op_count(self) -> int:
        return sum(self.ops.values())

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "family": self.family.value,
            "num_classes": self.num_classes,
            "params": self.params,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "roles": dict(self.roles),
            "ops": dict(self.ops),
            "description": self.description,
            "postprocess_options": dict(self.postprocess_options),
        }


def default_model_path() -> Path:
    """The embedded default detector shipped as package data."""
    return Path(str(resources.files("accel") / "data" / "default_detector.tflite"))
