"""Raw detector outputs -> Detections: NMS, SSD without its post-process op, YOLOv5, YOLOv8.

Every expected number is worked out by hand in the comments next to it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from accel.core.errors import KernelError
from accel.kernels import DecodeSpec, Geometry
from accel.kernels.decode import decode_ssd_raw, decode_yolo, nms, yolo_in_pixels
from accel.kernels.numpy_ref import postprocess

# 640x480 letterboxed into a square input: content 100% wide, 75% high, 12.5% from the top.
LANDSCAPE = Geometry(1.0, 0.75, 0.0, 0.125)
PORTRAIT = Geometry(0.75, 1.0, 0.125, 0.0)


# --- NMS ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "iou", "agnostic", "max_det", "expected"),
    [
        # A [0,0,10,10], B shifted by 1: inter 9*10 = 90, union 100 + 100 - 90 = 110, IoU 0.818 > 0.5
        pytest.param([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 0], 0.5, False, 100, [0],
                     id="overlap-same-class-one-kept"),
        pytest.param([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 1], 0.5, False, 100, [0, 1],
                     id="overlap-other-class-both-kept"),
        pytest.param([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 1], 0.5, True, 100, [0],
                     id="overlap-other-class-agnostic-one-kept"),
        # A-B and B-C overlap 5/15 = 0.333 > 0.3, A-C not at all: B goes, so C survives though B "would" kill it
        pytest.param([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], [0.9, 0.8, 0.7], [3, 3, 3], 0.3, False, 100,
                     [0, 2], id="chain-suppressed-box-suppresses-nothing"),
        # [0,0,3,1] vs [1,0,4,1]: inter 2, union 4: IoU exactly 0.5, not above 0.5
        pytest.param([[0, 0, 3, 1], [1, 0, 4, 1]], [0.9, 0.8], [0, 0], 0.5, False, 100, [0, 1],
                     id="iou-equal-threshold-kept"),
        pytest.param([[0, 0, 3, 1], [1, 0, 4, 1]], [0.9, 0.8], [0, 0], 0.49, False, 100, [0],
                     id="iou-above-threshold-suppressed"),
        pytest.param([[0, 0, 1, 1], [0, 0, 1, 1]], [0.7, 0.7], [0, 0], 0.5, False, 100, [0], id="tie-lower-index-wins"),
        pytest.param([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], [0.5, 0.9, 0.7], [0, 0, 0], 0.5, False, 100, [1, 2, 0],
                     id="best-first"),
        pytest.param([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], [0.5, 0.9, 0.7], [0, 0, 0], 0.5, False, 2, [1, 2],
                     id="max-detections"),
        pytest.param(np.zeros((0, 4)), [], [], 0.5, False, 100, [], id="empty"),
    ],
)
def test_nms(boxes, scores, classes, iou: float, agnostic: bool, max_det: int, expected: list[int]) -> None:  # type: ignore[no-untyped-def]
    keep = nms(np.array(boxes, float), np.array(scores, float), np.array(classes), iou, max_det, agnostic)
    assert keep.tolist() == expected


def test_nms_rejects_mismatched_lengths() -> None:
    with pytest.raises(KernelError, match="disagree"):
        nms(np.zeros((2, 4)), np.zeros(3), np.zeros(2), 0.5, 10)


# --- SSD without the post-process op ------------------------------------------------------------------------
# Anchors (ycenter, xcenter, h, w).
ANCHORS = np.array([[0.5, 0.5, 0.2, 0.4], [0.25, 0.75, 0.5, 0.5], [0.8, 0.2, 0.1, 0.1]])
LN2 = math.log(2.0)
# TF coding (ty, tx, th, tw), scales 10, 10, 5, 5. Anchor 0: yc = 1/10 * 0.2 + 0.5 = 0.52,
# xc = -2/10 * 0.4 + 0.5 = 0.42, h = exp(5 ln2 / 5) * 0.2 = 0.4, w = exp(0) * 0.4 = 0.4 -> x 0.22..0.62, y 0.32..0.72.
# Anchor 1: zero encoding -> the anchor itself: x 0.5..1.0, y 0..0.5.
ENC_YXHW = np.array([[1.0, -2.0, 5 * LN2, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
BOX0, BOX1 = [0.22, 0.32, 0.62, 0.72], [0.5, 0.0, 1.0, 0.5]
# Logits (background, class 0, class 1): sigmoid(2) = 0.880797, sigmoid(1) = 0.731059; the rest < 0.5.
LOGITS = np.array([[0.0, 2.0, -3.0], [0.0, -1.0, 1.0], [5.0, -5.0, -5.0]])


def _ssd_spec(**kw) -> DecodeSpec:  # type: ignore[no-untyped-def]
    return DecodeSpec(family="ssd-raw", input_size=(300, 300), score_threshold=0.5, **kw)


@pytest.mark.parametrize(
    ("enc", "order"),
    [pytest.param(ENC_YXHW, "yxhw", id="yxhw"), pytest.param(ENC_YXHW[:, [1, 0, 3, 2]], "xywh", id="xywh")],
)
def test_ssd_raw_tf_coding_with_exp(enc: np.ndarray, order: str) -> None:
    det = decode_ssd_raw(enc[None], LOGITS[None], ANCHORS, _ssd_spec(box_order=order))
    np.testing.assert_allclose(det.boxes, [BOX0, BOX1], atol=1e-6)
    assert det.class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(det.scores, [0.880797, 0.731059], atol=1e-6)


def test_ssd_raw_box_scales_divide_encodings() -> None:
    # scales (1, 1, 1, 1) on encodings (0.1, 0, 0, ln 2): yc = 0.1 * 0.2 + 0.5 = 0.52, h = 0.2, w = 2 * 0.4 = 0.8
    enc = np.array([[0.1, 0.0, 0.0, LN2], [0, 0, 0, 0], [0, 0, 0, 0]])
    det = decode_ssd_raw(enc[None], LOGITS[None], ANCHORS, _ssd_spec(box_scales=(1.0, 1.0, 1.0, 1.0)))
    np.testing.assert_allclose(det.boxes[0], [0.1, 0.42, 0.9, 0.62], atol=1e-6)


def test_ssd_raw_corner_coding_softmax_and_quantized_encodings() -> None:
    # STM32 coding on anchor 1 (corners x 0.5..1.0, y 0..0.5, size 0.5 x 0.5), offsets (dx1, dy1, dx2, dy2) =
    # (0.1, -0.2, 0, 0.4): x1 = 0.1*0.5 + 0.5 = 0.55, y1 = -0.2*0.5 + 0 = -0.1 (clipped to 0),
    # x2 = 0 + 1.0 = 1.0, y2 = 0.4*0.5 + 0.5 = 0.7. Stored int8 with scale 0.1, zero point 3: q = t/0.1 + 3.
    q = np.array([[3, 3, 3, 3], [4, 1, 3, 7], [3, 3, 3, 3]], np.int8)
    # softmax of (0, ln 3) = (0.25, 0.75); column 0 is background: 0.75. Others: softmax(0, -9) ~ 0.0001
    scores = np.array([[0.0, -9.0], [0.0, math.log(3.0)], [0.0, -9.0]])
    spec = _ssd_spec(box_order="xyxy", box_scales=(1.0, 1.0, 1.0, 1.0), score_activation="softmax",
                     quant={"encodings": (0.1, 3)})
    det = decode_ssd_raw(q[None], scores[None], ANCHORS, spec)
    np.testing.assert_allclose(det.boxes, [[0.55, 0.0, 1.0, 0.7]], atol=1e-6)
    np.testing.assert_allclose(det.scores, [0.75], atol=1e-6)
    assert det.class_ids.tolist() == [0]


def test_ssd_raw_every_class_over_threshold_is_a_candidate_and_no_background() -> None:
    # background_class off, scores already probabilities: anchor 0 scores 0.9 (class 0) and 0.6 (class 1);
    # both survive (class-aware NMS), best first; anchor 1's 0.7 (class 0) overlaps nothing of class 0
    probs = np.array([[0.9, 0.6], [0.7, 0.1], [0.2, 0.2]])
    det = decode_ssd_raw(ENC_YXHW[None], probs[None], ANCHORS,
                         _ssd_spec(score_activation="none", background_class=False))
    assert det.class_ids.tolist() == [0, 0, 1]
    np.testing.assert_allclose(det.scores, [0.9, 0.7, 0.6], atol=1e-6)
    np.testing.assert_allclose(det.boxes, [BOX0, BOX1, BOX0], atol=1e-6)


def test_ssd_raw_maps_through_letterbox_and_names_labels() -> None:
    # Box 0 y 0.32..0.72 -> (0.32 - 0.125) / 0.75 = 0.26, (0.72 - 0.125) / 0.75 = 0.793333
    det = decode_ssd_raw(ENC_YXHW[None], LOGITS[None], ANCHORS, _ssd_spec(labels=("cat",)), LANDSCAPE)
    np.testing.assert_allclose(det.boxes[0], [0.22, 0.26, 0.62, 0.793333], atol=1e-6)
    assert det.labels == ("cat", "1")


@pytest.mark.parametrize(
    ("anchors", "message"),
    [pytest.param(ANCHORS[:2], "2 anchors for 3 box encodings", id="anchor-count"),
     pytest.param(None, "no anchors", id="no-anchors")],
)
def test_ssd_raw_errors(anchors: np.ndarray | None, message: str) -> None:
    outputs = {"encodings": ENC_YXHW[None], "scores": LOGITS[None]}
    with pytest.raises(KernelError, match=message):
        postprocess(outputs, _ssd_spec(anchors=anchors), Geometry())


def test_ssd_raw_runtime_anchor_output_in_corners() -> None:
    # No spec anchors: the model's own anchors output is read; corners (x1, y1, x2, y2) become centres.
    corners = np.array([[0.3, 0.4, 0.7, 0.6], [0.5, 0.0, 1.0, 0.5], [0.15, 0.75, 0.25, 0.85]])
    outputs = {"encodings": ENC_YXHW[None], "scores": LOGITS[None], "anchors": corners[None]}
    det = postprocess(outputs, _ssd_spec(), Geometry())
    np.testing.assert_allclose(det.boxes, [BOX0, BOX1], atol=1e-6)  # same anchors as ANCHORS, as corners


# --- YOLO -----------------------------------------------------------------------------------------------------
# YOLOv5 rows (cx, cy, w, h, objectness, class 0, class 1) in pixels of a 320x320 input.
# Row 0: score 0.9 * 0.8 = 0.72 (class 1), box x (160-32)/320 = 0.4 .. 0.6, y (80-16)/320 = 0.2 .. 0.3
# Row 1: 0.5 * 0.9 = 0.45 (class 0), x 280/320 = 0.875 .. 1.0, y 180/320 = 0.5625 .. 0.6875
# Row 2: 0.1 * 0.9 = 0.09, under the threshold. Row 3: 0.8 * 0.8 = 0.64 (class 1), IoU with row 0 = 62/66 -> gone.
V5_PIXELS = np.zeros((8, 7))
V5_PIXELS[:4] = [[160, 80, 64, 32, 0.9, 0.1, 0.8], [300, 200, 40, 40, 0.5, 0.9, 0.1],
                 [100, 100, 10, 10, 0.1, 0.9, 0.0], [162, 80, 64, 32, 0.8, 0.0, 0.8]]


def _yolo_spec(family: str, **kw) -> DecodeSpec:  # type: ignore[no-untyped-def]
    return DecodeSpec(family=family, input_size=(320, 320), score_threshold=0.3, **kw)


def test_yolov5_pixels_through_letterbox() -> None:
    det = decode_yolo(V5_PIXELS[None], _yolo_spec("yolov5"), 5, LANDSCAPE)
    # y: (0.2 - 0.125) / 0.75 = 0.1, (0.3 - 0.125) / 0.75 = 0.233333; (0.5625 - 0.125) / 0.75 = 0.583333, 0.75
    np.testing.assert_allclose(det.boxes, [[0.4, 0.1, 0.6, 0.233333], [0.875, 0.583333, 1.0, 0.75]], atol=1e-6)
    assert det.class_ids.tolist() == [1, 0]
    np.testing.assert_allclose(det.scores, [0.72, 0.45], atol=1e-6)


def test_yolov5_uint8_normalized() -> None:
    # The same rows normalized (pixels / 320), stored uint8 with scale 1/200, zero point 10: q = 200 r + 10.
    # Row 0 = (0.5, 0.25, 0.2, 0.1, 0.9, 0.1, 0.8); rows 1-3 keep objectness 0 (q = 10).
    q = np.full((8, 7), 10, np.uint8)
    q[0] = [110, 60, 50, 30, 190, 30, 170]
    det = decode_yolo(q[None], _yolo_spec("yolov5", quant={"predictions": (1 / 200, 10)}), 5, Geometry())
    np.testing.assert_allclose(det.boxes, [[0.4, 0.2, 0.6, 0.3]], atol=1e-6)
    np.testing.assert_allclose(det.scores, [0.72], atol=1e-6)


def test_yolov8_int8_columns_through_portrait_letterbox() -> None:
    # [4 + 2, N = 8] int8, scale 1/100, zero point -20: column 0 = (0.5, 0.5, 0.2, 0.4, 0.1, 0.85) ->
    # q = (30, 30, 0, 20, -10, 65); the other columns all class scores 0 (q = -20).
    q = np.full((6, 8), -20, np.int8)
    q[:, 0] = [30, 30, 0, 20, -10, 65]
    det = decode_yolo(q[None], _yolo_spec("yolov8", quant={"predictions": (0.01, -20)}), 8, PORTRAIT)
    # box x 0.4..0.6 -> (0.4 - 0.125) / 0.75 = 0.366667, (0.6 - 0.125) / 0.75 = 0.633333; y 0.3..0.7
    np.testing.assert_allclose(det.boxes, [[0.366667, 0.3, 0.633333, 0.7]], atol=1e-6)
    assert det.class_ids.tolist() == [1]
    np.testing.assert_allclose(det.scores, [0.85], atol=1e-6)


def test_yolov8_transposed_rows_and_labels() -> None:
    rows = np.zeros((8, 6))
    rows[2] = [0.5, 0.5, 0.2, 0.4, 0.0, 0.6]
    det = decode_yolo(rows[None], _yolo_spec("yolov8", labels=("a", "b")), 8, Geometry())
    np.testing.assert_allclose(det.boxes, [[0.4, 0.3, 0.6, 0.7]], atol=1e-6)
    assert det.labels == ("b",)


@pytest.mark.parametrize(
    ("centres", "pixels"),
    [pytest.param([[0.02, 0.02], [0.98, 0.97]], False, id="normalized"),
     pytest.param([[1.05, 0.5]], False, id="normalized-past-edge"),
     pytest.param([[4.0, 4.0], [636.0, 600.0]], True, id="pixels"),
     pytest.param(np.zeros((0, 2)), False, id="empty")],
)
def test_yolo_pixel_rule(centres, pixels: bool) -> None:  # type: ignore[no-untyped-def]
    assert yolo_in_pixels(np.array(centres, float)) is pixels


def test_unknown_family_is_a_kernel_error() -> None:
    with pytest.raises(KernelError, match="cannot post-process model family 'retinanet'"):
        postprocess({}, DecodeSpec(family="retinanet", input_size=(8, 8)), Geometry())
