"""Post-processing of the numpy reference: SSD outputs -> Detections, classifier outputs -> top-k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accel.core.detections import Detections
from accel.core.errors import KernelError
from accel.kernels import DecodeSpec, Geometry
from accel.kernels.numpy_ref import NumpyKernels, classify_topk, ssd_detections

# Three rows as TFLite_Detection_PostProcess writes them: (ymin, xmin, ymax, xmax), float classes, scores.
BOXES = [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.4, 0.4]]
CLASSES = [16.9999, 0.0001, 3.0]  # a quantized model's 17 and 0
SCORES = [0.9, 0.4, 0.95]


def _roles(boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, count: np.ndarray) -> dict[str, np.ndarray]:
    return {"boxes": boxes, "classes": classes, "scores": scores, "count": count}


def _ssd(count: float, threshold: float, labels: list[str] | None = None) -> Detections:
    return ssd_detections(
        _roles(np.array([BOXES], np.float32), np.array([CLASSES], np.float32), np.array([SCORES], np.float32),
               np.array([count], np.float32)),
        threshold=threshold,
        geometry=Geometry(),
        labels=labels,
    )


@pytest.mark.parametrize(
    ("count", "threshold", "boxes", "class_ids", "scores"),
    [
        # count 2 hides row 2 (score 0.95); threshold 0.5 drops row 1; yx order becomes xyxy
        (2, 0.5, [[0.2, 0.1, 0.6, 0.5]], [17], [0.9]),
        (2, 0.3, [[0.2, 0.1, 0.6, 0.5], [0.0, 0.0, 1.0, 1.0]], [17, 0], [0.9, 0.4]),
        # score == threshold is kept
        (2, 0.4, [[0.2, 0.1, 0.6, 0.5], [0.0, 0.0, 1.0, 1.0]], [17, 0], [0.9, 0.4]),
        # count larger than N: every row is considered
        (10, 0.5, [[0.2, 0.1, 0.6, 0.5], [0.3, 0.3, 0.4, 0.4]], [17, 3], [0.9, 0.95]),
        (0, 0.0, [], [], []),
    ],
    ids=["count2-thr0.5", "count2-thr0.3", "threshold-inclusive", "count-over-N", "count0"],
)
def test_ssd_rows_threshold_and_order(
    count: int, threshold: float, boxes: list[list[float]], class_ids: list[int], scores: list[float]
) -> None:
    det = _ssd(count, threshold)
    assert len(det) == len(scores)
    assert (
        det.boxes.dtype == np.float32 and det.class_ids.dtype == np.int32 and det.scores.dtype == np.float32
    )
    assert det.boxes.shape == (len(scores), 4)
    np.testing.assert_allclose(det.boxes, np.array(boxes, np.float32).reshape(-1, 4), atol=1e-6)
    assert det.class_ids.tolist() == class_ids
    assert det.scores.tolist() == pytest.approx(scores)
    assert det.labels == ()


def test_ssd_without_batch_dimension() -> None:
    det = ssd_detections(
        _roles(np.array(BOXES), np.array(CLASSES), np.array(SCORES), np.array(3.0)),  # a 0-d count
        threshold=0.5,
        geometry=Geometry(),
    )
    assert det.class_ids.tolist() == [17, 3]


@pytest.mark.parametrize(
    ("geometry", "box_yx", "expected_xyxy"),
    [
        # 640x480 letterboxed into 320x320: scale_y 0.75, offset_y 0.125.
        # y: (0.125 - 0.125) / 0.75 = 0, (0.5 - 0.125) / 0.75 = 0.5; x unchanged
        (Geometry(1.0, 0.75, 0.0, 0.125), [0.125, 0.25, 0.5, 0.75], [0.25, 0.0, 0.75, 0.5]),
        # a box reaching into the borders: (0.05 - 0.125) / 0.75 = -0.1 -> 0; (0.95 - 0.125) / 0.75 = 1.1 -> 1
        (Geometry(1.0, 0.75, 0.0, 0.125), [0.05, 0.1, 0.95, 0.9], [0.1, 0.0, 0.9, 1.0]),
        # portrait into a square: scale_x 0.75, offset_x 0.125: (0.2 - 0.125) / 0.75 = 0.1, 0.8 -> 0.9
        (Geometry(0.75, 1.0, 0.125, 0.0), [0.3, 0.2, 0.6, 0.8], [0.1, 0.3, 0.9, 0.6]),
    ],
    ids=["landscape-letterbox", "clipped-to-frame", "portrait-letterbox"],
)
def test_ssd_maps_back_through_geometry(
    geometry: Geometry, box_yx: list[float], expected_xyxy: list[float]
) -> None:
    det = ssd_detections(
        _roles(np.array([[box_yx]]), np.array([[1.0]]), np.array([[0.8]]), np.array([1.0])),
        threshold=0.5,
        geometry=geometry,
    )
    assert det.boxes[0].tolist() == pytest.approx(expected_xyxy, abs=1e-6)


def test_ssd_labels() -> None:
    labels = ["person", "bicycle", "car", "motorcycle"]
    assert _ssd(3, 0.3, labels=labels).labels == ("17", "person", "motorcycle")  # 17 is past the list
    assert _ssd(3, 0.3, labels=[]).labels == ("17", "0", "3")


def test_ssd_mismatched_outputs_raise() -> None:
    with pytest.raises(KernelError, match="disagree"):
        ssd_detections(
            _roles(np.zeros((1, 3, 4)), np.zeros((1, 2)), np.zeros((1, 3)), np.array([3.0])),
            threshold=0.5,
            geometry=Geometry(),
        )


# --- classification -------------------------------------------------------------------------------------------
def _softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


@pytest.mark.parametrize(
    ("output", "scale", "zero_point", "top_k", "ids", "scores"),
    [
        # uint8 probabilities, scale 1/256: 0, 0.25, 0.5, 0.75, 0.99609375 -> kept as they are
        (np.array([[0, 64, 128, 192, 255]], np.uint8), 1 / 256, 0, 3, [4, 3, 2], [255 / 256, 0.75, 0.5]),
        # uint8 logits: (100 - 128) * 0.1 = -2.8, (140 - 128) * 0.1 = 1.2, -0.8 -> softmax
        (
            np.array([[100, 140, 120]], np.uint8),
            0.1,
            128,
            3,
            [1, 2, 0],
            [_softmax([-2.8, 1.2, -0.8])[i] for i in (1, 2, 0)],
        ),
        # float logits (scale 0: not quantized)
        (np.array([[2.0, 1.0, 0.1]], np.float32), 0.0, 0, 2, [0, 1], _softmax([2.0, 1.0, 0.1])[:2]),
        # independent sigmoids in [0, 1] (sum 1.8) are not renormalized
        (np.array([[0.1, 0.9, 0.8]], np.float32), 0.0, 0, 2, [1, 2], [0.9, 0.8]),
        # ties: lower class id first
        (np.array([[0.2, 0.3, 0.3, 0.2]], np.float32), 0.0, 0, 4, [1, 2, 0, 3], [0.3, 0.3, 0.2, 0.2]),
        # top_k larger than the number of classes
        (np.array([[0.5, 0.25]], np.float32), 0.0, 0, 5, [0, 1], [0.5, 0.25]),
    ],
    ids=["uint8-probabilities", "uint8-logits", "float-logits", "sigmoids", "ties", "k-over-C"],
)
def test_classify_topk(
    output: np.ndarray, scale: float, zero_point: int, top_k: int, ids: list[int], scores: list[float]
) -> None:
    result = classify_topk(output, scale=scale, zero_point=zero_point, top_k=top_k)
    assert result.class_ids.dtype == np.int32 and result.scores.dtype == np.float32
    assert result.class_ids.tolist() == ids
    assert result.scores.tolist() == pytest.approx(scores, rel=1e-6)


def test_classify_labels_and_kernel_set_delegation() -> None:
    output = np.array([[0.1, 0.7, 0.2]], np.float32)
    spec = DecodeSpec(family="classifier", input_size=(4, 4), top_k=2, labels=("cat", "dog"))
    result = NumpyKernels().postprocess({"logits": output}, spec, Geometry())
    assert result.class_ids.tolist() == [1, 2]
    assert result.labels == ("dog", "2")


def test_classify_rejects_top_k_zero() -> None:
    with pytest.raises(KernelError, match="top_k must be >= 1"):
        classify_topk(np.zeros((1, 3)), scale=0.0, zero_point=0, top_k=0)
