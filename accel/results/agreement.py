"""How far a variant's answers are from the reference's on the same frames.

A detection one side has and the other lacks is a disagreement, except at a cut both sides make by score:
within ``margin`` above the score threshold (the other side may hold it just below, where it is not
reported), or, when the other side's list is full (``limit``, the detector's max_detections), at or below that
list's lowest score plus ``margin`` (a full list cannot show what ranks below its last entry; the other side
kept a different candidate in its place). There the two answers differ only by the order of near-equal scores:
such detections are counted as ``at_cut``, apart from the score. Quantized detectors make this common: SSD
MobileNet v1's scores come in uint8 steps of about 0.004, so candidates tie exactly, and kernels that round
differently keep different ones of the tie.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from accel.results.record import Agreement, VariantRecord


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4 xyxy) with every box in ``b`` (m, 4 xyxy)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _at_cut(unmatched: list[float], partner: list[dict[str, Any]], cut: tuple[float, int | None, float]) -> int:
    """How many unmatched scores lie within the margin of a cut the partner list made (see the module doc)."""
    threshold, limit, margin = cut
    full = limit is not None and len(partner) >= limit
    lowest = min(d["score"] for d in partner) if partner else 0.0
    return sum(1 for s in unmatched if s <= threshold + margin or (full and s <= lowest + margin))


def _frame_matches(ref: list[dict[str, Any]], other: list[dict[str, Any]], iou: float,
                   cut: tuple[float, int | None, float]) -> tuple[float, list[float], list[float], int]:
    """Detection F1 of one frame against the reference, the IoU and |score difference| of each match
    (greedy, best IoU first, same class, IoU >= ``iou``), and how many unmatched detections were at a cut
    (``cut``: score threshold, limit, margin), left out of the F1."""
    if not ref and not other:
        return 1.0, [], [], 0
    if "box" not in (ref or other)[0]:  # classifications: top-1 equal
        same = bool(ref and other and ref[0]["class_id"] == other[0]["class_id"])
        drift = [abs(ref[0]["score"] - other[0]["score"])] if same else []
        return (1.0 if same else 0.0), [], drift, 0
    a = np.array([d["box"] for d in ref], dtype=np.float64).reshape(-1, 4)
    b = np.array([d["box"] for d in other], dtype=np.float64).reshape(-1, 4)
    m = iou_matrix(a, b)
    same_class = np.array([[r["class_id"] == o["class_id"] for o in other] for r in ref], bool).reshape(m.shape)
    m = np.where(same_class & (m >= iou), m, 0.0)
    ious, drift = [], []
    left_ref, left_other = set(range(len(ref))), set(range(len(other)))
    while m.size and m.max() > 0:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        ious.append(float(m[i, j]))
        drift.append(abs(ref[i]["score"] - other[j]["score"]))
        left_ref.discard(int(i))
        left_other.discard(int(j))
        m[i, :] = 0
        m[:, j] = 0
    edge = _at_cut([ref[i]["score"] for i in left_ref], other, cut) \
        + _at_cut([other[j]["score"] for j in left_other], ref, cut)
    counted = len(ref) + len(other) - edge
    return (2.0 * len(ious) / counted if counted else 1.0), ious, drift, edge


def agreement(ref: dict[str, list[dict[str, Any]]], other: dict[str, list[dict[str, Any]]], iou: float = 0.5,
              threshold: float = 0.0, limit: int | None = None, margin: float = 0.0) -> dict[str, Any] | None:
    """How far ``other``'s answers are from ``ref``'s on the frames both saved, counting detections scoring
    >= ``threshold``: ``score`` = mean per-frame detection F1 (same class, IoU >= ``iou``; for classifiers
    the share of frames with the same top-1 class) over the detections not ``at_cut`` (within ``margin`` above
    the threshold, or at or below a full list's lowest score + ``margin`` when lists hold at most ``limit``),
    ``mean_iou`` of the
    matched boxes, ``score_drift`` = mean |score difference| of matches, ``at_cut`` = detections left out
    (summed over frames). ``None`` when no frame is shared."""
    shared = sorted(set(ref) & set(other))
    if not shared:
        return None

    def kept(dets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in dets if d["score"] >= threshold]

    f1s, ious, drift, edge = [], [], [], 0
    for k in shared:
        f1, i, d, e = _frame_matches(kept(ref[k]), kept(other[k]), iou, (threshold, limit, margin))
        f1s.append(f1)
        ious += i
        drift += d
        edge += e
    return {"score": float(np.mean(f1s)), "mean_iou": float(np.mean(ious)) if ious else None,
            "score_drift": float(np.mean(drift)) if drift else None, "frames": len(shared), "at_cut": edge}


def with_agreement(variants: list[VariantRecord], threshold: float, iou: float, limit: int | None,
                   margin: float) -> list[VariantRecord]:
    """Agreement of every variant's detections with cpu-reference's (same kernel set when there is one);
    ``limit`` (detections kept per frame) and ``margin``: the cuts of ``accel.results.agreement``."""
    refs = [v for v in variants if v.delegate == "cpu-reference" and v.ok and v.run is not None]
    out = []
    for v in variants:
        if v.ok and v.run is not None and refs:
            ref = next((r for r in refs if (r.kernels, r.execution) == (v.kernels, v.execution)),
                       next((r for r in refs if r.kernels == v.kernels), refs[0]))
            assert ref.run is not None
            found = agreement(ref.run.detections, v.run.detections, iou=iou, threshold=threshold, limit=limit,
                              margin=margin)
            v = replace(v, agreement=Agreement(f"{ref.variant} + {ref.kernels}", **(found or {})))
        out.append(v)
    return out


def with_accuracy(variants: list[VariantRecord], dataset: Any, classes: dict[int, int],
                  threshold: float) -> list[VariantRecord]:
    """Every variant's accuracy on ``dataset`` (pycocotools, ``accel.dataset.coco.evaluate``)."""
    from accel.dataset.coco import evaluate

    return [replace(v, accuracy=evaluate(dataset, {int(k): d for k, d in v.run.detections.items()}, classes,
                                         threshold)) if v.ok and v.run is not None else v for v in variants]
