"""Which detector family a model is, what each output means, and what else its file tells the decoder.

Automatic detection reads the flatbuffer only (shapes, ops, constants, quantization; never the file name),
first rule that matches:

1. ``ssd``: the graph has a ``TFLite_Detection_PostProcess`` op (roles: the op's output slots, which each
   graph output is or carries through ``accel.model.graph.PASSES`` ops: DEQUANTIZE, QUANTIZE, CAST, ...).
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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from accel.core.errors import ModelError
from accel.model.anchors import corners_to_centers
from accel.model.edit import POSTPROCESS_OP, ROLES, read_after_postprocess, read_postprocess
from accel.model.flatbuffer import Flatbuffer, Op
from accel.model.graph import Graph, passes_back
from accel.model.info import Family, TensorInfo

__all__ = ["FAMILIES", "Detected", "detect"]

FAMILIES = tuple(f.value for f in Family)
_SCORE_NAMES = ("score", "class", "conf", "logit", "cls", "prob")
_BOX_NAMES = ("box", "loc", "encod", "offset", "reg", "delta")
_ANCHOR_NAMES = ("anchor", "prior")


@dataclass(frozen=True)
class Detected:
    """A model's family, output roles (role -> output position), decoder hints, real class count, and the
    options of its post-process op (a split model: those of the op accel removed; empty without one)."""

    family: str
    roles: dict[str, int]
    hints: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    postprocess_options: dict[str, object] = field(default_factory=dict)


def detect(m: Flatbuffer, family: str = "auto") -> Detected:
    """Classify ``m`` (``family`` = "auto" or one of ``FAMILIES``). Raises ``ModelError`` in one line."""
    graph = Graph(m)
    post = m.first_op(POSTPROCESS_OP)
    if family == "auto":
        family = _auto_family(m, graph, post)
    if family == "ssd":
        return _ssd(m, graph, post)
    options = post.custom_options() if post is not None else {}
    if family == "classifier":
        pos = next((i for i, t in enumerate(m.outputs) if _class_count(t.shape)), 0)
        return Detected("classifier", {"logits": pos}, {}, _class_count(m.outputs[pos].shape) or None, options)
    if family in ("yolov5", "yolov8"):
        return replace(_yolo(m, family), postprocess_options=options)
    if family == "ssd-raw":
        found = _ssd_raw(m, graph)
        return replace(found, postprocess_options=options or dict(found.hints.get("postprocess") or {}))
    raise ModelError(f"unknown model family {family!r}; valid: {', '.join(FAMILIES)}")


def _auto_family(m: Flatbuffer, graph: Graph, post: Op | None) -> str:
    if post is not None and post.outputs:
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
    raise ModelError(f"{m.where}: unrecognised model family (outputs {shapes}); supported: {', '.join(FAMILIES)}. "
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


def _yolo(m: Flatbuffer, family: str) -> Detected:
    cands = [i for i, t in enumerate(m.outputs) if len(t.shape) == 3 and min(t.shape[1:]) >= 5]
    if not cands:
        shapes = ", ".join(str(list(t.shape)) for t in m.outputs)
        raise ModelError(f"{m.where}: family {family} needs one [1, N, 5 + C] or [1, 4 + C, N] output, found {shapes}")
    pos = max(cands, key=lambda i: int(np.prod(m.outputs[i].shape)))
    k = min(m.outputs[pos].shape[1:])
    classes = k - (5 if family == "yolov5" else 4)
    if classes < 1:
        raise ModelError(f"{m.where}: a {family} output needs at least one class column, found {k} values a row")
    return Detected(family, {"predictions": pos}, {}, classes)


def _ssd(m: Flatbuffer, graph: Graph, post: Op | None) -> Detected:
    opts = post.custom_options() if post is not None else {}
    hints: dict[str, Any] = {}
    keys = ("y_scale", "x_scale", "h_scale", "w_scale")
    scales = [opts.get(k) for k in keys]
    if all(isinstance(v, (int, float)) and v > 0 for v in scales):
        hints["box_scales"] = tuple(float(v) for v in scales if isinstance(v, (int, float)))
    anchors = graph.fold(post.inputs[2]) if post is not None and len(post.inputs) > 2 else None
    if anchors is not None and anchors.size and anchors.size % 4 == 0:
        hints["anchors"] = anchors.reshape(-1, 4).astype(np.float32)  # the op's anchors are (yc, xc, h, w)
    classes = opts.get("num_classes")
    return Detected("ssd", _ssd_roles(m, post), hints, int(classes) if isinstance(classes, int) else None, opts)


def _ssd_roles(m: Flatbuffer, post: Op | None) -> dict[str, int]:
    """Output position of each role. The post-process op writes its outputs in a fixed slot order
    (boxes, classes, scores, count); match the graph outputs to those tensors by tensor index, following
    each graph output back through ``PASSES`` ops (TF2 exports that quantize the op put QUANTIZE and
    DEQUANTIZE ops between its outputs and the graph's)."""
    slots = {int(t): role for role, t in zip(ROLES, post.outputs if post is not None else (), strict=False)}
    roles: dict[str, int] = {}
    for pos, t in enumerate(m.outputs):
        role = slots.get(passes_back(m, t.index)[0])
        if role is not None and role not in roles:
            roles[role] = pos
    if len(roles) == 4:
        return roles
    # Outputs that reach the op only through other ops, or not at all: fall back to names, then shapes.
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
        raise ModelError(f"{m.where}: cannot tell which outputs are boxes, classes, scores and count "
                         f"(found {sorted(roles)}); set [model] family or re-export with named outputs")
    return roles


def _ssd_raw(m: Flatbuffer, graph: Graph) -> Detected:
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
        hints.update(_stripped_hints(m))
    scores = m.outputs[roles["scores"]]
    columns = int(scores.shape[-1])
    if graph.activation(scores.index) or _probability_range(scores):
        hints["score_activation"] = "none"
    else:
        hints["score_activation"] = "sigmoid"  # raw logits: the TF Object Detection API's SSD score converter
    hints["background_class"] = columns > 1  # TF OD API and STM32 exports put background in column 0
    return Detected("ssd-raw", roles, hints, columns - 1 if columns > 1 else columns)


def _stripped_hints(m: Flatbuffer) -> dict[str, Any]:
    """Anchors, box scales and the options of the op of a detector whose post-process op accel removed
    (``accel.model.edit`` records them in the model's metadata), so the split file runs on its own and
    decodes as the op did (hint ``postprocess``: the op's options, as the op read them; ``postprocess_after``:
    what the ops removed after it did to each of its outputs)."""
    try:
        anchors, options = read_postprocess(m)
        after = read_after_postprocess(m)
    except (ModelError, IndexError, ValueError, KeyError):
        return {}
    hints: dict[str, Any] = {"anchors": np.asarray(anchors, np.float32).reshape(-1, 4)}
    keys = ("y_scale", "x_scale", "h_scale", "w_scale")
    if all(k in options for k in keys):
        hints["box_scales"] = tuple(float(options[k]) for k in keys)
    if options:
        hints["postprocess"] = dict(options)
    if after:
        hints["postprocess_after"] = {str(role): tuple((str(n), str(d), float(sc), int(z)) for n, d, sc, z in steps)
                                      for role, steps in after.items()}
    return hints


def _probability_range(t: TensorInfo) -> bool:
    """A quantized tensor whose whole range lies in [0, 1] holds probabilities (the converter gives
    softmax and logistic outputs the fixed scale 1/256)."""
    if not t.quantized or t.dtype not in ("uint8", "int8"):
        return False
    info = np.iinfo(np.dtype(t.dtype))
    lo, hi = (info.min - t.zero_point) * t.scale, (info.max - t.zero_point) * t.scale
    return lo >= -1e-6 and hi <= 1.0 + 1e-6


def _ssd_raw_roles(m: Flatbuffer, graph: Graph, strict: bool) -> dict[str, int]:
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
        raise ModelError(f"{m.where}: ssd-raw needs box encodings [1, N, 4] and class scores [1, N, C] told apart "
                         f"by constancy, activation or name; found {shapes}")
    return {}


def _named(t: TensorInfo, keys: tuple[str, ...]) -> bool:
    name = t.name.lower()
    return any(k in name for k in keys)
