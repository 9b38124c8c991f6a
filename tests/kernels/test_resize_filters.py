"""The three resize filters a model may ask for ([model] resize_filter), each against an independent
reference: ``antialias`` is Pillow's BILINEAR (bit-exact, tested in test_numpy_resize), ``area`` the mean of
the input each output pixel covers (computed here on a common refined grid, and OpenCV's INTER_AREA when
shrinking), ``bilinear`` OpenCV's INTER_LINEAR (no antialiasing); each kernel set computes what it says it
does and refuses what it does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accel.core.errors import KernelError
from accel.core.frames import Frame, PixelFormat
from accel.kernels import InputSpec, ResizeMode
from accel.kernels.numpy_ref import NumpyKernels, to_rgb
from accel.kernels.resample import FILTERS, resize_bilinear

cv2 = pytest.importorskip("cv2")

SIZES = [(48, 64, 31, 20), (62, 65, 56, 62), (20, 30, 7, 9), (8, 8, 20, 12), (30, 12, 17, 40), (76, 58, 61, 33),
         (9, 27, 9, 5), (5, 5, 5, 11)]


def _exact_area(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Area averaging by definition: every pixel repeated onto the grid both sizes divide (lcm), then each
    output pixel the mean of its block; float, rounded once."""
    in_h, in_w = img.shape[:2]
    gy, gx = math.lcm(in_h, out_h), math.lcm(in_w, out_w)
    fine = np.repeat(np.repeat(img.astype(np.float64), gy // in_h, axis=0), gx // in_w, axis=1)
    blocks = fine.reshape(out_h, gy // out_h, out_w, gx // out_w, img.shape[2]).mean(axis=(1, 3))
    return np.floor(blocks + 0.5).astype(np.uint8)


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


@pytest.mark.parametrize(("in_h", "in_w", "out_h", "out_w"), SIZES, ids=str)
def test_area_is_the_mean_of_what_each_pixel_covers(in_h: int, in_w: int, out_h: int, out_w: int) -> None:
    img = np.random.default_rng([in_h, in_w, out_h]).integers(0, 256, (in_h, in_w, 3), np.uint8)
    got = resize_bilinear(img, out_h, out_w, "area")
    assert _diff(got, _exact_area(img, out_h, out_w)) <= 1  # two passes, each rounded to uint8
    if out_h <= in_h and out_w <= in_w:  # OpenCV's own area path (it interpolates when enlarging)
        assert _diff(got, cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)) <= 1


def test_area_of_a_whole_ratio_is_the_block_mean() -> None:
    img = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, axis=2) * 10  # hand-computed 2x2 means
    assert resize_bilinear(img, 2, 2, "area")[..., 0].tolist() == [[25, 45], [105, 125]]


@pytest.mark.parametrize(("in_h", "in_w", "out_h", "out_w"), SIZES, ids=str)
def test_bilinear_is_opencvs_inter_linear(in_h: int, in_w: int, out_h: int, out_w: int) -> None:
    img = np.random.default_rng([in_w, in_h, out_w]).integers(0, 256, (in_h, in_w, 3), np.uint8)
    want = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    assert _diff(resize_bilinear(img, out_h, out_w, "bilinear"), want) <= 1  # OpenCV's 11-bit coefficients


def test_bilinear_does_not_antialias_and_antialias_does() -> None:
    stripes = np.zeros((8, 64, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes, shrunk 4x: a 2x2 interpolation samples, a wide filter averages
    assert np.ptp(resize_bilinear(stripes, 8, 16, "bilinear")) == 0  # lands between the same two columns
    assert resize_bilinear(stripes, 8, 16, "bilinear")[0, 0, 0] == 128
    assert np.ptp(resize_bilinear(stripes, 8, 16, "antialias")[:, 1:-1]) <= 1
    with pytest.raises(KernelError, match="unknown resize filter 'cubic'"):
        resize_bilinear(stripes, 4, 4, "cubic")


def _frame(h: int = 45, w: int = 70) -> Frame:
    rgb = np.random.default_rng(11).integers(0, 256, (h, w, 3), np.uint8)
    return Frame(rgb, w, h, PixelFormat.RGB, w * 3)


@pytest.mark.parametrize("resize", [ResizeMode.STRETCH, ResizeMode.LETTERBOX])
@pytest.mark.parametrize("filter", FILTERS)
def test_the_numpy_set_feeds_with_the_filter_asked_for(filter: str, resize: ResizeMode) -> None:
    frame, spec = _frame(), InputSpec(32, 24, resize=resize, resize_filter=filter)
    tensor, _ = NumpyKernels().preprocess(frame, spec)
    rgb = to_rgb(frame)
    if resize is ResizeMode.STRETCH:
        assert np.array_equal(tensor[0], resize_bilinear(rgb, 32, 24, filter))
    else:
        from accel.kernels.numpy_ref import letterbox

        assert np.array_equal(tensor[0], letterbox(rgb, 32, 24, 114, filter)[0])
    auto, _ = NumpyKernels().preprocess(frame, InputSpec(32, 24, resize=resize))
    assert np.array_equal(auto[0], NumpyKernels().preprocess(frame, InputSpec(32, 24, resize=resize,
                                                                              resize_filter="antialias"))[0][0])


def test_the_opencv_set_feeds_bilinear_and_area_and_refuses_antialias() -> None:
    from accel.kernels.opencv_ref import OpenCvKernels

    frame = _frame()
    ocv = OpenCvKernels()
    for filter, flag in (("bilinear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA)):
        tensor, _ = ocv.preprocess(frame, InputSpec(32, 24, resize_filter=filter))
        assert np.array_equal(tensor[0], cv2.resize(to_rgb(frame), (24, 32), interpolation=flag))
        near, _ = NumpyKernels().preprocess(frame, InputSpec(32, 24, resize_filter=filter))
        assert _diff(tensor[0], near[0]) <= 1  # the two sets compute the same filter
    auto, _ = ocv.preprocess(frame, InputSpec(32, 24))
    assert np.array_equal(auto, ocv.preprocess(frame, InputSpec(32, 24, resize_filter="bilinear"))[0])
    with pytest.raises(KernelError, match="kernel set 'opencv' resizes with bilinear or area, not antialias"):
        ocv.preprocess(frame, InputSpec(32, 24, resize_filter="antialias"))


@pytest.mark.parametrize("filter", FILTERS)
def test_the_opencl_set_computes_each_filter_as_the_numpy_set(filter: str) -> None:
    pytest.importorskip("pyopencl")
    from accel.kernels.opencl import OpenClKernels

    with OpenClKernels() as ocl:
        available = ocl.probe()
        if not available.ok:
            pytest.skip(available.reason)
        for resize in (ResizeMode.STRETCH, ResizeMode.LETTERBOX):
            spec = InputSpec(33, 50, resize=resize, resize_filter=filter)
            frame = _frame(71, 40)
            assert np.array_equal(ocl.preprocess(frame, spec)[0], NumpyKernels().preprocess(frame, spec)[0])
