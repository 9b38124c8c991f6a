"""The OpenCL kernel set against the numpy reference: exact pre-processing, decoding within 1e-5, identical NMS.

Runs on any OpenCL device (PoCL on the CPU in CI); skipped, with the reason, without pyopencl or a device.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from accel.core.errors import KernelError
from accel.core.frames import Frame, PixelFormat
from accel.kernels import DecodeSpec, DetectionPostProcess, Geometry, InputSpec, ResizeMode
from accel.kernels.decode import decode_raw, nms
from accel.kernels.numpy_ref import NumpyKernels, postprocess, resize_bilinear, to_input_tensor, to_rgb
from accel.kernels.opencl import OpenClKernels, post, runtime

pytestmark = pytest.mark.opencl

BPP = {PixelFormat.RGB: 3, PixelFormat.RGB888: 3, PixelFormat.BGR888: 3, PixelFormat.XRGB8888: 4,
       PixelFormat.XBGR8888: 4}


def _open(zero_copy: bool | None = None) -> OpenClKernels:
    """The default device's kernel set, or a skip saying why there is none."""
    pytest.importorskip("pyopencl", reason=runtime.MISSING_PYOPENCL)
    kernels = OpenClKernels(zero_copy=zero_copy)
    available = kernels.probe()
    if not available.ok:
        pytest.skip(available.reason)
    return kernels


@pytest.fixture(scope="module", params=["mapped", "copied"])
def ocl(request: pytest.FixtureRequest) -> Iterator[OpenClKernels]:
    """Both transfer paths: mapped host-visible buffers and plain reads/writes."""
    with _open(zero_copy=request.param == "mapped") as kernels:
        yield kernels


def random_frame(fmt: PixelFormat, h: int, w: int, pad: int, seed: int = 0) -> Frame:
    """A frame of random bytes (padding and out-of-range YUV included) with stride = row bytes + pad."""
    rng = np.random.default_rng(seed)
    if fmt in BPP:
        stride = w * BPP[fmt] + pad
        data = rng.integers(0, 256, (h, stride), dtype=np.uint8)
        if pad == 0 and seed % 2:
            data = data.reshape(h, w, BPP[fmt])  # unpadded frames may come as (H, W, bpp)
        return Frame(data, w, h, fmt, stride)
    stride = w + pad
    chroma = 2 * ((stride + 1) // 2) * ((h + 1) // 2)
    return Frame(rng.integers(0, 256, (h + -(-chroma // stride), stride), dtype=np.uint8), w, h, fmt, stride)


# --- Pre-processing --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [0, 13], ids=lambda p: f"pad{p}")
@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 5), (37, 54), (120, 160)], ids=lambda s: str(s))
@pytest.mark.parametrize("fmt", list(PixelFormat), ids=lambda f: f.value)
def test_to_rgb_is_exact(ocl: OpenClKernels, fmt: PixelFormat, h: int, w: int, pad: int) -> None:
    frame = random_frame(fmt, h, w, pad, seed=h + pad)
    np.testing.assert_array_equal(ocl.to_rgb(frame), to_rgb(frame))


@pytest.mark.parametrize(
    ("src", "dst"),
    [((1, 1), (5, 3)), ((9, 7), (1, 1)), ((37, 53), (37, 53)), ((37, 53), (20, 53)), ((37, 53), (37, 11)),
     ((480, 640), (320, 320)), ((720, 1280), (361, 640)), ((100, 30), (31, 29)), ((30, 100), (29, 31)),
     ((17, 23), (64, 48)), ((200, 20), (50, 19))],
    ids=lambda s: "x".join(map(str, s)),
)
def test_resize_is_exact(ocl: OpenClKernels, src: tuple[int, int], dst: tuple[int, int]) -> None:
    rgb = np.random.default_rng(sum(src)).integers(0, 256, (*src, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ocl.resize(rgb, *dst), resize_bilinear(rgb, *dst))  # spec: <= 1 LSB; it is 0


QUANT = [
    pytest.param(InputSpec(6, 5), id="uint8-raw"),
    pytest.param(InputSpec(6, 5, "uint8", 1 / 255, 0, (0.0, 1.0)), id="uint8-unit"),
    pytest.param(InputSpec(6, 5, "uint8", 0.0078125, 255, (-1.0, 1.0)), id="uint8-zp255"),
    pytest.param(InputSpec(6, 5, "int8", 1e-6, -128, (0.0, 1.0)), id="int8-scale1e-6-zp-128"),
    pytest.param(InputSpec(6, 5, "int8", 1e3, 127, (-1.0, 1.0)), id="int8-scale1e3-zp127"),
    pytest.param(InputSpec(6, 5, "int8", 0.0, 0, (0.0, 255.0)), id="int8-scale0"),
    pytest.param(InputSpec(6, 5, "float32", norm_range=(0.0, 1.0)), id="float-unit"),
    pytest.param(InputSpec(6, 5, "float32", norm_range=(-1.0, 1.0)), id="float-signed"),
]


@pytest.mark.parametrize("spec", QUANT)
def test_quantize_is_exact(ocl: OpenClKernels, spec: InputSpec) -> None:
    rgb = np.arange(90, dtype=np.uint8).reshape(6, 5, 3) * 2 + np.uint8(75)  # 75..253 and the extremes below
    rgb[0, 0] = (0, 255, 1)
    got = ocl.quantize(rgb, spec)
    assert got.dtype == np.dtype(spec.dtype)
    np.testing.assert_array_equal(got, to_input_tensor(rgb, spec))


SPECS = [
    pytest.param(InputSpec(32, 32), id="stretch-u8"),
    pytest.param(InputSpec(33, 21, "int8", 0.0078125, -1, (-1.0, 1.0), ResizeMode.LETTERBOX, 0), id="lbox-i8"),
    pytest.param(InputSpec(40, 40, "float32", norm_range=(0.0, 1.0), resize=ResizeMode.LETTERBOX), id="lbox-f32"),
    pytest.param(InputSpec(29, 43, resize=ResizeMode.LETTERBOX, fill=255), id="lbox-wide"),
    pytest.param(InputSpec(37, 54, "float32", norm_range=(-1.0, 1.0), resize=ResizeMode.LETTERBOX), id="same-size"),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("fmt", [PixelFormat.YUV420, PixelFormat.NV12, PixelFormat.RGB888, PixelFormat.XRGB8888],
                         ids=lambda f: f.value)
def test_preprocess_matches_numpy(ocl: OpenClKernels, fmt: PixelFormat, spec: InputSpec) -> None:
    frame = random_frame(fmt, 37, 54, 10, seed=3)
    got, geometry = ocl.preprocess(frame, spec)
    want, want_geometry = NumpyKernels().preprocess(frame, spec)
    assert got.dtype == want.dtype and geometry == want_geometry
    np.testing.assert_array_equal(got, want)


def test_preprocess_camera_sizes(ocl: OpenClKernels) -> None:
    for fmt, (h, w) in ((PixelFormat.YUV420, (480, 640)), (PixelFormat.XRGB8888, (720, 1280))):
        frame = random_frame(fmt, h, w, 64)
        for spec in (InputSpec(320, 320), InputSpec(640, 640, resize=ResizeMode.LETTERBOX)):
            np.testing.assert_array_equal(ocl.preprocess(frame, spec)[0], NumpyKernels().preprocess(frame, spec)[0])


@pytest.mark.parametrize(
    ("frame", "spec", "match"),
    [
        pytest.param(Frame(np.zeros((4, 10), np.uint8), 4, 4, PixelFormat.RGB, 10), InputSpec(2, 2), "stride 10",
                     id="stride-short"),
        pytest.param(Frame(np.zeros((3, 8), np.uint8), 8, 4, PixelFormat.YUV420, 8), InputSpec(2, 2), "at least",
                     id="buffer-short"),
        pytest.param(Frame(np.zeros((4, 12), np.uint16), 4, 4, PixelFormat.RGB, 12), InputSpec(2, 2), "uint8",
                     id="dtype"),
        pytest.param(Frame(np.zeros((4, 12), np.uint8), 4, 4, PixelFormat.RGB, 12),
                     InputSpec(2, 3, resize=ResizeMode.LETTERBOX, fill=300), "fill", id="fill"),
        pytest.param(Frame(np.zeros((4, 12), np.uint8), 4, 4, PixelFormat.RGB, 12), InputSpec(2, 2, "int16"),
                     "input dtype", id="input-dtype"),
    ],
)
def test_preprocess_rejects_bad_input(ocl: OpenClKernels, frame: Frame, spec: InputSpec, match: str) -> None:
    with pytest.raises(KernelError, match=match):
        ocl.preprocess(frame, spec)


def test_last_timings_split_transfer_and_kernel(ocl: OpenClKernels) -> None:
    ocl.preprocess(random_frame(PixelFormat.YUV420, 48, 64, 0), InputSpec(16, 16))
    timings = ocl.last_timings()
    assert set(timings) == {"upload_ms", "kernel_ms", "download_ms"}
    assert timings["kernel_ms"] > 0 and all(v >= 0 for v in timings.values())


def test_device_buffers_are_reused_across_frames(ocl: OpenClKernels) -> None:
    frame, spec = random_frame(PixelFormat.YUV420, 48, 64, 0), InputSpec(24, 20)
    ocl.preprocess(frame, spec)
    before = dict(ocl.runtime._buffers)
    ocl.preprocess(frame, spec)
    ocl.preprocess(random_frame(PixelFormat.YUV420, 40, 60, 0), InputSpec(16, 16))  # smaller: fits the same
    assert ocl.runtime._buffers == before and all(ocl.runtime._buffers[k] is v for k, v in before.items())


# --- Programs, device choice, availability -----------------------------------------------------------------------
def test_program_cache_builds_once() -> None:
    with _open() as kernels:
        for size in (8, 9, 10):
            kernels.preprocess(random_frame(PixelFormat.NV12, 20, 30, 2), InputSpec(size, size))
        assert kernels.runtime.builds == 1
        source = "__kernel void twice(__global int *x) { x[0] = 2 * x[0]; }"
        assert kernels.build(source, ["-DA=1"]) is kernels.build(source, ["-DA=1"])
        assert kernels.runtime.builds == 2
        kernels.build(source, ["-DA=2"])  # other options: another program
        assert kernels.runtime.builds == 3


def test_broken_source_raises_kernel_error_with_log(ocl: OpenClKernels) -> None:
    with pytest.raises(KernelError) as info:
        ocl.build("__kernel void f(__global int *x) { x[0] = no_such_name; }", ["-DMARK=7"], "broken.cl")
    assert "no_such_name" in info.value.message and "-DMARK=7" in info.value.message
    assert "broken.cl" in info.value.message


def test_describe_names_the_device(ocl: OpenClKernels) -> None:
    info = ocl.describe()
    assert {"platform", "device", "driver_version", "opencl_version", "unified_memory"} <= set(info)


def test_unknown_device_is_reported_with_what_exists() -> None:
    kernels = _open()
    kernels.close()
    available = OpenClKernels(device="no-such-device-xyz").probe()
    assert not available.ok and "found:" in available.reason


def test_no_device_and_no_pyopencl_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_devices", lambda cl: [])
    assert OpenClKernels().probe().reason == runtime.NO_DEVICE
    monkeypatch.setitem(sys.modules, "pyopencl", None)  # import fails as if not installed
    assert OpenClKernels().probe().reason == runtime.MISSING_PYOPENCL


# --- Post-processing ---------------------------------------------------------------------------------------------
def boxes_with_ties(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random boxes in clusters, exact duplicates, scores on a coarse grid (many ties), a few classes."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (max(n // 6, 1), 2))[rng.integers(0, max(n // 6, 1), n)]
    xy = centres + rng.normal(0, 0.02, (n, 2))
    wh = rng.uniform(0.02, 0.2, (n, 2))
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    boxes[n // 2 : n // 2 + n // 10] = boxes[: n // 10]  # duplicates
    boxes[-1] = boxes[-1, [2, 3, 0, 1]]  # an inverted box: zero area
    return boxes, rng.integers(0, 8, n) / 8.0, rng.integers(0, 3, n)


@pytest.mark.parametrize("agnostic", [False, True], ids=["per-class", "agnostic"])
@pytest.mark.parametrize(("n", "iou", "max_det"), [(1, 0.5, 10), (40, 0.5, 100), (300, 0.3, 100), (2000, 0.6, 50),
                                                   (500, 0.0, 1000), (500, 1.0, 1000)], ids=lambda v: str(v))
def test_nms_keeps_the_same_boxes(ocl: OpenClKernels, n: int, iou: float, max_det: int, agnostic: bool) -> None:
    boxes, scores, classes = boxes_with_ties(n, seed=n)
    want = nms(boxes, scores, classes, iou, max_det, agnostic)
    assert ocl.nms(boxes, scores, classes, iou, max_det, agnostic).tolist() == want.tolist()


def test_nms_iou_equal_to_threshold_keeps_both(ocl: OpenClKernels) -> None:
    boxes = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], float)  # inter 2, union 4: IoU exactly 0.5
    assert ocl.nms(boxes, np.array([0.9, 0.8]), np.array([0, 0]), 0.5, 10).tolist() == [0, 1]


def assert_same_detections(got: Any, want: Any) -> None:
    """Same boxes kept, in the same order: ids and labels equal, floats within 1e-5 relative."""
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.class_ids, want.class_ids)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)
    np.testing.assert_allclose(got.boxes, want.boxes, rtol=1e-5, atol=1e-6)
    assert got.labels == want.labels


def yolo_predictions(version: int, n: int, classes: int, pixels: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = 320.0 if pixels else 1.0
    rows = [rng.uniform(0, scale, n), rng.uniform(0, scale, n), rng.uniform(0.01, 0.3, n) * scale,
            rng.uniform(0.01, 0.3, n) * scale]
    if version == 5:
        rows.append(rng.uniform(0, 1, n))
    cls = np.where(rng.uniform(0, 1, (classes, n)) < 0.02, rng.uniform(0.2, 1, (classes, n)),
                   rng.uniform(0, 0.1, (classes, n)))
    p = np.concatenate([np.stack(rows), cls]).astype(np.float32)
    return p[np.newaxis] if version == 8 else p.T[np.newaxis]


YOLO = [
    pytest.param("yolov8", yolo_predictions(8, 2100, 80, True, 1), {}, id="v8-pixels"),
    pytest.param("yolov8", yolo_predictions(8, 500, 3, False, 2), {}, id="v8-normalized"),
    pytest.param("yolov5", yolo_predictions(5, 1500, 20, True, 3), {}, id="v5-pixels"),
    pytest.param("yolov5", np.random.default_rng(4).integers(0, 256, (1, 800, 12), dtype=np.uint8),
                 {"predictions": (0.004, 7)}, id="v5-uint8"),
    pytest.param("yolov8", np.random.default_rng(5).integers(-128, 128, (1, 9, 700), dtype=np.int8),
                 {"predictions": (1 / 64, -20)}, id="v8-int8"),
]


@pytest.mark.parametrize(("family", "pred", "quant"), YOLO)
def test_yolo_matches_numpy(
    ocl: OpenClKernels, family: str, pred: np.ndarray, quant: dict[str, tuple[float, int]]
) -> None:
    spec = DecodeSpec(family, (320, 320), score_threshold=0.25, iou_threshold=0.45, max_detections=300,
                      labels=("a", "b", "c"), quant=quant)
    geometry = Geometry(1.0, 0.75, 0.0, 0.125)
    want = decode_raw({"predictions": pred}, spec, geometry)
    assert len(want) > 3
    assert_same_detections(ocl.postprocess({"predictions": pred}, spec, geometry), want)


def ssd_outputs(n: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    anchors = np.stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0.05, 0.5, n),
                        rng.uniform(0.05, 0.5, n)], axis=1)
    return rng.normal(0, 1, (1, n, 4)).astype(np.float32), rng.normal(-5, 2.5, (1, n, cols)).astype(np.float32), anchors


@pytest.mark.parametrize("order", ["yxhw", "xywh", "xyxy", "yxyx"])
@pytest.mark.parametrize(("activation", "threshold"), [("sigmoid", 0.3), ("softmax", 0.2), ("none", 1.0)])
def test_ssd_raw_matches_numpy(ocl: OpenClKernels, order: str, activation: str, threshold: float) -> None:
    enc, scores, anchors = ssd_outputs(1917, 91, seed=len(order) + len(activation))
    spec = DecodeSpec("ssd-raw", (300, 300), score_threshold=threshold, max_detections=200, anchors=anchors,
                      box_order=order, score_activation=activation, box_scales=(10.0, 10.0, 5.0, 5.0))
    want = decode_raw({"encodings": enc, "scores": scores}, spec, Geometry())
    assert len(want) > 3
    assert_same_detections(ocl.postprocess({"encodings": enc, "scores": scores}, spec, Geometry()), want)


def test_ssd_raw_quantized_with_anchor_output(ocl: OpenClKernels) -> None:
    rng = np.random.default_rng(9)
    n = 300
    corners = np.sort(rng.uniform(0, 1, (n, 2, 2)), axis=1).reshape(n, 4)[:, [0, 2, 1, 3]]  # ymin xmin ymax xmax
    outputs = {"encodings": rng.integers(0, 256, (1, n, 4), dtype=np.uint8),
               "scores": rng.integers(0, 256, (1, n, 5), dtype=np.uint8),
               "anchors": np.round(corners * 255).astype(np.uint8)}
    spec = DecodeSpec("ssd-raw", (300, 300), score_threshold=0.7, background_class=False,
                      quant={"encodings": (0.05, 128), "scores": (1 / 256, 0), "anchors": (1 / 255, 0)})
    want = decode_raw(outputs, spec, Geometry())
    assert len(want) > 3
    assert_same_detections(ocl.postprocess(outputs, spec, Geometry()), want)


def test_no_candidates_give_empty_detections(ocl: OpenClKernels) -> None:
    spec = DecodeSpec("yolov8", (320, 320), score_threshold=2.0)
    assert len(ocl.postprocess({"predictions": yolo_predictions(8, 100, 4, False, 0)}, spec, Geometry())) == 0


def test_more_candidates_than_the_mask_holds_fall_back_to_host_nms(ocl: OpenClKernels) -> None:
    pred = yolo_predictions(8, post.MASK_LIMIT + 500, 2, False, 6)
    spec = DecodeSpec("yolov8", (320, 320), score_threshold=0.0)
    want = decode_raw({"predictions": pred}, spec, Geometry())
    assert_same_detections(ocl.postprocess({"predictions": pred}, spec, Geometry()), want)


def test_ssd_and_classifier_use_the_numpy_reference(ocl: OpenClKernels) -> None:
    outputs = {"boxes": np.array([[[0.1, 0.2, 0.5, 0.6]]], np.float32), "classes": np.array([[3.0]], np.float32),
               "scores": np.array([[0.9]], np.float32), "count": np.array([1.0], np.float32)}
    spec = DecodeSpec("ssd", (300, 300))
    assert_same_detections(ocl.postprocess(outputs, spec, Geometry()), postprocess(outputs, spec, Geometry()))
    logits = {"logits": np.array([[0.1, 2.0, -1.0]], np.float32)}
    got = ocl.postprocess(logits, DecodeSpec("classifier", (8, 8), top_k=2), Geometry())
    assert got.class_ids.tolist() == [1, 0]


@pytest.mark.parametrize("regular", [False, True], ids=["fast", "regular"])
def test_split_postprocess_detector_decodes_exactly_as_numpy(ocl: OpenClKernels, regular: bool) -> None:
    """A detector split at its post-process op decodes as the op, on the host (the module docstring says so):
    the very detections numpy gives, and no device time reported for it."""
    rng = np.random.default_rng(11)
    _, _, anchors = ssd_outputs(1917, 91, seed=3)
    outputs = {"encodings": rng.integers(150, 230, (1, 1917, 4), dtype=np.uint8),
               "scores": (rng.integers(0, 8, (1, 1917, 91)) * 30).astype(np.uint8)}  # equal scores everywhere
    op = DetectionPostProcess(max_detections=40, max_classes_per_detection=1 if regular else 2, num_classes=90,
                              score_threshold=1e-8, iou_threshold=0.6, box_scales=(10.0, 10.0, 5.0, 5.0),
                              detections_per_class=15, use_regular_nms=regular)
    spec = DecodeSpec("ssd-raw", (300, 300), score_threshold=0.3, anchors=anchors.astype(np.float32),
                      quant={"encodings": (0.08, 191), "scores": (1 / 256, 0)}, postprocess=op)
    want = decode_raw(outputs, spec, Geometry())
    assert len(want) > 10
    got = ocl.postprocess(outputs, spec, Geometry())
    assert got.to_json() == want.to_json()
    assert ocl.last_timings() == {}


def test_single_precision_path_stays_within_1e5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Devices without cl_khr_fp64 (the Pi's GPUs) decode in float: same detections on well-separated data."""
    with _open() as kernels:
        monkeypatch.setattr(kernels.runtime, "fp64", False)
        spec = DecodeSpec("yolov8", (320, 320), score_threshold=0.25, iou_threshold=0.45)
        pred = yolo_predictions(8, 2100, 80, True, 1)
        assert_same_detections(kernels.postprocess({"predictions": pred}, spec, Geometry()),
                               decode_raw({"predictions": pred}, spec, Geometry()))
