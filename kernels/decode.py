"""Decoding raw detector outputs in numpy: SSD without its post-process op, YOLOv5, YOLOv8/11, and NMS.

Every output role is dequantized first, ``real = (q - zero_point) * scale`` (``DecodeSpec.quant``).

SSD box coding (``DecodeSpec.box_order``; anchors are always (ya, xa, ha, wa) = centre and size, and
``box_scales`` is always (y, x, h, w)):

- ``yxhw``, the TF Object Detection API's ``FasterRcnnBoxCoder`` as TFLite_Detection_PostProcess decodes
  it, encodings (ty, tx, th, tw): ``yc = ty / y_scale * ha + ya``, ``xc = tx / x_scale * wa + xa``,
  ``h = exp(th / h_scale) * ha``, ``w = exp(tw / w_scale) * wa``; ``xywh`` is the same with encodings
  (tx, ty, tw, th).
- ``xyxy``, the STM32 model zoo's ``decode_ssd_predictions`` (object_detection .../postprocess.py), encodings
  (dx1, dy1, dx2, dy2) offsetting the anchor's corners by a fraction of its size, no exp:
  ``x1 = dx1 / x_scale * wa + (xa - wa / 2)``, ``y1 = dy1 / y_scale * ha + (ya - ha / 2)``,
  ``x2 = dx2 / x_scale * wa + (xa + wa / 2)``, ``y2 = dy2 / y_scale * ha + (ya + ha / 2)`` (that model
  uses scales 1); ``yxyx`` is the same with encodings (dy1, dx1, dy2, dx2).

SSD scores get ``score_activation`` (sigmoid, softmax over all columns, or none), lose column 0 when
``background_class``, and every (anchor, class) pair at or above the threshold is a candidate. YOLOv5
scores are objectness x class score, YOLOv8 the class score; each candidate takes its best class. Boxes
(normalized to the model input) then go through ``nms`` and map to the frame through the ``Geometry``
(``(m - offset) / scale``), clipped to [0, 1].

An ssd-raw model split at its ``TFLite_Detection_PostProcess`` op (``DecodeSpec.postprocess``) is not
decoded as above but as the op itself (``accel.kernels.detection_postprocess``), then re-encoded as the ops the
split removed after it did (``DecodeSpec.postprocess_after``), and read as the in-graph op's outputs are
(``ssd_detections``): the same answers, filtered by the same threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from accel.core.detections import Detections
from accel.core.errors import KernelError
from accel.kernels import DecodeSpec, Geometry
from accel.kernels.detection_postprocess import replay, run_postprocess
from accel.model import corners_to_centers

__all__ = ["BOX_ORDERS", "RAW_FAMILIES", "decode_raw", "decode_ssd_raw", "decode_yolo", "dequantize", "label_names",
           "label_tuple", "nms", "ssd_detections", "yolo_in_pixels"]

BOX_ORDERS = ("yxhw", "xywh", "xyxy", "yxyx")
RAW_FAMILIES = ("ssd-raw", "yolov5", "yolov8")
_PIXEL_LIMIT = 2.0  # see yolo_in_pixels


def dequantize(values: np.ndarray, quant: tuple[float, int] | None = None) -> np.ndarray:
    """float64 real values: ``(q - zero_point) * scale`` when ``quant`` has a scale, else the values."""
    x = np.asarray(values).astype(np.float64)
    if quant and quant[0]:
        x = (x - quant[1]) * quant[0]
    return x


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
        max_detections: int, class_agnostic: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first.

    Boxes are visited by descending score (ties: lower index first). A visited box is kept unless an
    already kept box of the same class (any class when ``class_agnostic``) overlaps it with IoU strictly
    greater than ``iou_threshold`` (IoU equal to the threshold keeps both, as TensorFlow's and
    torchvision's NMS do). Stops after ``max_detections`` kept boxes.
    """
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    c = np.asarray(class_ids).reshape(-1)
    if not b.shape[0] == s.shape[0] == c.shape[0]:
        raise KernelError(f"nms: {b.shape[0]} boxes, {s.shape[0]} scores and {c.shape[0]} class ids disagree")
    areas = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    order = np.argsort(-s, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        w = np.clip(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0, None)
        h = np.clip(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        suppressed = iou > iou_threshold
        if not class_agnostic:
            suppressed &= c[rest] == c[i]
        order = rest[~suppressed]
    return np.array(keep, np.int64)


def _activate(x: np.ndarray, how: str) -> np.ndarray:
    if how == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow
    if how == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if how == "none":
        return x
    raise KernelError(f"score_activation must be sigmoid, softmax or none, got {how!r}")


def _ssd_boxes(t: np.ndarray, anchors: np.ndarray, spec: DecodeSpec) -> np.ndarray:
    """Encodings [n, 4] and anchors [n, 4] (ya, xa, ha, wa) -> boxes [n, 4] (x0, y0, x1, y1), model input units."""
    ys, xs, hs, ws = (float(v) for v in spec.box_scales)
    ya, xa, ha, wa = anchors.T
    order = spec.box_order
    if order not in BOX_ORDERS:
        raise KernelError(f"box_order must be one of {', '.join(BOX_ORDERS)}, got {order!r}")
    a, b, c, d = t.T if order in ("yxhw", "yxyx") else (t[:, 1], t[:, 0], t[:, 3], t[:, 2])  # y, x, y/h, x/w
    if order in ("yxhw", "xywh"):
        yc, xc = a / ys * ha + ya, b / xs * wa + xa
        h, w = np.exp(c / hs) * ha, np.exp(d / ws) * wa
        return np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    return np.stack([b / xs * wa + xa - wa / 2, a / ys * ha + ya - ha / 2,
                     d / xs * wa + xa + wa / 2, c / ys * ha + ya + ha / 2], axis=1)


def decode_ssd_raw(encodings: np.ndarray, scores: np.ndarray, anchors: np.ndarray, spec: DecodeSpec,
                   geometry: Geometry | None = None) -> Detections:
    """Box encodings [1, N, 4], class scores [1, N, C(+1)] and anchors [N, 4] (ycenter, xcenter, h, w)
    -> ``Detections`` in frame coordinates (module docstring: coding, scores, NMS)."""
    t = dequantize(encodings, spec.quant.get("encodings")).reshape(-1, 4)
    n = t.shape[0]
    raw = dequantize(scores, spec.quant.get("scores"))
    if raw.size % max(n, 1) or raw.size == 0:
        raise KernelError(f"ssd-raw: {raw.size} score values do not split over {n} box encodings")
    a = np.asarray(anchors, np.float64).reshape(-1, 4)
    if a.shape[0] != n:
        raise KernelError(f"ssd-raw: {a.shape[0]} anchors for {n} box encodings; check [decode] anchors and "
                          "anchor_feature_maps")
    probs = _activate(raw.reshape(n, -1), spec.score_activation)
    if spec.background_class:
        if probs.shape[1] < 2:
            raise KernelError("ssd-raw: background_class is set but the scores have a single column; "
                              "set [decode] background_class = \"no\"")
        probs = probs[:, 1:]
    rows, classes = np.nonzero(probs >= spec.score_threshold)
    boxes = _ssd_boxes(t[rows], a[rows], spec)
    return _finish(boxes, classes, probs[rows, classes], spec, geometry)


def label_tuple(ids: np.ndarray, labels: Sequence[str] | None) -> tuple[str, ...]:
    if labels is None:
        return ()
    return tuple(labels[i] if 0 <= i < len(labels) else str(i) for i in ids.tolist())


def ssd_detections(
    outputs: Mapping[str, np.ndarray],
    *,
    threshold: float,
    geometry: Geometry,
    labels: Sequence[str] | None = None,
    quant: Mapping[str, tuple[float, int]] | None = None,
) -> Detections:
    """Outputs of ``TFLite_Detection_PostProcess`` (by role: boxes, classes, scores, count) -> ``Detections``
    in frame coordinates.

    Each output is dequantized first when ``quant`` (role -> scale, zero point) has it: exports that put a
    QUANTIZE op behind the op return integers. Boxes are (ymin, xmin, ymax, xmax) normalized to the model
    input, batch dim optional. The first ``count`` rows (rounded, at most N) with ``score >= threshold``
    are kept; coordinates map back as ``(m - offset) / scale`` and are clipped to [0, 1]; class ids are
    rounded to nearest (quantized models return 16.9999 for 17, and 4.886 for 5 when the ids went through
    a QUANTIZE op of a coarse scale).
    """
    q = quant or {}
    b = dequantize(outputs["boxes"], q.get("boxes")).reshape(-1, 4)
    c = dequantize(outputs["classes"], q.get("classes")).reshape(-1)
    s = dequantize(outputs["scores"], q.get("scores")).reshape(-1)
    if not b.shape[0] == c.shape[0] == s.shape[0]:
        raise KernelError(
            f"SSD outputs disagree: {b.shape[0]} boxes, {c.shape[0]} classes, {s.shape[0]} scores"
        )
    cnt = dequantize(outputs["count"], q.get("count")).reshape(-1)
    if cnt.size and not np.isfinite(cnt[0]):
        raise KernelError(f"SSD detection count is not a number: {cnt[0]}")
    n = b.shape[0] if cnt.size == 0 else int(np.clip(math.floor(cnt[0] + 0.5), 0, b.shape[0]))
    keep = np.nonzero(s[:n] >= threshold)[0]
    b, c, s = b[keep], c[keep], s[keep]
    xs = (b[:, [1, 3]] - geometry.offset_x) / geometry.scale_x
    ys = (b[:, [0, 2]] - geometry.offset_y) / geometry.scale_y
    xyxy = np.clip(np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1), 0.0, 1.0)
    ids = np.floor(c + 0.5).astype(np.int32)
    return Detections(xyxy.astype(np.float32), ids, s.astype(np.float32), label_tuple(ids, labels))


def yolo_in_pixels(centres: np.ndarray) -> bool:
    """Whether YOLO box coordinates are input pixels rather than fractions of the input.

    The candidates' centres tile the whole input whatever the image shows, so their largest coordinate is
    about the input width in pixels and about 1 when normalized: above 2 means pixels (a 2-pixel input is
    the only case this misjudges). Quantized outputs decide the same way after dequantizing.
    """
    return bool(centres.size) and float(np.abs(centres).max()) > _PIXEL_LIMIT


def decode_yolo(pred: np.ndarray, spec: DecodeSpec, version: int, geometry: Geometry | None = None) -> Detections:
    """YOLOv5 [1, N, 5 + C] or YOLOv8/11 [1, 4 + C, N] predictions -> ``Detections`` in frame coordinates.

    The longer axis is taken as the N candidates, so a transposed export decodes too. Rows are
    (cx, cy, w, h, [objectness,] class scores); v5 scores ``objectness * class score``, v8 the class score;
    each candidate keeps its best class (ties: lower class id). Coordinates in pixels (``yolo_in_pixels``)
    are divided by the input width and height.
    """
    if version not in (5, 8):
        raise KernelError(f"YOLO version must be 5 or 8, got {version}")
    p = dequantize(pred, spec.quant.get("predictions"))
    if p.ndim < 2:
        raise KernelError(f"yolov{version}: expected predictions [1, N, K] or [1, K, N], got {list(p.shape)}")
    rows_n, cols_n = int(p.shape[-2]), int(p.shape[-1])
    p = p.reshape(rows_n, cols_n) if rows_n >= cols_n else p.reshape(rows_n, cols_n).T
    first = 5 if version == 5 else 4
    if min(rows_n, cols_n) <= first:
        raise KernelError(f"yolov{version}: expected rows of {first} + classes values, got {min(rows_n, cols_n)}")
    cls = p[:, first:] * p[:, 4:5] if version == 5 else p[:, first:]
    ids = np.argmax(cls, axis=1)
    conf = cls[np.arange(cls.shape[0]), ids]
    rows = np.nonzero(conf >= spec.score_threshold)[0]
    xywh = p[rows, :4]
    if yolo_in_pixels(p[:, :2]):
        h, w = spec.input_size
        xywh = xywh / np.array([w, h, w, h], np.float64)
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    return _finish(boxes, ids[rows], conf[rows], spec, geometry)


def _finish(boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, spec: DecodeSpec,
            geometry: Geometry | None) -> Detections:
    """NMS, then model-input boxes -> frame boxes, clipped, as ``Detections``."""
    keep = nms(boxes, scores, classes, spec.iou_threshold, spec.max_detections, spec.class_agnostic_nms)
    g = geometry or Geometry()
    b = boxes[keep].reshape(-1, 4)
    xs = (b[:, [0, 2]] - g.offset_x) / g.scale_x
    ys = (b[:, [1, 3]] - g.offset_y) / g.scale_y
    xyxy = np.clip(np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1), 0.0, 1.0)
    ids = classes[keep].astype(np.int32)
    return Detections(xyxy.astype(np.float32), ids, scores[keep].astype(np.float32), label_names(ids, spec.labels))


def label_names(ids: np.ndarray, labels: Sequence[str]) -> tuple[str, ...]:
    if not labels:
        return ()
    return tuple(labels[i] if 0 <= i < len(labels) else str(i) for i in ids.tolist())



def decode_raw(outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry) -> Detections:
    """The families of ``RAW_FAMILIES`` by ``spec.family``, outputs by role. An ssd-raw model's anchors are
    ``spec.anchors`` when set, else its ``anchors`` output (corners become centre/size,
    ``accel.model.anchors.corners_to_centers``). With ``spec.postprocess`` and anchors, the model decodes as
    its split-off post-process op (module docstring)."""
    if spec.family in ("yolov5", "yolov8"):
        return decode_yolo(outputs["predictions"], spec, 5 if spec.family == "yolov5" else 8, geometry)
    if spec.family != "ssd-raw":
        raise KernelError(f"cannot post-process model family {spec.family!r}: the decoders know "
                          f"{', '.join(RAW_FAMILIES)} (and the kernel sets ssd, classifier)")
    anchors = spec.anchors
    if anchors is not None and spec.postprocess is not None:
        op = run_postprocess(outputs["encodings"], outputs["scores"], anchors, spec.postprocess, dict(spec.quant))
        got = {"boxes": op.boxes, "classes": op.classes, "scores": op.scores, "count": np.array([op.count], np.float32)}
        got = {role: replay(v, spec.postprocess_after.get(role, ())) for role, v in got.items()}
        return ssd_detections(got, threshold=spec.score_threshold, geometry=geometry, labels=spec.labels or None)
    if anchors is None and "anchors" in outputs:
        anchors = corners_to_centers(dequantize(outputs["anchors"], spec.quant.get("anchors")))[0]
    if anchors is None:
        raise KernelError("ssd-raw: the model has no anchors and none were generated; "
                          "set [decode] anchors = \"generate\"")
    return decode_ssd_raw(outputs["encodings"], outputs["scores"], anchors, spec, geometry)
