"""The OpenCV baseline: exact on packed formats, within a few LSB of the numpy reference elsewhere."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from accel.core.frames import Frame, PixelFormat
from accel.kernels import InputSpec, ResizeMode
from accel.kernels.numpy_ref import NumpyKernels, rgb_to_i420, rgb_to_nv12, to_rgb
from accel.kernels.opencv_ref import OpenCvKernels


@pytest.fixture
def cv2() -> ModuleType:
    return pytest.importorskip("cv2", reason="OpenCV is not installed: pip install 'accel[opencv]'")


def smooth_image(h: int, w: int) -> np.ndarray:
    """Gentle gradients, every value well inside 16..235 after conversion (OpenCV clamps Y < 16 first)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = 60 + 100 * xx / (w - 1)
    g = 50 + 120 * yy / (h - 1)
    b = 128 + 40 * np.sin(xx / 15.0) * np.cos(yy / 11.0)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


# In-memory byte order per pixel (shared/FACTS.md): indices into (R, G, B, A).
PACKED = {
    PixelFormat.RGB: (0, 1, 2),
    PixelFormat.RGB888: (2, 1, 0),
    PixelFormat.BGR888: (0, 1, 2),
    PixelFormat.XRGB8888: (2, 1, 0, 3),
    PixelFormat.XBGR8888: (0, 1, 2, 3),
}


def packed_frame(rgb: np.ndarray, fmt: PixelFormat, pad: int) -> Frame:
    rng = np.random.default_rng(5)
    h, w = rgb.shape[:2]
    pixels = np.concatenate([rgb, rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], axis=2)[
        ..., list(PACKED[fmt])
    ]
    bpp = pixels.shape[2]
    rows = np.concatenate(
        [pixels.reshape(h, w * bpp), rng.integers(0, 256, (h, pad), dtype=np.uint8)], axis=1
    )
    return Frame(rows, w, h, fmt, w * bpp + pad)


@pytest.mark.parametrize("pad", [0, 16], ids=lambda p: f"pad{p}")
@pytest.mark.parametrize("fmt", list(PACKED), ids=lambda f: f.value)
def test_packed_conversion_is_exact(cv2: ModuleType, fmt: PixelFormat, pad: int) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    np.testing.assert_array_equal(OpenCvKernels().to_rgb(packed_frame(rgb, fmt, pad)), rgb)


def _yuv_frame(convert: Callable[[np.ndarray, int], np.ndarray], fmt: PixelFormat, stride: int) -> Frame:
    return Frame(convert(smooth_image(120, 160), stride), 160, 120, fmt, stride)


YUV = [
    pytest.param(rgb_to_i420, PixelFormat.YUV420, 160, id="i420"),
    pytest.param(rgb_to_i420, PixelFormat.YUV420, 192, id="i420-stride192"),
    pytest.param(rgb_to_nv12, PixelFormat.NV12, 160, id="nv12"),
    pytest.param(rgb_to_nv12, PixelFormat.NV12, 192, id="nv12-stride192"),
]


@pytest.mark.parametrize(("convert", "fmt", "stride"), YUV)
def test_yuv_conversion_close_to_reference(
    cv2: ModuleType, convert: Callable[[np.ndarray, int], np.ndarray], fmt: PixelFormat, stride: int
) -> None:
    frame = _yuv_frame(convert, fmt, stride)
    reference = to_rgb(frame)
    # OpenCV rounds its own 20-bit fixed-point coefficients: at most 1 LSB away on in-range values.
    assert np.abs(OpenCvKernels().to_rgb(frame).astype(int) - reference).max() <= 1


@pytest.mark.parametrize("mode", list(ResizeMode), ids=lambda m: m.value)
@pytest.mark.parametrize(("convert", "fmt", "stride"), YUV)
def test_preprocess_upscale_agrees_with_reference(
    cv2: ModuleType,
    convert: Callable[[np.ndarray, int], np.ndarray],
    fmt: PixelFormat,
    stride: int,
    mode: ResizeMode,
) -> None:
    frame = _yuv_frame(convert, fmt, stride)
    spec = InputSpec(300, 300, resize=mode, fill=114)
    ours, ours_geometry = OpenCvKernels().preprocess(frame, spec)
    ref, ref_geometry = NumpyKernels().preprocess(frame, spec)
    assert ours.shape == ref.shape == (1, 300, 300, 3) and ours.dtype == ref.dtype == np.uint8
    assert ours_geometry == ref_geometry
    assert np.abs(ours.astype(int) - ref).max() <= 3


def test_preprocess_quantized_float_input(cv2: ModuleType) -> None:
    frame = _yuv_frame(rgb_to_i420, PixelFormat.YUV420, 160)
    spec = InputSpec(240, 320, "float32", 0.0, 0, (-1.0, 1.0))
    ours, _ = OpenCvKernels().preprocess(frame, spec)
    ref, _ = NumpyKernels().preprocess(frame, spec)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 3 * 2 / 255 + 1e-6


def test_probe_reports_opencv(cv2: ModuleType) -> None:
    availability = OpenCvKernels().probe()
    assert availability.ok and cv2.__version__ in availability.reason


def test_probe_without_opencv_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    availability = OpenCvKernels().probe()
    assert not availability.ok
    assert availability.reason == "OpenCV is not installed: pip install 'accel[opencv]'"


def test_module_import_does_not_import_cv2() -> None:
    code = "import sys, accel.kernels.opencv_ref; assert 'cv2' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
