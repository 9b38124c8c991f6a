"""How far a variant's answers are from the reference's on the same frames."""

from __future__ import annotations

from typing import Any

import numpy as np


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


def _frame_matches(ref: list[dict[str, Any]], other: list[dict[str, Any]], iou: float) -> tuple[float, list[float],
                                                                                        list[float]]:
    """Detection F1 of one frame against the reference, and the IoU and |score difference| of each match
    (greedy, best IoU first, same class, IoU >= ``iou``)."""
    if not ref and not other:
        return 1.0, [], []
    if "box" not in (ref or other)[0]:  # classifications: top-1 equal
        same = bool(ref and other and ref[0]["class_id"] == other[0]["class_id"])
        drift = [abs(ref[0]["score"] - other[0]["score"])] if same else []
        return (1.0 if same else 0.0), [], drift
    a = np.array([d["box"] for d in ref], dtype=np.float64).reshape(-1, 4)
    b = np.array([d["box"] for d in other], dtype=np.float64).reshape(-1, 4)
    m = iou_matrix(a, b)
    same_class = np.array([[r["class_id"] == o["class_id"] for o in other] for r in ref], bool).reshape(m.shape)
    m = np.where(same_class & (m >= iou), m, 0.0)
    ious, drift = [], []
    while m.size and m.max() > 0:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        ious.append(float(m[i, j]))
        drift.append(abs(ref[i]["score"] - other[j]["score"]))
        m[i, :] = 0
        m[:, j] = 0
    return 2.0 * len(ious) / (len(ref) + len(other)), ious, drift


def agreement(ref: dict[str, list[dict[str, Any]]], other: dict[str, list[dict[str, Any]]], iou: float = 0.5,
              threshold: float = 0.0) -> dict[str, Any] | None:
    """How far ``other``'s answers are from ``ref``'s on the frames both saved, counting detections scoring
    >= ``threshold``: ``score`` = mean per-frame detection F1 (same class, IoU >= ``iou``; for classifiers
    the share of frames with the same top-1 class), ``mean_iou`` of the matched boxes, ``score_drift`` = mean
    |score difference| of matches. ``None`` when no frame is shared."""
    shared = sorted(set(ref) & set(other))
    if not shared:
        return None

    def kept(dets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in dets if d["score"] >= threshold]

    f1s, ious, drift = [], [], []
    for k in shared:
        f1, i, d = _frame_matches(kept(ref[k]), kept(other[k]), iou)
        f1s.append(f1)
        ious += i
        drift += d
    return {"score": float(np.mean(f1s)), "mean_iou": float(np.mean(ious)) if ious else None,
            "score_drift": float(np.mean(drift)) if drift else None, "frames": len(shared)}
