from __future__ import annotations

import numpy as np
import pytest

from accel.results.agreement import agreement, iou_matrix


def test_iou_hand_computed() -> None:
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], float)
    # overlap 1x1 = 1, union 4 + 4 - 1 = 7
    assert iou_matrix(a, b).tolist() == [[pytest.approx(1 / 7), 1.0, 0.0]]


def _d(box: list[float], cls: int, score: float) -> dict[str, object]:
    return {"box": box, "class_id": cls, "score": score}


def test_agreement_metrics() -> None:
    ref = {"0": [_d([0, 0, 0.5, 0.5], 1, 0.9), _d([0.5, 0.5, 1, 1], 2, 0.8)], "1": []}
    # frame 0: first box shifted (IoU = 0.5*0.45 / (0.25 + 0.25 - 0.225) = 0.818...), second has another class
    other = {"0": [_d([0.05, 0, 0.55, 0.5], 1, 0.7), _d([0.5, 0.5, 1, 1], 3, 0.8)], "1": [], "2": []}
    got = agreement(ref, other)
    assert got is not None
    assert got["frames"] == 2
    assert got["score"] == pytest.approx((2 * 1 / 4 + 1.0) / 2)  # F1 0.5 on frame 0, both empty on frame 1
    assert got["mean_iou"] == pytest.approx(0.225 / 0.275)
    assert got["score_drift"] == pytest.approx(0.2)


def test_threshold_drops_low_scores() -> None:
    ref = {"0": [_d([0, 0, 1, 1], 0, 0.9)]}
    other = {"0": [_d([0, 0, 1, 1], 0, 0.9), _d([0, 0, 0.1, 0.1], 0, 0.05)]}
    assert agreement(ref, other, threshold=0.3)["score"] == 1.0  # type: ignore[index]
    assert agreement(ref, other)["score"] == pytest.approx(2 / 3)  # type: ignore[index]


def test_a_different_candidate_at_a_full_lists_cut_is_a_tie_not_a_disagreement() -> None:
    # max_detections 2: both keep the 0.9 box; for the second place the reference kept class 1 at 0.30, the other
    # class 2 at 0.30 (quantized scores tie). Hand count: 1 match, one unmatched each side, both within 0.01 of
    # the partner's lowest kept score (0.30) -> 2 at the cut; F1 over the rest = 2*1 / (2 + 2 - 2) = 1.
    ref = {"0": [_d([0, 0, 0.5, 0.5], 0, 0.9), _d([0.5, 0.5, 1, 1], 1, 0.30)]}
    other = {"0": [_d([0, 0, 0.5, 0.5], 0, 0.9), _d([0.6, 0.6, 0.7, 0.7], 2, 0.30)]}
    got = agreement(ref, other, limit=2, margin=0.01)
    assert got is not None and got["score"] == 1.0 and got["at_cut"] == 2
    # without a limit (lists not full) the same pair is a disagreement: F1 = 2*1 / 4
    assert agreement(ref, other, margin=0.01)["score"] == pytest.approx(0.5)  # type: ignore[index]
    # a miss well above the cut stays a disagreement: the other lacks a 0.8 detection the reference has
    ref["0"][1]["score"] = 0.8
    got = agreement(ref, other, limit=2, margin=0.01)
    assert got is not None and got["at_cut"] == 1 and got["score"] == pytest.approx(2 * 1 / (4 - 1))


def test_a_detection_just_above_the_threshold_on_one_side_only_is_a_tie() -> None:
    ref = {"0": [_d([0, 0, 1, 1], 0, 0.9), _d([0, 0, 0.2, 0.2], 3, 0.305)]}  # the other has it at 0.299: dropped
    other = {"0": [_d([0, 0, 1, 1], 0, 0.9)]}
    got = agreement(ref, other, threshold=0.3, margin=0.01)
    assert got is not None and got["score"] == 1.0 and got["at_cut"] == 1
    assert agreement(ref, other, threshold=0.3)["score"] == pytest.approx(2 / 3)  # type: ignore[index]
