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


def _frame_agreement(ref: list[dict[str, Any]], other: list[dict[str, Any]], iou: float) -> float:
    if not ref and not other:
        return 1.0
    if "box" not in (ref or other)[0]:  # classifications: top-1 equal
        return 1.0 if ref and other and ref[0]["class_id"] == other[0]["class_id"] else 0.0
    a = np.array([d["box"] for d in ref], dtype=np.float64).reshape(-1, 4)
    b = np.array([d["box"] for d in other], dtype=np.float64).reshape(-1, 4)
    m = iou_matrix(a, b)
    same = np.array([[r["class_id"] == o["class_id"] for o in other] for r in ref], dtype=bool).reshape(m.shape)
    m = np.where(same & (m >= iou), m, 0.0)
    matches = 0
    while m.size and m.max() > 0:  # greedy: best pair first, each box used once
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        matches += 1
        m[i, :] = 0
        m[:, j] = 0
    return 2.0 * matches / (len(ref) + len(other))


def agreement(ref: dict[str, list[dict[str, Any]]], other: dict[str, list[dict[str, Any]]],
              iou: float = 0.5) -> float | None:
    """Mean over the frames both saved of the detection F1 against the reference (same class, IoU >= iou);
    for classifiers, the share of frames with the same top-1 class. ``None`` when no frame is shared."""
    shared = sorted(set(ref) & set(other))
    if not shared:
        return None
    return float(np.mean([_frame_agreement(ref[k], other[k], iou) for k in shared]))
