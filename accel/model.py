"""Model loading and introspection: what a .tflite file is, read from its flatbuffer.

``load_model(path)`` returns a ``ModelInfo``: input/output tensors with shapes, dtypes and quantization,
the op histogram, parameter count, file size and hash, and the detected family. Output roles of
detectors (boxes, classes, scores, count) are found by what the tensors are (the post-process op's output
slots), never by their position in the graph's output list: TF1 and TF2 exports order them differently.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from accel.errors import ModelError

__all__ = ["Family", "ModelInfo", "TensorInfo", "default_model_path", "load_model"]

_POSTPROCESS_OP = "TFLite_Detection_PostProcess"
_SSD_ROLES = ("boxes", "classes", "scores", "count")  # the op's output slots, in its fixed order
_DTYPES = {
    "FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32", "UINT8": "uint8", "INT64": "int64",
    "BOOL": "bool", "INT16": "int16", "INT8": "int8", "FLOAT64": "float64", "UINT32": "uint32",
    "UINT16": "uint16", "STRING": "string",
}


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
    """One graph input or output tensor."""

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


def _names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def load_model(path: str | Path, family: str = "auto") -> ModelInfo:
    """Read and classify a .tflite model. Raises ``ModelError`` with one clear line on any problem."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {p} (give --model PATH, or leave it out for the default)")
    if p.is_dir():
        raise ModelError(f"model path is a folder, expected a .tflite file: {p}")
    try:
        buf = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {p}: {exc.strerror or exc}") from exc
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{p} is not a TFLite model (no 'TFL3' flatbuffer identifier); expected a .tflite file")
    try:
        info = _parse(p, buf)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffer reads past the end of a truncated file raise struct/index errors
        raise ModelError(f"{p} is truncated or corrupt: its {len(buf)} bytes do not hold the model its header "
                         f"describes ({type(exc).__name__}); re-export or re-download it") from exc
    return _classify(info, family)


def _parse(p: Path, buf: bytes) -> _Parsed:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError(f"{p} has no subgraph; it is not a runnable TFLite model")
    graph = model.Subgraphs(0)
    op_names = _names(schema.BuiltinOperator)
    type_names = _names(schema.TensorType)

    def tensor(i: int) -> TensorInfo:
        t = graph.Tensors(i)
        q = t.Quantization()
        scale, zp = 0.0, 0
        if q is not None and q.ScaleLength() == 1:
            scale, zp = float(q.Scale(0)), int(q.ZeroPoint(0))
        name = (t.Name() or b"").decode("utf-8", "replace")
        dtype = _DTYPES.get(type_names.get(t.Type(), ""), type_names.get(t.Type(), "unknown").lower())
        return TensorInfo(name, i, tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (), dtype, scale, zp)

    codes: list[str] = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"OP_{code}")
        if name == "CUSTOM":
            name = (oc.CustomCode() or b"CUSTOM").decode("utf-8", "replace")
        codes.append(name)

    ops: Counter[str] = Counter()
    post_outputs: list[int] = []
    post_options: dict[str, object] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = codes[op.OpcodeIndex()]
        ops[name] += 1
        if name == _POSTPROCESS_OP:
            post_outputs = [int(x) for x in op.OutputsAsNumpy()]
            if not op.CustomOptionsIsNone():
                post_options = _flex_options(op.CustomOptionsAsNumpy().tobytes())

    _check_buffers(model, len(buf))
    params = 0
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        b = model.Buffers(t.Buffer()) if t.Buffer() > 0 else None
        if b is None or (b.DataLength() == 0 and b.Size() == 0):
            continue
        n = int(np.prod(t.ShapeAsNumpy())) if t.ShapeLength() else 1
        if type_names.get(t.Type()) in ("INT32", "INT64") and n <= 8:
            continue  # shape and axis constants are not learned parameters
        params += n

    inputs = tuple(tensor(int(i)) for i in graph.InputsAsNumpy())
    outputs = tuple(tensor(int(i)) for i in graph.OutputsAsNumpy())
    desc = (model.Description() or b"").decode("utf-8", "replace")
    size = len(buf)
    return _Parsed(p, size, hashlib.sha256(buf).hexdigest(), inputs, outputs, dict(ops), params, desc,
                   post_outputs, post_options)


def _check_buffers(model: object, size: int) -> None:
    """Every weight buffer must lie inside the file: a truncated download keeps a valid header and
    loses the weights at the end."""
    for i in range(model.BuffersLength()):  # type: ignore[attr-defined]
        b = model.Buffers(i)  # type: ignore[attr-defined]
        if b.Offset() > 1:  # weights stored after the flatbuffer (models over 2 GB)
            end = int(b.Offset()) + int(b.Size())
        else:
            o = b._tab.Offset(4)
            end = b._tab.Vector(o) + b._tab.VectorLen(o) if o else 0
        if end > size:
            raise ModelError(f"the file ends at byte {size} but weight buffer {i} runs to byte {end}: "
                             "the model is truncated; re-export or re-download it")


@dataclass(frozen=True)
class _Parsed:
    path: Path
    size_bytes: int
    sha256: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    ops: dict[str, int]
    params: int
    description: str
    post_outputs: list[int]
    post_options: dict[str, object]


def _flex_options(raw: bytes) -> dict[str, object]:
    try:
        from flatbuffers import flexbuffers

        value = flexbuffers.Loads(raw)
    except Exception:  # options are informative only; a model with odd options still runs
        return {}
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _classify(m: _Parsed, family: str) -> ModelInfo:
    """The model's family (detected by ``accel.families``, or forced by ``family``), roles and hints."""
    from accel.families import detect

    known = ", ".join(f.value for f in Family)
    if not m.inputs or len(m.inputs[0].shape) != 4 or m.inputs[0].shape[3] != 3:
        shape = list(m.inputs[0].shape) if m.inputs else "none"
        raise ModelError(f"{m.path}: expected one image input [1, H, W, 3], found {shape}; "
                         f"accel supports these families: {known}")
    if family != "auto":
        try:
            Family.parse(family)
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
    found = detect(m, family)
    fam = Family.parse(found.family)
    roles = found.roles
    outputs = m.outputs
    max_detections = m.post_options.get("max_detections")
    if fam is Family.SSD and isinstance(max_detections, int):
        outputs = _ssd_shapes(outputs, roles, max_detections)
    base = {k: v for k, v in m.__dict__.items() if k not in ("post_outputs", "post_options", "outputs")}
    return ModelInfo(family=fam, roles=roles, postprocess_options=m.post_options, outputs=outputs,
                     decode_hints=found.hints, num_classes=found.num_classes, **base)


def _ssd_shapes(outputs: tuple[TensorInfo, ...], roles: dict[str, int], m: int) -> tuple[TensorInfo, ...]:
    """The post-process op's outputs carry no static shape in the file; they follow from max_detections."""
    shapes = {"boxes": (1, m, 4), "classes": (1, m), "scores": (1, m), "count": (1,)}
    fixed = list(outputs)
    for role, pos in roles.items():
        if not fixed[pos].shape:
            fixed[pos] = replace(fixed[pos], shape=shapes[role])
    return tuple(fixed)


def _is_class_vector(shape: tuple[int, ...]) -> bool:
    dims = [d for d in shape if d != 1]
    return len(dims) == 1 and dims[0] >= 2


def _ssd_roles(m: _Parsed) -> dict[str, int]:
    """Output position of each role. The post-process op writes its outputs in a fixed slot order
    (boxes, classes, scores, count); match the graph outputs to those tensors by tensor index."""
    by_tensor = {t.index: pos for pos, t in enumerate(m.outputs)}
    roles: dict[str, int] = {}
    for role, tensor_index in zip(_SSD_ROLES, m.post_outputs, strict=False):
        if tensor_index in by_tensor:
            roles[role] = by_tensor[tensor_index]
    if len(roles) == 4:
        return roles
    # The op's outputs were renamed or passed through other ops: fall back to names, then shapes.
    hints = {"boxes": ("box",), "classes": ("class",), "scores": ("score",), "count": ("num", "count")}
    for pos, t in enumerate(m.outputs):
        lname = t.name.lower()
        for role, keys in hints.items():
            if role not in roles and any(k in lname for k in keys):
                roles[role] = pos
                break
    for pos, t in enumerate(m.outputs):
        if pos in roles.values():
            continue
        if len(t.shape) == 3 and t.shape[-1] == 4 and "boxes" not in roles:
            roles["boxes"] = pos
        elif len(t.shape) == 1 and "count" not in roles:
            roles["count"] = pos
    if len(roles) != 4:
        raise ModelError(f"{m.path}: cannot tell which outputs are boxes, classes, scores and count "
                         f"(found {sorted(roles)}); set [model] family or re-export with named outputs")
    return roles
