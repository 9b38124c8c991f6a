"""TFLite_Detection_PostProcess reproduced in numpy (accel.kernels.detection_postprocess), on hand-worked cases.

The op run by the runtime on real photos is the reference in tests/test_postprocess_op.py; here every expected
number is worked out by hand next to it, and the tie order of the C++ partial sort comes from g++'s own.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from accel.core.errors import KernelError
from accel.kernels import DecodeSpec, DetectionPostProcess, Geometry
from accel.kernels.decode import decode_raw
from accel.kernels.detection_postprocess import decode_boxes, partial_argsort, replay, run_postprocess

# Zero encodings decode to the anchors' own corners: yc = 0 / 10 * h + ya = ya, half_h = 0.5 * exp(0) * h.
# A0 = [0, 0, .5, .5]; A1 = [0, .05, .5, .55] overlaps it: inter .5 * .45 = .225, union .25 + .25 - .225 = .275,
# IoU .818; A2 = [.5, .5, 1, 1] touches neither.
ANCHORS = np.array([[0.25, 0.25, 0.5, 0.5], [0.25, 0.3, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]], np.float32)
ZERO = np.zeros((1, 3, 4), np.float32)
# Column 0 is the background; classes 0 and 1 follow.
SCORES = np.array([[[0.0, 0.9, 0.1], [0.0, 0.2, 0.8], [0.0, 0.6, 0.7]]], np.float32)
BOX = {0: [0.0, 0.0, 0.5, 0.5], 1: [0.0, 0.05, 0.5, 0.55], 2: [0.5, 0.5, 1.0, 1.0]}


def options(**changes: object) -> DetectionPostProcess:
    base = {"max_detections": 10, "max_classes_per_detection": 1, "num_classes": 2, "nms_score_threshold": 0.05,
            "nms_iou_threshold": 0.5, "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}
    return DetectionPostProcess.from_options({**base, **changes})


def rows(out, n: int) -> list[tuple[int, float, list[float]]]:  # type: ignore[no-untyped-def]
    return [(int(out.classes[i]), round(float(out.scores[i]), 6), np.round(out.boxes[i].astype(np.float64), 6).tolist())
            for i in range(n)]


@pytest.mark.parametrize(("changes", "count", "expected"), [
    # Best class per anchor: A0 .9 (class 0), A1 .8 (1), A2 .7 (1); one class-agnostic pass: A1 goes (IoU .818
    # with A0) although its class differs.
    pytest.param({}, 2, [(0, 0.9, BOX[0]), (1, 0.7, BOX[2])], id="fast-class-agnostic"),
    # The score threshold is inclusive: A1's .8 stays a candidate (then loses to A0).
    pytest.param({"nms_score_threshold": 0.8}, 1, [(0, 0.9, BOX[0])], id="fast-threshold-inclusive"),
    pytest.param({"nms_score_threshold": 0.8, "nms_iou_threshold": 0.9}, 2, [(0, 0.9, BOX[0]), (1, 0.8, BOX[1])],
                 id="fast-iou-limit"),
    pytest.param({"max_detections": 1}, 1, [(0, 0.9, BOX[0])], id="fast-max-detections"),
    # Two classes an anchor, at rows 2k and 2k+1; the count is of anchors (2), not of rows.
    pytest.param({"max_classes_per_detection": 2}, 2,
                 [(0, 0.9, BOX[0]), (1, 0.1, BOX[0]), (1, 0.7, BOX[2]), (0, 0.6, BOX[2])], id="fast-two-classes"),
    # Per class: class 0 (A0 .9, A2 .6; A1 .2 loses to A0), class 1 (A1 .8, A2 .7; A0 .1 loses to A1); then
    # all by score.
    pytest.param({"use_regular_nms": True}, 4,
                 [(0, 0.9, BOX[0]), (1, 0.8, BOX[1]), (1, 0.7, BOX[2]), (0, 0.6, BOX[2])], id="regular-per-class"),
    pytest.param({"use_regular_nms": True, "max_detections": 3}, 3,
                 [(0, 0.9, BOX[0]), (1, 0.8, BOX[1]), (1, 0.7, BOX[2])], id="regular-max-detections"),
    pytest.param({"use_regular_nms": True, "detections_per_class": 1}, 2, [(0, 0.9, BOX[0]), (1, 0.8, BOX[1])],
                 id="regular-detections-per-class"),
])
def test_both_nms_modes(changes: dict, count: int, expected: list) -> None:  # type: ignore[type-arg]
    out = run_postprocess(ZERO, SCORES, ANCHORS, options(**changes))
    assert out.count == count
    assert rows(out, len(expected)) == expected


def test_regular_mode_pads_rows_with_zeros() -> None:
    out = run_postprocess(ZERO, SCORES, ANCHORS, options(use_regular_nms=True))
    assert out.boxes.shape == (10, 4) and not out.boxes[4:].any() and not out.scores[4:].any()


def test_regular_mode_equal_scores_keep_the_earlier_class_first() -> None:
    # One anchor, both classes .5: the merge is stable, so class 0 (merged first) stays ahead of class 1.
    scores = np.array([[[0.0, 0.5, 0.5]]], np.float32)
    out = run_postprocess(np.zeros((1, 1, 4), np.float32), scores, ANCHORS[:1], options(use_regular_nms=True))
    assert out.count == 2 and out.classes[:2].tolist() == [0.0, 1.0]


def test_iou_equal_to_the_limit_keeps_both() -> None:
    # [0, 0, .75, 1] and [.25, 0, 1, 1]: inter .5, union .75 + .75 - .5 = 1, IoU exactly .5 (all exact in float32).
    anchors = np.array([[0.375, 0.5, 0.75, 1.0], [0.625, 0.5, 0.75, 1.0]], np.float32)
    scores = np.array([[[0.0, 0.9], [0.0, 0.8]]], np.float32)
    out = run_postprocess(np.zeros((1, 2, 4), np.float32), scores, anchors, options(num_classes=1))
    assert out.count == 2
    tighter = run_postprocess(np.zeros((1, 2, 4), np.float32), scores, anchors,
                              options(num_classes=1, nms_iou_threshold=0.49))
    assert tighter.count == 1


def test_a_box_of_zero_area_overlaps_nothing() -> None:
    anchors = np.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.0, 0.5]], np.float32)  # the second is a flat line
    scores = np.array([[[0.0, 0.9], [0.0, 0.8]]], np.float32)
    assert run_postprocess(np.zeros((1, 2, 4), np.float32), scores, anchors, options(num_classes=1)).count == 2


def test_scores_without_a_background_column() -> None:
    out = run_postprocess(ZERO, SCORES[..., 1:], ANCHORS, options())
    assert out.count == 2 and out.classes[:2].tolist() == [0.0, 1.0]


def test_decode_uses_the_scales_and_anchors() -> None:
    # Anchor (.5, .5, .2, .4), encodings (1, -2, 5 ln 2, 0): yc = 1 / 10 * .2 + .5 = .52,
    # xc = -2 / 10 * .4 + .5 = .42, half_h = .5 * exp(ln 2) * .2 = .2, half_w = .5 * exp(0) * .4 = .2.
    enc = np.array([[1.0, -2.0, 5 * math.log(2), 0.0]], np.float32)
    box = decode_boxes(enc, np.array([[0.5, 0.5, 0.2, 0.4]], np.float32), (10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(box[0], [0.32, 0.22, 0.72, 0.62], atol=1e-6)
    assert box.dtype == np.float32


def test_quantized_inputs_are_dequantized() -> None:
    # Encodings q = 128 with zero point 128 are 0 (the anchors' corners); scores q = 230 at 1/256 are .8984375.
    enc = np.full((1, 3, 4), 128, np.uint8)
    scores = np.zeros((1, 3, 3), np.uint8)
    scores[0, 2, 1] = 230
    out = run_postprocess(enc, scores, ANCHORS, options(), {"encodings": (0.05, 128), "scores": (1 / 256, 0)})
    assert out.count == 1 and rows(out, 1) == [(0, 0.898438, BOX[2])]


def test_split_spec_decodes_as_the_op_and_filters_by_the_user_threshold() -> None:
    spec = DecodeSpec("ssd-raw", (300, 300), score_threshold=0.65, iou_threshold=0.99, max_detections=1,
                      anchors=ANCHORS, postprocess=options())
    det = decode_raw({"encodings": ZERO, "scores": SCORES}, spec, Geometry())
    # The op keeps A0 (.9) and A2 (.7) whatever [decode] says; .65 then filters what is reported, as for
    # the in-graph op's outputs. Boxes come out x0, y0, x1, y1.
    assert det.class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(det.boxes, [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]], atol=1e-6)


@pytest.mark.parametrize(("given", "message"), [
    ({"max_detections": 10}, "max_classes_per_detection: expected a number"),
    ({"max_detections": 0, "max_classes_per_detection": 1, "num_classes": 2, "nms_score_threshold": 0.1,
      "nms_iou_threshold": 0.5, "y_scale": 1, "x_scale": 1, "h_scale": 1, "w_scale": 1}, "must be >= 1"),
    ({"max_detections": 1, "max_classes_per_detection": 1, "num_classes": 2, "nms_score_threshold": 0.1,
      "nms_iou_threshold": 1.5, "y_scale": 1, "x_scale": 1, "h_scale": 1, "w_scale": 1}, "nms_iou_threshold"),
], ids=["missing", "zero-limit", "iou-above-1"])
def test_bad_options_are_named(given: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(KernelError, match=message):
        DetectionPostProcess.from_options(given)


def test_options_take_the_op_defaults_and_its_float32_thresholds() -> None:
    found = options(nms_iou_threshold=0.6)
    assert found.detections_per_class == 100 and found.use_regular_nms is False
    assert found.iou_threshold == float(np.float32(0.6)) == 0.6000000238418579


def test_wrong_class_count_is_reported() -> None:
    with pytest.raises(KernelError, match="num_classes = 5 but the scores have 3 columns"):
        run_postprocess(ZERO, SCORES, ANCHORS, options(num_classes=5))


_PARTIAL_SORT = r"""
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <vector>
int main() {
  int n, k;
  while (std::scanf("%d %d", &n, &k) == 2) {
    std::vector<float> v(n);
    for (auto& x : v) std::scanf("%f", &x);
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&v](int i, int j) { return v[i] > v[j]; });
    for (int i = 0; i < k; ++i) std::printf("%d ", idx[i]);
    std::printf("\n");
  }
}
"""


def test_partial_argsort_orders_ties_as_libstdcxx(tmp_path: Path) -> None:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler (g++) to run std::partial_sort, the reference for equal scores")
    source, program = tmp_path / "ps.cc", tmp_path / "ps"
    source.write_text(_PARTIAL_SORT)
    subprocess.run([compiler, "-O2", "-o", str(program), str(source)], check=True)
    rng = np.random.default_rng(5)
    cases = []
    for _ in range(200):
        n = int(rng.integers(2, 100))
        cases.append((n, int(rng.integers(2, n + 1)), rng.integers(0, 5, n).astype(np.float32) / 4))  # many ties
    given = "".join(f"{n} {k} {' '.join(str(float(x)) for x in v)}\n" for n, k, v in cases)
    said = subprocess.run([str(program)], input=given, capture_output=True, text=True, check=True).stdout
    want = [[int(t) for t in line.split()] for line in said.splitlines()]
    assert [partial_argsort(v, k) for _, k, v in cases] == want


def test_partial_argsort_of_one_is_the_first_maximum() -> None:
    assert partial_argsort(np.array([0.1, 0.7, 0.7, 0.2], np.float32), 1) == [1]


Q38 = ("QUANTIZE", "uint8", 0.38, 0)
DQ = ("DEQUANTIZE", "float32", 0.0, 0)


@pytest.mark.parametrize(("values", "steps", "expected"), [
    # 5 / 0.38 = 13.16 -> 13 -> 4.94; 4 / 0.38 = 10.53 -> 11 -> 4.18; 0 stays 0; 200 / 0.38 saturates at 255 -> 96.9
    pytest.param([5.0, 4.0, 0.0, 200.0], (Q38, DQ), [4.94, 4.18, 0.0, 96.9], id="quantize-dequantize"),
    # the graph output left quantized is dequantized: the same real values
    pytest.param([5.0, 4.0, 0.0, 200.0], (Q38,), [4.94, 4.18, 0.0, 96.9], id="quantize"),
    # int8, scale 1/256 (an exact reciprocal), zero point -128: 128.5 steps round half to even, 128 -> 0 -> 0.5;
    # -0.1 saturates at -128 -> 0; 1.0 at 127 -> 255/256
    pytest.param([128.5 / 256, -0.1, 1.0], (("QUANTIZE", "int8", 1 / 256, -128), DQ), [0.5, 0.0, 255 / 256],
                 id="int8-half-saturated"),
    # scale 0.25: 0.5 step -> 0 and 1.5 steps -> 2 (half to even)
    pytest.param([0.125, 0.375], (("QUANTIZE", "uint8", 0.25, 0), DQ), [0.0, 0.5], id="halves-to-even"),
    # CAST to float and RESHAPE change nothing; CAST to int32 truncates
    pytest.param([1.7, -1.7], (("CAST", "float32", 0.0, 0), ("RESHAPE", "float32", 0.0, 0)), [1.7, -1.7], id="moves"),
    pytest.param([1.7, -1.7], (("CAST", "int32", 0.0, 0),), [1.0, -1.0], id="cast-int"),
])
def test_replay_does_what_the_ops_after_the_op_did(values: list[float], steps: tuple, expected: list[float]) -> None:  # type: ignore[type-arg]
    got = replay(np.array(values, np.float32), steps)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("dtype", "scale", "zero_point"), [("uint8", 0.38, 0), ("int8", 1 / 255, -128),
                                                            ("uint8", 0.2, 3)])
def test_replay_is_the_runtimes_quantize_and_dequantize(dtype: str, scale: float, zero_point: int,
                                                        tmp_path: Path) -> None:
    """A model of QUANTIZE then DEQUANTIZE run by the Interpreter (builtin kernels and XNNPACK) on random values
    and on values halfway between two steps (4000 of them: no scalar tail): the same integers, and the same
    real values but for float32 rounding."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_build import quantize_dequantize

    n = 4000
    path = quantize_dequantize(tmp_path / "qdq.tflite", n, dtype, (scale, zero_point))
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-5, 120 * scale / 0.38, n // 2),
                             (np.arange(n // 2) - 40 + 0.5) * scale]).astype(np.float32)
    quantize = (("QUANTIZE", dtype, scale, zero_point),)
    for resolver in ({}, {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}):
        it = Interpreter(model_path=str(path), num_threads=1, **resolver)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], values)
        it.invoke()
        ints, real = (it.get_tensor(d["index"]) for d in it.get_output_details())
        f32 = np.float32
        np.testing.assert_array_equal((ints.astype(f32) - f32(zero_point)) * f32(scale), replay(values, quantize))
        # the builtin kernel computes q * scale - zp * scale: within a float32 rounding of those products
        bound = 2 * np.spacing(np.float32(max(abs(zero_point), 255) * scale))
        np.testing.assert_allclose(real, replay(values, (*quantize, DQ)), rtol=0, atol=bound)
