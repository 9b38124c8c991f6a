"""Host side of the post-processing kernels (``postprocess.cl``): decode on the device, sort on the host,
suppression bitmask on the device, greedy scan on the host.

1. ``ssd_decode`` / ``yolo_decode``: dequantize, activate, threshold, decode boxes; candidates are appended
   with an atomic counter, each with its position in numpy's candidate order (``key``).
2. The host downloads keys and scores and sorts them as ``decode.nms`` does (score descending, ties by
   numpy's order): a stable, exact order the device's arbitrary append order cannot give by itself.
3. ``gather`` puts boxes in that order (YOLO: pixel scaling and corners), ``nms_mask`` sets bit j of row i
   when box j > i overlaps box i with IoU above the limit; the host walks the rows greedily.

More than ``MASK_LIMIT`` candidates (a near-zero threshold) would need a mask of MASK_LIMIT^2 bits: those
frames run ``decode.nms`` on the device-decoded boxes instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from accel.core.detections import Detections
from accel.core.errors import KernelError
from accel.kernels import DecodeSpec, Geometry
from accel.kernels.decode import BOX_ORDERS, dequantize, label_names
from accel.kernels.decode import nms as numpy_nms
from accel.model import corners_to_centers

from .runtime import Runtime

DEVICE_FAMILIES = ("ssd-raw", "yolov5", "yolov8")
MASK_LIMIT = 16384
_FILE = "postprocess.cl"
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.uint8): 1, np.dtype(np.int8): 2}
_ACTIVATIONS = {"none": 0, "sigmoid": 1, "softmax": 2}
_CAND_ROLES = ("cand_key", "cand_score", "cand_class", "cand_box")


def _options(rt: Runtime) -> tuple[str, ...]:
    return ("-DUSE_DOUBLE",) if rt.fp64 else ()


def _real(rt: Runtime) -> type[np.floating[Any]]:
    return np.float64 if rt.fp64 else np.float32


def _raw(rt: Runtime, role: str, values: np.ndarray, quant: tuple[float, int] | None) -> tuple[Any, ...]:
    """Upload a model output as it is (float32, uint8, int8; other types that fit float32 exactly are
    converted) with its dtype code and dequantization (scale, zero point) as kernel arguments."""
    a = np.asarray(values)
    if a.dtype not in _DTYPES:
        if not np.can_cast(a.dtype, np.float32, "safe"):
            raise KernelError(f"opencl post-processing reads float32, uint8 and int8 outputs, got {a.dtype} "
                              f"for {role}")
        a = a.astype(np.float32)
    scale, zp = (quant[0], quant[1]) if quant and quant[0] else (0.0, 0)
    real = _real(rt)
    return rt.upload(role, a), np.int32(_DTYPES[a.dtype]), real(scale), real(zp)


def _candidates(rt: Runtime, capacity: int) -> tuple[Any, ...]:
    real_size = np.dtype(_real(rt)).itemsize
    sizes = (4, real_size, 4, 4 * real_size)
    return (rt.upload("count", np.zeros(1, np.int32)), np.int32(capacity),
            *(rt.buffer(role, capacity * size) for role, size in zip(_CAND_ROLES, sizes, strict=True)))


def _ssd(rt: Runtime, outputs: Mapping[str, np.ndarray], spec: DecodeSpec) -> tuple[tuple[Any, ...], bool]:
    enc = np.asarray(outputs["encodings"])
    n = enc.size // 4
    raw = np.asarray(outputs["scores"])
    if raw.size % max(n, 1) or raw.size == 0:
        raise KernelError(f"ssd-raw: {raw.size} score values do not split over {n} box encodings")
    real = _real(rt)
    if spec.anchors is not None:
        a = np.asarray(spec.anchors, np.float64).reshape(-1, 4)
        anchors = rt.constant(("anchors", hashlib.blake2b(a.tobytes()).hexdigest()), a.astype(real))
    elif "anchors" in outputs:
        a = corners_to_centers(dequantize(outputs["anchors"], spec.quant.get("anchors")))[0].reshape(-1, 4)
        anchors = rt.upload("anchors", a.astype(real))
    else:
        raise KernelError("ssd-raw: the model has no anchors and none were generated; "
                          "set [decode] anchors = \"generate\"")
    if a.shape[0] != n:
        raise KernelError(f"ssd-raw: {a.shape[0]} anchors for {n} box encodings; check [decode] anchors and "
                          "anchor_feature_maps")
    cols = raw.size // n
    first = 1 if spec.background_class else 0
    if first and cols < 2:
        raise KernelError("ssd-raw: background_class is set but the scores have a single column; "
                          "set [decode] background_class = \"no\"")
    if spec.score_activation not in _ACTIVATIONS:
        raise KernelError(f"score_activation must be sigmoid, softmax or none, got {spec.score_activation!r}")
    if spec.box_order not in BOX_ORDERS:
        raise KernelError(f"box_order must be one of {', '.join(BOX_ORDERS)}, got {spec.box_order!r}")
    cands = _candidates(rt, n * (cols - first))
    i32 = np.int32
    rt.run(rt.kernel(_FILE, "ssd_decode", _options(rt)), (n,),
           *_raw(rt, "encodings", enc, spec.quant.get("encodings")),
           *_raw(rt, "scores", raw, spec.quant.get("scores")), anchors, i32(n), i32(cols), i32(first),
           i32(_ACTIVATIONS[spec.score_activation]), i32(BOX_ORDERS.index(spec.box_order)),
           *(real(v) for v in spec.box_scales), real(spec.score_threshold), *cands)
    return cands, False


def _yolo(rt: Runtime, outputs: Mapping[str, np.ndarray], spec: DecodeSpec) -> tuple[tuple[Any, ...], bool]:
    version = 5 if spec.family == "yolov5" else 8
    p = np.asarray(outputs["predictions"])
    if p.ndim < 2:
        raise KernelError(f"yolov{version}: expected predictions [1, N, K] or [1, K, N], got {list(p.shape)}")
    rows_n, cols_n = int(p.shape[-2]), int(p.shape[-1])
    first = 5 if version == 5 else 4
    if min(rows_n, cols_n) <= first:
        raise KernelError(f"yolov{version}: expected rows of {first} + classes values, got {min(rows_n, cols_n)}")
    n, k, sn, sk = (rows_n, cols_n, cols_n, 1) if rows_n >= cols_n else (cols_n, rows_n, 1, cols_n)
    cands = _candidates(rt, n)
    i32 = np.int32
    rt.run(rt.kernel(_FILE, "yolo_decode", _options(rt)), (n,),
           *_raw(rt, "predictions", p.reshape(rows_n, cols_n), spec.quant.get("predictions")),
           i32(n), i32(k), i32(sn), i32(sk), i32(first), _real(rt)(spec.score_threshold),
           rt.upload("pixels", np.zeros(1, np.int32)), *cands)
    return cands, True


def greedy(mask: np.ndarray, k: int, max_detections: int) -> list[int]:
    """Positions kept by the greedy scan over suppression rows ``mask`` (k, words) of little-endian bits."""
    rows = np.ascontiguousarray(mask, dtype="<u4").reshape(k, -1)
    removed = np.zeros(k, bool)
    keep: list[int] = []
    i = 0
    while i < k and len(keep) < max_detections:
        if removed[i]:
            free = np.flatnonzero(~removed[i:])
            if not free.size:
                break
            i += int(free[0])
        keep.append(i)
        removed |= np.unpackbits(rows[i].view(np.uint8), bitorder="little")[:k].astype(bool)
        i += 1
    return keep


class Suppression(NamedTuple):
    """What non-maximum suppression keeps: boxes overlapping a kept one by more than ``iou`` go (within a
    class unless ``class_agnostic``), at most ``max_detections`` stay."""

    iou: float
    max_detections: int
    class_agnostic: bool = False


def _mask_keep(rt: Runtime, boxes: Any, classes: Any, k: int, rule: Suppression) -> list[int]:
    words = (k + 31) // 32
    mask = rt.buffer("nms_mask", k * words * 4)
    rt.run(rt.kernel(_FILE, "nms_mask", _options(rt)), (words, k), boxes, classes, np.int32(k), np.int32(words),
           _real(rt)(rule.iou), np.int32(rule.class_agnostic), mask)
    return greedy(rt.download(mask, k * words, np.uint32), k, rule.max_detections)


def nms(rt: Runtime, boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
        rule: Suppression) -> np.ndarray:
    """``decode.nms`` with the suppression bitmask built on the device (see the module docstring)."""
    iou_threshold, max_detections, class_agnostic = rule
    b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    s = np.asarray(scores, np.float64).reshape(-1)
    c = np.asarray(class_ids).reshape(-1)
    if not b.shape[0] == s.shape[0] == c.shape[0]:
        raise KernelError(f"nms: {b.shape[0]} boxes, {s.shape[0]} scores and {c.shape[0]} class ids disagree")
    order = np.argsort(-s, kind="stable")
    k = order.size
    if k == 0 or k > MASK_LIMIT:
        return numpy_nms(b, s, c, iou_threshold, max_detections, class_agnostic)
    boxes = rt.upload("nms_boxes", b[order].astype(_real(rt)))
    classes = rt.upload("nms_classes", c[order].astype(np.int32))
    keep = _mask_keep(rt, boxes, classes, k, rule)
    return order[np.array(keep, np.int64)].astype(np.int64)


def postprocess(rt: Runtime, outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry) -> Detections:
    """ssd-raw, yolov5 or yolov8 outputs -> ``Detections``, the same as ``decode.decode_raw``."""
    cands, yolo = _yolo(rt, outputs, spec) if spec.family != "ssd-raw" else _ssd(rt, outputs, spec)
    count_buf, capacity, key_buf, score_buf, class_buf, box_buf = cands
    k = min(int(rt.download(count_buf, 1, np.int32)[0]), int(capacity))
    if k == 0:
        return Detections.empty()
    real = _real(rt)
    scores = rt.download(score_buf, k, real).astype(np.float64)
    order = np.lexsort((rt.download(key_buf, k, np.int32), -scores)).astype(np.int32)
    boxes, classes = rt.buffer("boxes", k * 4 * np.dtype(real).itemsize), rt.buffer("classes", k * 4)
    in_h, in_w = spec.input_size
    pixels = rt.buffer("pixels", 4)
    rt.run(rt.kernel(_FILE, "gather", _options(rt)), (k,), rt.upload("order", order), np.int32(k), box_buf,
           class_buf, np.int32(yolo), pixels, real(in_w), real(in_h), boxes, classes)
    rule = Suppression(spec.iou_threshold, spec.max_detections, spec.class_agnostic_nms)
    kept = _mask_keep(rt, boxes, classes, k, rule) if k <= MASK_LIMIT else None
    ids = rt.download(classes, k, np.int32)
    b = rt.download(boxes, k * 4, real).astype(np.float64).reshape(k, 4)
    keep = (np.array(kept, np.int64) if kept is not None else
            numpy_nms(b, scores[order], ids, spec.iou_threshold, spec.max_detections, spec.class_agnostic_nms))
    b, ids, kept_scores = b[keep], ids[keep], scores[order][keep]
    xs = (b[:, [0, 2]] - geometry.offset_x) / geometry.scale_x
    ys = (b[:, [1, 3]] - geometry.offset_y) / geometry.scale_y
    xyxy = np.clip(np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1), 0.0, 1.0)
    return Detections(xyxy.astype(np.float32), ids.astype(np.int32), kept_scores.astype(np.float32),
                      label_names(ids, spec.labels))
