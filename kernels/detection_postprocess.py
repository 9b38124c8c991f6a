"""``TFLite_Detection_PostProcess`` reproduced in numpy, for detectors split at that op (the GPU path).

What the op does (tensorflow/lite/kernels/detection_postprocess.cc), step by step, and what this module
does the same way, in the op's precision:

1. Dequantize uint8 inputs in float32: box encodings and anchors as ``(float(q) - zp) * scale``, class
   scores as ``scale * (q - zp)`` rounded to float32. No activation: the scores are used as they are.
2. Decode every anchor (ycenter, xcenter, h, w) with the options' ``y/x/h/w_scale``: centres and half sizes
   in double, rounded to float32 (``yc = ty / y_scale * ha + ya``, ``half_h = 0.5 * exp(th / h_scale) * ha``),
   corners in float32 (``ymin = yc - half_h`` ...).
3. Score column 0 is the background when the scores have ``num_classes + 1`` columns; class ids start at 0
   for the first real class.
4. Single-class NMS (both modes use it): keep scores ``>= nms_score_threshold``, sort descending with a
   stable sort (ties: lower anchor first), then greedily keep a box unless a kept one overlaps it with a
   float32 IoU strictly above ``nms_iou_threshold`` (a box of zero area overlaps nothing), up to a limit.
5. Fast mode (``use_regular_nms`` false): each anchor scores its best class; one class-agnostic NMS pass
   keeps at most ``max_detections`` anchors; each kept anchor reports its best
   ``min(max_classes_per_detection, num_classes)`` classes, at rows ``max_classes_per_detection * k + col``.
   The count is the number of kept anchors.
6. Regular mode: per class, NMS keeps at most ``min(detections_per_class, max_detections)``; each class's
   boxes are merged (``std::inplace_merge``, stable: on equal scores the earlier classes come first, then
   the NMS order) into the running best list, cut to ``max_detections``. Rows beyond the count are zero,
   as the op pads them. This is LiteRT's op (tflite/kernels/detection_postprocess.cc) run on one thread,
   as cpu-reference runs it; on several threads the op merges per-thread lists whose classes depend on
   scheduling, so the order of equal scores (and which of them survive the cut) can vary between runs.
   TensorFlow's older op merged with a partial sort and ordered equal scores otherwise.

Ops between the op's outputs and the graph outputs that the split removed with it (QUANTIZE, DEQUANTIZE,
CAST: ``accel.model.edit.strip_postprocess``) are done again on its outputs by ``replay``.

The per-anchor class ranking of the fast mode with ``max_classes_per_detection`` > 1 is the C++ library's
``std::partial_sort`` (libstdc++'s heap select in the LiteRT wheels), or the first maximum when one class
is wanted; ``partial_argsort`` reproduces both, so equal uint8 scores come out in the op's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from accel.core.errors import KernelError
from accel.kernels import DetectionPostProcess

__all__ = ["OpOutputs", "decode_boxes", "partial_argsort", "replay", "run_postprocess", "single_class_nms",
           "suppression"]

_F32 = np.float32
_PAIRS_LIMIT = 4096  # boxes; the pair matrix of regular NMS is then at most 16 MiB
_BLOCK = 256  # rows of that matrix computed at once


@dataclass(frozen=True)
class OpOutputs:
    """The op's four outputs: boxes [M, 4] (ymin, xmin, ymax, xmax), classes [M], scores [M] (float32) and
    the count of valid rows."""

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    count: int


def _dequantize(values: np.ndarray, quant: tuple[float, int] | None) -> np.ndarray:
    """float32 ``(float(q) - zp) * scale``: the op's ``Dequantizer`` (the product of a float and a small
    integer rounds the same in float32 and in double, so scores dequantize the same way)."""
    a = np.asarray(values)
    if quant and quant[0]:
        return (a.astype(_F32) - _F32(quant[1])) * _F32(quant[0])
    return a.astype(_F32)


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray, scales: tuple[float, float, float, float]
                 ) -> np.ndarray:
    """float32 encodings [N, >= 4] (ty, tx, th, tw) and anchors [N, 4] (ya, xa, ha, wa) -> float32 corners
    [N, 4] (ymin, xmin, ymax, xmax), as the op's ``DecodeCenterSizeBoxes``."""
    t = np.asarray(encodings, _F32)[:, :4].astype(np.float64)
    a = np.asarray(anchors, _F32).astype(np.float64)
    ys, xs, hs, ws = (float(_F32(s)) for s in scales)
    yc = (t[:, 0] / ys * a[:, 2] + a[:, 0]).astype(_F32)
    xc = (t[:, 1] / xs * a[:, 3] + a[:, 1]).astype(_F32)
    half_h = (0.5 * np.exp(t[:, 2] / hs) * a[:, 2]).astype(_F32)
    half_w = (0.5 * np.exp(t[:, 3] / ws) * a[:, 3]).astype(_F32)
    return np.stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], axis=1)


def _iou(boxes: np.ndarray, areas: np.ndarray, i: int | np.ndarray, others: np.ndarray) -> np.ndarray:
    """float32 IoU of box ``i`` (or of each box of an index array, one row each) with boxes ``others``, as
    the op's ``ComputeIntersectionOverUnion`` (symmetric: the same value whichever box is kept)."""
    b, o = boxes[i], boxes[others]
    zero = _F32(0)
    h = np.maximum(np.minimum(b[..., 2:3], o[:, 2]) - np.maximum(b[..., 0:1], o[:, 0]), zero)
    w = np.maximum(np.minimum(b[..., 3:4], o[:, 3]) - np.maximum(b[..., 1:2], o[:, 1]), zero)
    inter = h * w
    a = np.asarray(areas[i])[..., np.newaxis]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (a + areas[others] - inter)
    return np.where((a > 0) & (areas[others] > 0), iou, zero)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def suppression(boxes: np.ndarray, iou_threshold: float) -> np.ndarray | None:
    """``IoU > iou_threshold`` for every pair of boxes (an N x N bool matrix, built in row blocks), or None
    past ``_PAIRS_LIMIT`` boxes. Regular NMS runs one NMS a class over the same boxes: it reads this."""
    n = boxes.shape[0]
    if n > _PAIRS_LIMIT:
        return None
    areas, every, limit = _areas(boxes), np.arange(n), _F32(iou_threshold)
    out = np.empty((n, n), bool)
    for start in range(0, n, _BLOCK):
        rows = every[start:start + _BLOCK]
        out[rows] = _iou(boxes, areas, rows, every) > limit
    return out


def single_class_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, iou_threshold: float,
                     limit: int, suppressed: np.ndarray | None = None) -> list[int]:
    """Anchors kept by the op's ``NonMaxSuppressionSingleClassHelper``, best first (module docstring, 4);
    ``suppressed``: ``suppression(boxes, iou_threshold)`` when it was built."""
    s = np.asarray(scores, _F32)
    above = np.flatnonzero(s >= _F32(threshold))
    left = above[np.argsort(-s[above], kind="stable")]
    areas = _areas(boxes)
    kept: list[int] = []
    while left.size and len(kept) < limit:
        i, left = int(left[0]), left[1:]
        kept.append(i)
        if left.size:
            gone = suppressed[i, left] if suppressed is not None else _iou(boxes, areas, i, left) > _F32(iou_threshold)
            left = left[~gone]
    return kept


def _sift(a: list[int], hole: int, length: int, value: int, before: Callable[[int, int], bool]) -> None:
    """libstdc++'s ``__adjust_heap`` then ``__push_heap`` over ``a[:length]``."""
    top = second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if before(a[second], a[second - 1]):
            second -= 1
        a[hole] = a[second]
        hole = second
    if length % 2 == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        a[hole] = a[second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    while hole > top and before(a[parent], value):
        a[hole] = a[parent]
        hole = parent
        parent = (hole - 1) // 2
    a[hole] = value


def partial_argsort(values: np.ndarray, k: int) -> list[int]:
    """The first ``k`` indices of the op's ``DecreasingPartialArgSort``: the first maximum when ``k`` is 1,
    else ``std::partial_sort`` of ``0..n-1`` by ``values[i] > values[j]`` as libstdc++ does it (heap select,
    then heap sort), which orders ties its own way."""
    v = np.asarray(values, _F32).tolist()
    n = len(v)
    if k == 1:
        return [int(np.argmax(values))] if n else []
    a = list(range(n))
    k = min(k, n)

    def before(i: int, j: int) -> bool:
        return bool(v[i] > v[j])

    for parent in range((k - 2) // 2, -1, -1) if k >= 2 else ():
        _sift(a, parent, k, a[parent], before)
    for i in range(k, n):
        if before(a[i], a[0]):
            value, a[i] = a[i], a[0]
            _sift(a, 0, k, value, before)
    for last in range(k - 1, 0, -1):
        value, a[last] = a[last], a[0]
        _sift(a, 0, last, value, before)
    return a[:k]


def _fast(boxes: np.ndarray, scores: np.ndarray, op: DetectionPostProcess) -> OpOutputs:
    per = min(op.max_classes_per_detection, op.num_classes)
    rows = op.max_detections * op.max_classes_per_detection
    out_boxes, out_classes, out_scores = np.zeros((rows, 4), _F32), np.zeros(rows, _F32), np.zeros(rows, _F32)
    kept = single_class_nms(boxes, scores.max(axis=1), op.score_threshold, op.iou_threshold, op.max_detections)
    for k, anchor in enumerate(kept):
        for col, cls in enumerate(partial_argsort(scores[anchor], per)):
            row = op.max_classes_per_detection * k + col
            out_boxes[row], out_classes[row], out_scores[row] = boxes[anchor], cls, scores[anchor, cls]
    return OpOutputs(out_boxes, out_classes, out_scores, len(kept))


def _regular(boxes: np.ndarray, scores: np.ndarray, op: DetectionPostProcess) -> OpOutputs:
    per_class = min(op.detections_per_class, op.max_detections)
    pairs = suppression(boxes, op.iou_threshold)
    best: list[tuple[float, int, int]] = []  # (score, anchor, class), best first in the op's order
    for cls in range(op.num_classes):
        column = scores[:, cls]
        kept = single_class_nms(boxes, column, op.score_threshold, op.iou_threshold, per_class, pairs)
        # std::inplace_merge of two score-sorted runs is stable: Python's stable sort of their concatenation.
        best = sorted(best + [(float(column[a]), a, cls) for a in kept], key=lambda e: -e[0])[:op.max_detections]
    rows = op.max_detections
    out_boxes, out_classes, out_scores = np.zeros((rows, 4), _F32), np.zeros(rows, _F32), np.zeros(rows, _F32)
    for row, (score, anchor, cls) in enumerate(best):
        out_boxes[row], out_classes[row], out_scores[row] = boxes[anchor], cls, score
    return OpOutputs(out_boxes, out_classes, out_scores, len(best))


def run_postprocess(encodings: np.ndarray, scores: np.ndarray, anchors: np.ndarray, op: DetectionPostProcess,
                    quant: dict[str, tuple[float, int]] | None = None) -> OpOutputs:
    """The op's outputs for raw box encodings [1, N, >= 4], class scores [1, N, C(+1)] and anchors [N, 4]
    (ycenter, xcenter, h, w, float32 as the op reads them); ``quant`` has (scale, zero_point) of the
    quantized roles ``encodings`` and ``scores``."""
    quant = quant or {}
    enc = _dequantize(encodings, quant.get("encodings"))
    n = enc.size // 4 if enc.ndim < 2 else int(np.prod(enc.shape[:-1]))
    enc = enc.reshape(n, -1)
    a = np.asarray(anchors, _F32).reshape(-1, 4)
    if a.shape[0] != n:
        raise KernelError(f"TFLite_Detection_PostProcess: {a.shape[0]} anchors for {n} box encodings")
    s = _dequantize(scores, quant.get("scores"))
    if s.size % max(n, 1) or s.size == 0:
        raise KernelError(f"TFLite_Detection_PostProcess: {s.size} score values do not split over {n} anchors")
    s = s.reshape(n, -1)
    offset = s.shape[1] - op.num_classes
    if offset not in (0, 1):
        raise KernelError(f"TFLite_Detection_PostProcess: num_classes = {op.num_classes} but the scores have "
                          f"{s.shape[1]} columns (expected num_classes, or one more for the background)")
    boxes = decode_boxes(enc, a, op.box_scales)
    real = np.ascontiguousarray(s[:, offset:])
    return _regular(boxes, real, op) if op.use_regular_nms else _fast(boxes, real, op)


def replay(values: np.ndarray, steps: Sequence[tuple[str, str, float, int]]) -> np.ndarray:
    """One of the op's outputs (float32) as the ops after it in the graph left it, in real values: ``steps``
    are those ops in order, each (op name, output dtype, scale, zero point), as ``accel.model.edit`` records
    them. QUANTIZE as TFLite's kernels (builtin and XNNPACK) do it: ``x`` times the float32 reciprocal of the
    scale, rounded half to even, plus the zero point, saturated (the builtin kernel's scalar tail, the last
    few values of a tensor whose size is not a multiple of its vector width, divides and rounds halves away
    from zero: a value exactly halfway between two steps may come out one step apart); DEQUANTIZE
    ``(q - zp) * scale``, as XNNPACK (the builtin kernel's ``q * scale - zp * scale`` differs by a float32
    rounding of those products); CAST to an integer type truncates; reshapes change nothing. A value left
    quantized is dequantized at the end."""
    x = np.asarray(values, _F32)
    quant: tuple[float, int] | None = None
    for name, dtype, scale, zero_point in steps:
        if name == "QUANTIZE":
            info = np.iinfo(np.dtype(dtype))
            q = np.rint(_dequantize(x, quant) * (_F32(1) / _F32(scale)))
            x = np.clip(q + zero_point, info.min, info.max).astype(_F32)
        elif name == "DEQUANTIZE":
            x = _dequantize(x, quant)
        elif name == "CAST" and np.dtype(dtype).kind in "iu":
            x = np.trunc(x)
        quant = (float(scale), int(zero_point)) if scale else None
    return _dequantize(x, quant)
