"""``load_model(path)``: read a .tflite file once and describe it as a ``ModelInfo``.

The file's bytes are read once and parsed once (``accel.model.flatbuffer``); the same parse gives the input and
output tensors with shapes, dtypes and quantization, the op histogram, the parameter count, and everything family
detection (``accel.model.families``) looks at. Output roles of detectors (boxes, classes, scores, count) are
found by what the tensors are (the post-process op's output slots), never by their position in the graph's
output list: TF1 and TF2 exports order them differently.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

from accel.errors import ModelError
from accel.model.families import detect
from accel.model.flatbuffer import Flatbuffer, read_flatbuffer
from accel.model.info import Family, ModelInfo, TensorInfo

__all__ = ["load_model"]


def load_model(path: str | Path, family: str = "auto") -> ModelInfo:
    """Read and classify a .tflite model. Raises ``ModelError`` with one clear line on any problem."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {p} (give --model PATH, or leave it out for the default)")
    if p.is_dir():
        raise ModelError(f"model path is a folder, expected a .tflite file: {p}")
    return _describe(p, read_flatbuffer(p), family)


def _describe(p: Path, fb: Flatbuffer, family: str) -> ModelInfo:
    """The model's family (detected by ``accel.model.families``, or forced by ``family``), roles and hints."""
    known = ", ".join(f.value for f in Family)
    if not fb.inputs or len(fb.inputs[0].shape) != 4 or fb.inputs[0].shape[3] != 3:
        shape = list(fb.inputs[0].shape) if fb.inputs else "none"
        raise ModelError(f"{p}: expected one image input [1, H, W, 3], found {shape}; "
                         f"accel supports these families: {known}")
    if family != "auto":
        try:
            Family.parse(family)
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
    found = detect(fb, family)
    fam = Family.parse(found.family)
    outputs = fb.outputs
    max_detections = found.postprocess_options.get("max_detections")
    if fam is Family.SSD and isinstance(max_detections, int):
        outputs = _ssd_shapes(outputs, found.roles, max_detections)
    return ModelInfo(
        path=p, size_bytes=len(fb.buf), sha256=hashlib.sha256(fb.buf).hexdigest(), inputs=fb.inputs,
        outputs=outputs, ops=dict(Counter(op.name for op in fb.ops)), params=fb.constant_params(), family=fam,
        roles=found.roles, description=fb.description, postprocess_options=found.postprocess_options,
        decode_hints=found.hints, num_classes=found.num_classes,
    )


def _ssd_shapes(outputs: tuple[TensorInfo, ...], roles: dict[str, int], m: int) -> tuple[TensorInfo, ...]:
    """The post-process op's outputs carry no static shape in the file; they follow from max_detections."""
    shapes = {"boxes": (1, m, 4), "classes": (1, m), "scores": (1, m), "count": (1,)}
    fixed = list(outputs)
    for role, pos in roles.items():
        if not fixed[pos].shape:
            fixed[pos] = replace(fixed[pos], shape=shapes[role])
    return tuple(fixed)
