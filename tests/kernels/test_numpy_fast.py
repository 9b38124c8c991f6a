"""The fast numpy reference against the slow one it replaced, bit for bit.

``slow_*`` below are the numpy reference's colour conversion, resize, letterbox and pre-processing as they
were before they were made fast (per-pixel chroma gathers, one ``np.take`` per tap), copied here unchanged
apart from names. They were checked against hand-computed BT.601 and Pillow (test_numpy_colour.py,
test_numpy_resize.py); the fast code must give identical arrays for every pixel format, stride and size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from accel.core.frames import Frame, PixelFormat
from accel.kernels import Geometry, InputSpec, ResizeMode, resample
from accel.kernels.colour import to_planes
from accel.kernels.numpy_ref import NumpyKernels, letterbox, resize_bilinear, to_input_tensor, to_rgb

# --- the slow reference, as it was ----------------------------------------------------------------------
_SLOW_YUV_MILLI = np.rint(
    np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]]) * 1000
).astype(np.int32)
_SLOW_PACKED = {
    PixelFormat.RGB: ((0, 1, 2), 3),
    PixelFormat.RGB888: ((2, 1, 0), 3),
    PixelFormat.BGR888: ((0, 1, 2), 3),
    PixelFormat.XRGB8888: ((2, 1, 0), 4),
    PixelFormat.XBGR8888: ((0, 1, 2), 4),
}


def _slow_plane(flat: np.ndarray, offset: int, rows: int, row_stride: int, row_bytes: int) -> np.ndarray:
    return flat[offset : offset + rows * row_stride].reshape(rows, row_stride)[:, :row_bytes]


def slow_to_rgb(frame: Frame) -> np.ndarray:
    data, h, w, stride, fmt = frame.data, frame.height, frame.width, frame.stride, frame.format
    if fmt in _SLOW_PACKED:
        order, bpp = _SLOW_PACKED[fmt]
        if data.ndim == 3 and data.shape == (h, w, bpp):
            pixels = data
        else:
            pixels = _slow_plane(data.reshape(-1), 0, h, stride, w * bpp).reshape(h, w, bpp)
        if order == (0, 1, 2) and bpp == 3:
            return pixels
        return np.ascontiguousarray(pixels[..., list(order)])
    flat = data.reshape(-1)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    half = (stride + 1) // 2
    luma = _slow_plane(flat, 0, h, stride, w)
    if fmt is PixelFormat.YUV420:
        u = _slow_plane(flat, stride * h, ch, half, cw)
        v = _slow_plane(flat, stride * h + half * ch, ch, half, cw)
    else:
        uv = _slow_plane(flat, stride * h, ch, 2 * half, 2 * cw).reshape(ch, cw, 2)
        u, v = uv[..., 0], uv[..., 1]
    yy = (luma.astype(np.int32) - 16) * _SLOW_YUV_MILLI[0, 0]
    cu, cv = u.astype(np.int32) - 128, v.astype(np.int32) - 128
    rows, cols = (np.arange(h) // 2)[:, None], (np.arange(w) // 2)[None, :]
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        chroma = _SLOW_YUV_MILLI[c, 1] * cu + _SLOW_YUV_MILLI[c, 2] * cv
        total = yy + chroma[rows, cols] + 500
        out[..., c] = np.clip(total // 1000, 0, 255)
    return out


def slow_bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    pos = xmin[:, None] + taps
    dist = np.abs((pos - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where((dist < 1.0) & (taps < xmax[:, None]), 1.0 - dist, 0.0)
    ww = np.zeros(out_size)
    for t in range(ksize):
        ww += w[:, t]
    k = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    fixed = np.trunc(k * (1 << 22) + np.where(k < 0, -0.5, 0.5))
    valid = taps < xmax[:, None]
    return np.where(valid, pos, 0).astype(np.intp), np.where(valid, fixed, 0).astype(np.int32)


def slow_resample(img: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    index, weight = slow_bilinear_taps(img.shape[axis], out_size)
    shape = [1, 1, 1]
    shape[axis] = out_size
    acc = np.full(tuple(out_size if a == axis else n for a, n in enumerate(img.shape)), 1 << 21, np.int32)
    for t in range(index.shape[1]):
        if weight[:, t].any():
            acc += weight[:, t].reshape(shape) * np.take(img, index[:, t], axis=axis)
    return np.clip(acc >> 22, 0, 255).astype(np.uint8)


def slow_resize_bilinear(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    in_h, in_w = rgb.shape[:2]
    out = rgb
    if height < in_h and 2 * (in_w - width) < in_h - height:
        out = slow_resample(out, height, 0)
    if width != in_w:
        out = slow_resample(out, width, 1)
    if out.shape[0] != height:
        out = slow_resample(out, height, 0)
    return np.ascontiguousarray(out) if out is not rgb else rgb.copy()


def slow_letterbox(rgb: np.ndarray, height: int, width: int, fill: int) -> tuple[np.ndarray, Geometry]:
    src_h, src_w = rgb.shape[:2]
    scale = min(height / src_h, width / src_w)
    new_w = min(width, max(1, math.floor(src_w * scale + 0.5)))
    new_h = min(height, max(1, math.floor(src_h * scale + 0.5)))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas = np.full((height, width, rgb.shape[2]), fill, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = slow_resize_bilinear(rgb, new_h, new_w)
    return canvas, Geometry(new_w / width, new_h / height, left / width, top / height)


def slow_preprocess(frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
    rgb = slow_to_rgb(frame)
    geometry = Geometry()
    if rgb.shape[:2] != (spec.height, spec.width):
        if spec.resize is ResizeMode.LETTERBOX:
            rgb, geometry = slow_letterbox(rgb, spec.height, spec.width, spec.fill)
        else:
            rgb = slow_resize_bilinear(rgb, spec.height, spec.width)
    return to_input_tensor(rgb, spec), geometry


# --- frames ---------------------------------------------------------------------------------------------
BPP = {fmt: bpp for fmt, (_, bpp) in _SLOW_PACKED.items()}


def random_frame(fmt: PixelFormat, h: int, w: int, pad: int, rng: np.random.Generator) -> Frame:
    """Random bytes everywhere (padding and out-of-range YUV included), stride = row bytes + ``pad``."""
    if fmt in BPP:
        stride = w * BPP[fmt] + pad
        data = rng.integers(0, 256, (h, stride), dtype=np.uint8)
        if pad == 0 and rng.integers(2):
            data = data.reshape(h, w, BPP[fmt])  # unpadded frames may come as (H, W, bpp)
        return Frame(data, w, h, fmt, stride)
    stride = w + pad
    chroma = 2 * ((stride + 1) // 2) * ((h + 1) // 2)
    return Frame(rng.integers(0, 256, (h + -(-chroma // stride), stride), dtype=np.uint8), w, h, fmt, stride)


# (h, w): 1-pixel and odd sizes, both orientations, and the Pi camera's lores size
FRAME_SIZES = [(1, 1), (1, 6), (5, 1), (2, 3), (7, 5), (31, 44), (48, 33), (120, 160), (480, 640)]
FORMATS = list(PixelFormat)


@pytest.mark.parametrize("pad", [0, 1, 14], ids=lambda p: f"pad{p}")
@pytest.mark.parametrize(("h", "w"), FRAME_SIZES, ids=lambda s: str(s))
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
def test_to_rgb_and_planes_equal_the_slow_reference(fmt: PixelFormat, h: int, w: int, pad: int) -> None:
    frame = random_frame(fmt, h, w, pad, np.random.default_rng([h, w, pad]))
    want = slow_to_rgb(frame)
    got = to_rgb(frame)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    assert np.array_equal(to_planes(frame), want.transpose(0, 2, 1))
    assert np.array_equal(to_planes(frame, transposed=True), want.transpose(1, 2, 0))


# (in_h, in_w, out_h, out_w): identity, up, down, odd, one axis, both pass orders and the switch between them
RESIZES = [
    (9, 9, 9, 9), (1, 1, 4, 7), (9, 7, 1, 1), (1, 40, 13, 3), (40, 1, 3, 13), (17, 31, 29, 61), (31, 17, 11, 13),
    (97, 89, 5, 3), (60, 60, 40, 50), (60, 60, 39, 50), (300, 100, 50, 90), (50, 24, 6, 63), (24, 50, 63, 6),
    (500, 224, 224, 224), (224, 500, 224, 224), (480, 640, 320, 320), (480, 640, 640, 640), (480, 640, 240, 320),
    (720, 1280, 320, 320), (720, 1280, 300, 300),
]


@pytest.mark.parametrize("channels", [1, 3, 4], ids=lambda c: f"c{c}")
@pytest.mark.parametrize(("in_h", "in_w", "out_h", "out_w"), RESIZES, ids=lambda v: str(v))
def test_resize_equals_the_slow_reference(in_h: int, in_w: int, out_h: int, out_w: int, channels: int) -> None:
    img = np.random.default_rng([in_h, in_w, out_h, out_w]).integers(0, 256, (in_h, in_w, channels), np.uint8)
    assert np.array_equal(resize_bilinear(img, out_h, out_w), slow_resize_bilinear(img, out_h, out_w))


def test_resize_equals_the_slow_reference_on_random_sizes() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(200):
        in_h, in_w, out_h, out_w = (int(v) for v in rng.integers(1, 90, 4))
        img = rng.integers(0, 256, (in_h, in_w, 3), np.uint8)
        got, want = resize_bilinear(img, out_h, out_w), slow_resize_bilinear(img, out_h, out_w)
        assert np.array_equal(got, want), (in_h, in_w, out_h, out_w)


def test_resize_with_clip8_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    # clip8 is skipped where it cannot change a result (every size in practice): both ways must agree.
    used_taps = resample._used_taps
    monkeypatch.setattr(resample, "_used_taps", lambda n, out, f="antialias": (*used_taps(n, out, f)[:2], True))
    img = np.random.default_rng(8).integers(0, 256, (48, 64, 3), np.uint8)
    assert np.array_equal(resize_bilinear(img, 31, 20), slow_resize_bilinear(img, 31, 20))


@pytest.mark.parametrize(("in_h", "in_w", "out_h", "out_w"), [(480, 640, 320, 320), (33, 100, 64, 64),
                                                              (1, 200, 10, 10), (300, 300, 320, 320)],
                         ids=lambda v: str(v))
def test_letterbox_equals_the_slow_reference(in_h: int, in_w: int, out_h: int, out_w: int) -> None:
    img = np.random.default_rng([in_h, in_w]).integers(0, 256, (in_h, in_w, 3), np.uint8)
    got, got_geometry = letterbox(img, out_h, out_w, fill=114)
    want, want_geometry = slow_letterbox(img, out_h, out_w, fill=114)
    assert np.array_equal(got, want) and got_geometry == want_geometry


SPECS = {
    "uint8": dict(),
    "int8": dict(dtype="int8", scale=1 / 128, zero_point=0, norm_range=(-1.0, 1.0)),
    "float32": dict(dtype="float32", norm_range=(0.0, 1.0)),
    "letterbox": dict(resize=ResizeMode.LETTERBOX, fill=114),
    "letterbox-int8": dict(dtype="int8", scale=1 / 255, zero_point=-128, norm_range=(0.0, 1.0),
                           resize=ResizeMode.LETTERBOX, fill=0),
}
# (frame h, w, input h, w): the camera streams into the usual model sizes, odd and upscaled ones, same size
PREPROCESS_SIZES = [(480, 640, 320, 320), (480, 640, 640, 640), (720, 1280, 320, 320), (33, 47, 300, 300),
                    (47, 33, 17, 29), (20, 30, 20, 30), (64, 64, 5, 200)]


@pytest.mark.parametrize("spec_name", list(SPECS))
@pytest.mark.parametrize(("h", "w", "in_h", "in_w"), PREPROCESS_SIZES, ids=lambda v: str(v))
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
def test_preprocess_equals_the_slow_reference(fmt: PixelFormat, h: int, w: int, in_h: int, in_w: int,
                                              spec_name: str) -> None:
    rng = np.random.default_rng([h, w, in_h, in_w, len(spec_name)])
    frame = random_frame(fmt, h, w, int(rng.integers(0, 3)) * 6, rng)
    spec = InputSpec(in_h, in_w, **SPECS[spec_name])  # type: ignore[arg-type]
    got, got_geometry = NumpyKernels().preprocess(frame, spec)
    want, want_geometry = slow_preprocess(frame, spec)
    assert got.dtype == want.dtype and np.array_equal(got, want) and got_geometry == want_geometry
