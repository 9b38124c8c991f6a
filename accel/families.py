"""Which detector family a model is, what each output means, and what else its file tells the decoder.

Automatic detection reads the flatbuffer only (shapes, ops, constants, quantization; never the file name),
first rule that matches:

1. ``ssd``: the graph has a ``TFLite_Detection_PostProcess`` op (roles: the op's output slots).
2. ``classifier``: one output holding a single axis longer than 1, [1, C] (role ``logits``).
3. ``yolov5`` / ``yolov8``: one 3-D output [1, a, b]. The long axis holds the N candidates, the short one
   K values per candidate. N = 3 * G (G = the cells of the stride 8, 16 and 32 grids of the input, three
   anchors a cell) is YOLOv5 and N = G is YOLOv8/11 (anchor-free); any other N falls back on Ultralytics'
   layouts: rows [1, N, 5 + C] are YOLOv5, columns [1, 4 + C, N] YOLOv8 (role ``predictions``).
4. ``ssd-raw``: at least two outputs [1, N, k] sharing N, one of them [1, N, 4] (roles ``encodings``,
   ``scores`` and optionally ``anchors``); see ``_ssd_raw_roles`` for how same-shape outputs are told apart.

Anything else raises ``ModelError`` listing the families. ``[model] family`` forces one; its roles are
then found by the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from accel.anchors import corners_to_centers
from accel.errors import ModelError

if TYPE_CHECKING:
    from accel.model import TensorInfo, _Parsed

__all__ = ["FAMILIES", "Detected", "detect"]

FAMILIES = ("ssd", "ssd-raw", "yolov5", "yolov8", "classifier")
_SCORE_NAMES = ("score", "class", "conf", "logit", "cls", "prob")
_BOX_NAMES = ("box", "loc", "encod", "offset", "reg", "delta")
_ANCHOR_NAMES = ("anchor", "prior")
_POSTPROCESS = "TFLite_Detection_PostProcess"
# Ops that move or re-encode values without looking at them: constants stay constant through them, and an
# activation behind them is still the activation of what comes out.
_MOVES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TILE", "BROADCAST_TO", "CONCATENATION", "DEQUANTIZE", "QUANTIZE")
_ACTIVATIONS = {"SOFTMAX": "softmax", "LOGISTIC": "sigmoid"}


@dataclass(frozen=True)
class Detected:
    """A model's family, output roles (role -> output position), decoder hints and real class count."""

    family: str
    roles: dict[str, int]
    hints: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None


def detect(m: _Parsed, family: str = "auto") -> Detected:
    """Classify ``m`` (``family`` = "auto" or one of ``FAMILIES``). Raises ``ModelError`` in one line."""
    graph = Graph.open(m.path)
    if family == "auto":
        family = _auto_family(m, graph)
    if family == "ssd":
        return _ssd(m, graph)
    if family == "classifier":
        pos = next((i for i, t in enumerate(m.outputs) if _class_count(t.shape)), 0)
        return Detected("classifier", {"logits": pos}, {}, _class_count(m.outputs[pos].shape) or None)
    if family in ("yolov5", "yolov8"):
        return _yolo(m, family)
    if family == "ssd-raw":
        return _ssd_raw(m, graph)
    raise ModelError(f"unknown model family {family!r}; valid: {', '.join(FAMILIES)}")


def _auto_family(m: _Parsed, graph: Graph) -> str:
    if m.post_outputs:
        return "ssd"
    if len(m.outputs) == 1 and _class_count(m.outputs[0].shape):
        return "classifier"
    if len(m.outputs) == 1 and len(m.outputs[0].shape) == 3:
        guess = _yolo_version(m.outputs[0].shape, m.inputs[0].shape)
        if guess:
            return guess
    if _ssd_raw_roles(m, graph, strict=False):
        return "ssd-raw"
    shapes = ", ".join(str(list(t.shape)) for t in m.outputs)
    raise ModelError(f"{m.path}: unrecognised model family (outputs {shapes}); supported: {', '.join(FAMILIES)}. "
                     "Set [model] family in accel.toml if it is one of them")


def _class_count(shape: tuple[int, ...]) -> int:
    dims = [d for d in shape if d != 1]
    return dims[0] if len(dims) == 1 and dims[0] >= 2 else 0


def _grid_cells(height: int, width: int) -> int:
    """Cells of the stride 8, 16 and 32 grids of a (height, width) input: YOLOv8's candidate count."""
    return sum(math.ceil(height / s) * math.ceil(width / s) for s in (8, 16, 32))


def _yolo_version(shape: tuple[int, ...], input_shape: tuple[int, ...]) -> str:
    """'yolov5', 'yolov8' or '' for a [1, a, b] output (rule 3 of the module docstring)."""
    if len(shape) != 3 or shape[0] != 1 or min(shape[1:]) < 5 or shape[1] == shape[2]:
        return ""
    n, k = max(shape[1:]), min(shape[1:])
    cells = _grid_cells(int(input_shape[1]), int(input_shape[2]))
    if n == 3 * cells and k >= 6:
        return "yolov5"
    if n == cells:
        return "yolov8"
    return "yolov5" if shape[1] > shape[2] and k >= 6 else "yolov8" if shape[2] > shape[1] else ""


def _yolo(m: _Parsed, family: str) -> Detected:
    cands = [i for i, t in enumerate(m.outputs) if len(t.shape) == 3 and min(t.shape[1:]) >= 5]
    if not cands:
        shapes = ", ".join(str(list(t.shape)) for t in m.outputs)
        raise ModelError(f"{m.path}: family {family} needs one [1, N, 5 + C] or [1, 4 + C, N] output, found {shapes}")
    pos = max(cands, key=lambda i: int(np.prod(m.outputs[i].shape)))
    k = min(m.outputs[pos].shape[1:])
    classes = k - (5 if family == "yolov5" else 4)
    if classes < 1:
        raise ModelError(f"{m.path}: a {family} output needs at least one class column, found {k} values a row")
    return Detected(family, {"predictions": pos}, {}, classes)


def _ssd(m: _Parsed, graph: Graph) -> Detected:
    from accel.model import _ssd_roles

    opts = m.post_options
    hints: dict[str, Any] = {}
    keys = ("y_scale", "x_scale", "h_scale", "w_scale")
    scales = [opts.get(k) for k in keys]
    if all(isinstance(v, (int, float)) and v > 0 for v in scales):
        hints["box_scales"] = tuple(float(v) for v in scales if isinstance(v, (int, float)))
    anchors = graph.fold(graph.op_inputs(_POSTPROCESS)[2]) if len(graph.op_inputs(_POSTPROCESS)) > 2 else None
    if anchors is not None and anchors.size and anchors.size % 4 == 0:
        hints["anchors"] = anchors.reshape(-1, 4).astype(np.float32)  # the op's anchors are (yc, xc, h, w)
    classes = opts.get("num_classes")
    return Detected("ssd", _ssd_roles(m), hints, int(classes) if isinstance(classes, int) else None)


def _ssd_raw(m: _Parsed, graph: Graph) -> Detected:
    roles = _ssd_raw_roles(m, graph, strict=True)
    hints: dict[str, Any] = {}
    if "anchors" in roles:
        values = graph.fold(m.outputs[roles["anchors"]].index)
        if values is not None:
            centers, coding = corners_to_centers(values.reshape(-1, 4))
            hints["anchors"] = centers
            if coding != "yxhw":  # corner anchors come with corner offsets in anchor units (STM32 model zoo)
                hints["box_order"], hints["box_scales"] = coding, (1.0, 1.0, 1.0, 1.0)
    if "anchors" not in hints:
        hints.update(_stripped_hints(m.path))
    scores = m.outputs[roles["scores"]]
    columns = int(scores.shape[-1])
    if graph.activation(scores.index) or _probability_range(scores):
        hints["score_activation"] = "none"
    else:
        hints["score_activation"] = "sigmoid"  # raw logits: the TF Object Detection API's SSD score converter
    hints["background_class"] = columns > 1  # TF OD API and STM32 exports put background in column 0
    return Detected("ssd-raw", roles, hints, columns - 1 if columns > 1 else columns)


def _stripped_hints(path: Path) -> dict[str, Any]:
    """Anchors and box scales of a detector whose post-process op accel removed (``accel.tflite_edit``
    records them in the model's metadata), so the split file runs on its own."""
    from accel.tflite_edit import read_postprocess

    try:
        anchors, options = read_postprocess(Path(path).read_bytes())
    except (ModelError, OSError, ValueError, KeyError):
        return {}
    hints: dict[str, Any] = {"anchors": np.asarray(anchors, np.float32).reshape(-1, 4)}
    keys = ("y_scale", "x_scale", "h_scale", "w_scale")
    if all(k in options for k in keys):
        hints["box_scales"] = tuple(float(options[k]) for k in keys)
    return hints


def _probability_range(t: TensorInfo) -> bool:
    """A quantized tensor whose whole range lies in [0, 1] holds probabilities (the converter gives
    softmax and logistic outputs the fixed scale 1/256)."""
    if not t.quantized or t.dtype not in ("uint8", "int8"):
        return False
    info = np.iinfo(np.dtype(t.dtype))
    lo, hi = (info.min - t.zero_point) * t.scale, (info.max - t.zero_point) * t.scale
    return lo >= -1e-6 and hi <= 1.0 + 1e-6


def _ssd_raw_roles(m: _Parsed, graph: Graph, strict: bool) -> dict[str, int]:
    """Roles of an SSD without its post-process op: outputs [1, N, k] (or [N, k]) sharing N.

    - ``anchors``: a [1, N, 4] output computed from constants alone (its producers trace back to weight
      buffers only through data-movement ops: the same value for every image). Box encodings come from
      convolutions over the image, so this tells the two [1, N, 4] outputs of the STM32 model apart
      without names or positions. Failing that, a name containing "anchor" or "prior".
    - ``scores``: the output with k != 4; when k is 4 too, the one behind an in-graph softmax/logistic, or
      named like scores ("score", "class", "conf", ...).
    - ``encodings``: the remaining [1, N, 4] output; when two remain, the one named like boxes.
    Returns {} (``strict`` False) or raises ``ModelError`` (``strict``) when no consistent assignment exists.
    """
    groups: dict[int, list[int]] = {}
    for pos, t in enumerate(m.outputs):
        if (len(t.shape) == 3 and t.shape[0] == 1) or len(t.shape) == 2:
            groups.setdefault(int(t.shape[-2]), []).append(pos)
    for members in sorted(groups.values(), key=len, reverse=True):
        wide4 = [p for p in members if m.outputs[p].shape[-1] == 4]
        if len(members) < 2 or not wide4:
            continue
        roles: dict[str, int] = {}
        constant = [p for p in wide4 if graph.fold(m.outputs[p].index) is not None]
        named = [p for p in wide4 if _named(m.outputs[p], _ANCHOR_NAMES)]
        anchors = constant or named
        if len(anchors) == 1:
            roles["anchors"] = anchors[0]
        rest = [p for p in members if p not in roles.values()]
        other = [p for p in rest if m.outputs[p].shape[-1] != 4]
        scores = other if len(other) == 1 else [p for p in (other or rest) if
                                                graph.activation(m.outputs[p].index) or
                                                _named(m.outputs[p], _SCORE_NAMES)]
        if len(scores) == 1:
            roles["scores"] = scores[0]
        boxes = [p for p in rest if p != roles.get("scores") and m.outputs[p].shape[-1] == 4]
        if len(boxes) > 1:
            boxes = [p for p in boxes if _named(m.outputs[p], _BOX_NAMES)]
        if len(boxes) == 1:
            roles["encodings"] = boxes[0]
        if "scores" in roles and "encodings" in roles:
            return roles
    if strict:
        shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in m.outputs)
        raise ModelError(f"{m.path}: ssd-raw needs box encodings [1, N, 4] and class scores [1, N, C] told apart "
                         f"by constancy, activation or name; found {shapes}")
    return {}


def _named(t: TensorInfo, keys: tuple[str, ...]) -> bool:
    name = t.name.lower()
    return any(k in name for k in keys)


class Graph:
    """The first subgraph of a .tflite flatbuffer, read for what ``ModelInfo`` does not keep: which op
    produces a tensor, constant buffers, and values computable from constants alone."""

    def __init__(self, buf: bytes) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self._buf = buf
        self._model = schema.Model.GetRootAs(buf, 0)
        self._graph = self._model.Subgraphs(0)
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self._dtypes = {getattr(schema.TensorType, k): np.dtype(k.lower()) for k in
                        ("FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "INT16", "INT8", "FLOAT64")}
        codes = []
        for i in range(self._model.OperatorCodesLength()):
            oc = self._model.OperatorCodes(i)
            name = names.get(max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode())), "?")
            codes.append((oc.CustomCode() or b"").decode("utf-8", "replace") if name == "CUSTOM" else name)
        self._ops: list[tuple[str, list[int], Any]] = []
        self._producer: dict[int, int] = {}
        for i in range(self._graph.OperatorsLength()):
            op = self._graph.Operators(i)
            self._ops.append((codes[op.OpcodeIndex()], [int(x) for x in op.InputsAsNumpy()], op))
            for out in op.OutputsAsNumpy():
                self._producer[int(out)] = i
        self._folded: dict[int, np.ndarray | None] = {}

    @classmethod
    def open(cls, path: Path) -> Graph:
        return cls(Path(path).read_bytes())

    def op_inputs(self, op_name: str) -> list[int]:
        """Input tensor indices of the first op called ``op_name`` ([] when there is none)."""
        return next((inputs for name, inputs, _ in self._ops if name == op_name), [])

    def _shape(self, t: int) -> tuple[int, ...]:
        tensor = self._graph.Tensors(t)
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def _quant(self, t: int) -> tuple[float, int]:
        q = self._graph.Tensors(t).Quantization()
        if q is None or q.ScaleLength() != 1:
            return 0.0, 0
        return float(q.Scale(0)), int(q.ZeroPoint(0))

    def _const(self, t: int) -> np.ndarray | None:
        """A constant tensor's real values (dequantized when it is quantized), or None."""
        tensor = self._graph.Tensors(t)
        dtype = self._dtypes.get(tensor.Type())
        b = self._model.Buffers(tensor.Buffer()) if tensor.Buffer() > 0 else None
        if b is None or dtype is None:
            return None
        if b.Offset() > 1:  # stored after the flatbuffer (models over 2 GB)
            raw = self._buf[int(b.Offset()): int(b.Offset()) + int(b.Size())]
        elif b.DataLength() > 0:
            raw = b.DataAsNumpy().tobytes()
        else:
            return None
        shape = self._shape(t)
        values = np.frombuffer(raw, dtype)
        if values.size != int(np.prod(shape)):
            return None
        scale, zero_point = self._quant(t)
        real = values.astype(np.float64)
        return ((real - zero_point) * scale if scale else real).reshape(shape)

    def fold(self, t: int, depth: int = 0) -> np.ndarray | None:
        """Real values of tensor ``t`` when they follow from constants through ``_MOVES`` ops alone, else
        None. Shapes come from the file (TILE multiples and RESHAPE targets computed at run time from a
        SHAPE op need not be evaluated: the static output shape says what they did)."""
        if t in self._folded:
            return self._folded[t]
        try:
            value = self._const(t)
            if value is None and t in self._producer and depth < 64:
                name, inputs, op = self._ops[self._producer[t]]
                value = self._apply(name, inputs, op, self._shape(t), depth) if name in _MOVES else None
        except Exception:  # shapes that do not fit, odd buffers: a tensor we cannot evaluate is not a constant
            value = None
        self._folded[t] = value
        return value

    def _apply(self, name: str, inputs: list[int], op: Any, shape: tuple[int, ...], depth: int) -> np.ndarray | None:
        if name == "CONCATENATION":
            parts = [self.fold(i, depth + 1) for i in inputs]
            if any(p is None for p in parts) or not parts:
                return None
            from ai_edge_litert import schema_py_generated as schema

            opts = schema.ConcatenationOptions()
            table = op.BuiltinOptions()
            axis = 0
            if table is not None:
                opts.Init(table.Bytes, table.Pos)
                axis = int(opts.Axis())
            value = np.concatenate([p for p in parts if p is not None], axis=axis)
        else:  # (DE)QUANTIZE keep real values; RESHAPE, SQUEEZE, EXPAND_DIMS only change the shape
            x = self.fold(inputs[0], depth + 1) if inputs else None
            if x is None:
                return None
            value = x
            if name == "TILE" and len(shape) == x.ndim:
                reps = [o // i if i and o % i == 0 else 0 for o, i in zip(shape, x.shape, strict=True)]
                value = np.tile(x, reps) if all(reps) else x
            elif name == "BROADCAST_TO":
                value = np.broadcast_to(x, shape)
        if int(np.prod(shape)) != value.size:
            return None
        return np.asarray(value, np.float64).reshape(shape)

    def activation(self, t: int, depth: int = 0) -> str:
        """'softmax' or 'sigmoid' when ``t`` comes out of that activation through ``_MOVES`` ops, else ''."""
        if t not in self._producer or depth > 64:
            return ""
        name, inputs, _ = self._ops[self._producer[t]]
        if name in _ACTIVATIONS:
            return _ACTIVATIONS[name]
        if name == "CONCATENATION":
            found = {self.activation(i, depth + 1) for i in inputs}
            return found.pop() if len(found) == 1 else ""
        return self.activation(inputs[0], depth + 1) if name in _MOVES and inputs else ""
