"""Real third-party detectors on real photos (../shared; skipped where it is absent).

Expected values come from ../shared/models/README.md, measured independently of accel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accel.agreement import iou_matrix
from accel.delegates import Variant
from accel.labels import load_labels
from accel.model import load_model
from accel.pipeline import Settings, run_variant
from accel.sources import SourceSpec, capture, open_source


def _yxyx_to_xyxy(b: list[float]) -> list[float]:
    return [b[1], b[0], b[3], b[2]]


@pytest.mark.parametrize("delegate", ["cpu-reference", "xnnpack"])
@pytest.mark.parametrize("kernels", ["numpy", "opencv"])
def test_ssd_mobilenet_v1_finds_both_beagles(shared_dir: Path, delegate: str, kernels: str) -> None:
    if kernels == "opencv":
        pytest.importorskip("cv2")
    models = shared_dir / "models"
    model = load_model(models / "ssd_mobilenet_v1_coco_quant_postprocess.tflite")
    labels = load_labels(models / "ssd_mobilenet_v1_coco_labelmap.txt")
    with open_source(SourceSpec(kind="image", target=str(shared_dir / "images" / "beagles.jpg"))) as src:
        frames = capture(src, 1)
    settings = Settings(frames=1, seconds=0.0, warmup=0, score_threshold=0.4, labels=labels)
    rec = run_variant(model, Variant(delegate, (("threads", 1),)), kernels, frames, settings)
    dets = rec["detections"]["0"]
    dogs = [d for d in dets if d["label"] == "dog"]
    assert all(d["class_id"] == 17 for d in dogs)
    # README: dog .71 at (ymin, xmin, ymax, xmax) [0.010,0.001,0.861,0.335] and [0.081,0.310,0.958,0.969]
    expected = np.array([_yxyx_to_xyxy([0.010, 0.001, 0.861, 0.335]), _yxyx_to_xyxy([0.081, 0.310, 0.958, 0.969])])
    found = np.array([d["box"] for d in dogs]).reshape(-1, 4)
    best = iou_matrix(expected, found).max(axis=1) if len(found) else np.zeros(2)
    assert (best > 0.9).all(), dogs
    assert all(abs(d["score"] - 0.71) < 0.08 for d in dogs)
    assert any(d["label"] == "person" for d in dets)
