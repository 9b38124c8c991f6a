"""Colour conversion of the numpy reference: camera pixel formats -> RGB, and RGB -> I420/NV12.

Expected values come from hand-computed BT.601 cases, from a per-pixel loop in exact rational arithmetic
written here from the formula, and from the byte orders in shared/FACTS.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest

from accel.core.errors import KernelError
from accel.core.frames import Frame, PixelFormat
from accel.kernels.numpy_ref import rgb_to_i420, rgb_to_nv12, to_rgb

# --- hand-computed BT.601 limited range ------------------------------------------------------------------
# R = 1.164(Y-16) + 1.596(V-128); G = 1.164(Y-16) - 0.392(U-128) - 0.813(V-128); B = 1.164(Y-16) + 2.017(U-128)
# A 4x2 frame: chroma block 0 (left 2x2) U=90 V=200, block 1 (right 2x2) U=160 V=100. Worked through:
#   Y=100, blk0: 1.164*84 = 97.776; R = 97.776 + 1.596*72 = 212.688 -> 213
#                G = 97.776 + 0.392*38 - 0.813*72 = 54.136 -> 54; B = 97.776 - 2.017*38 = 21.13 -> 21
#   Y=50, blk1:  39.576; R = 39.576 - 1.596*28 = -5.112 -> 0; G = 39.576 - 0.392*32 + 0.813*28 = 49.796 -> 50
#                B = 39.576 + 2.017*32 = 104.12 -> 104
#   Y=200, blk1: 214.176; R = 169.488 -> 169; G = 224.396 -> 224; B = 278.72 -> 255
#   Y=30, blk0:  16.296; R = 131.208 -> 131; G = -27.344 -> 0; B = -60.35 -> 0
#   Y=235, blk0: 254.916; R = 369.8 -> 255; G = 211.276 -> 211; B = 178.27 -> 178
#   Y=128, blk1: 130.368; R = 85.68 -> 86; G = 140.588 -> 141; B = 194.912 -> 195
#   Y=16, blk1:  0; R = -44.688 -> 0; G = 10.22 -> 10; B = 64.544 -> 65
HAND_Y = [[100, 100, 50, 200], [30, 235, 128, 16]]
HAND_U = [90, 160]
HAND_V = [200, 100]
HAND_RGB = [
    [[213, 54, 21], [213, 54, 21], [0, 50, 104], [169, 224, 255]],
    [[131, 0, 0], [255, 211, 178], [86, 141, 195], [0, 10, 65]],
]


def _i420_hand(stride: int) -> np.ndarray:
    """The 4x2 case laid out by hand: Y rows of ``stride`` bytes, then U and V rows of stride/2 bytes."""
    pad = 0xEE  # garbage in the padding must not leak into the picture
    half = stride // 2
    y_rows = [row + [pad] * (stride - 4) for row in HAND_Y]
    chroma = HAND_U + [pad] * (half - 2) + HAND_V + [pad] * (half - 2)
    return np.array([*y_rows, chroma], np.uint8)


def _nv12_hand(stride: int) -> np.ndarray:
    pad = 0xEE
    y_rows = [row + [pad] * (stride - 4) for row in HAND_Y]
    uv = [HAND_U[0], HAND_V[0], HAND_U[1], HAND_V[1]] + [pad] * (stride - 4)
    return np.array([*y_rows, uv], np.uint8)


@pytest.mark.parametrize("stride", [4, 6, 8], ids=lambda s: f"stride{s}")
@pytest.mark.parametrize(
    ("fmt", "build"),
    [(PixelFormat.YUV420, _i420_hand), (PixelFormat.NV12, _nv12_hand)],
    ids=["i420", "nv12"],
)
def test_hand_computed_bt601_4x2(fmt: PixelFormat, build: Callable[[int], np.ndarray], stride: int) -> None:
    data = build(stride)
    rgb = to_rgb(Frame(data, 4, 2, fmt, stride))
    assert rgb.dtype == np.uint8
    assert rgb.tolist() == HAND_RGB


@pytest.mark.parametrize(
    ("y", "expected"),
    [(16, 0), (235, 255), (128, 130), (81, 76)],  # 1.164*(Y-16): 0, 254.916, 130.368, 75.66
    ids=["black", "white", "mid", "dark"],
)
def test_grey_2x2_neutral_chroma(y: int, expected: int) -> None:
    data = np.array([[y, y], [y, y], [128, 128]], np.uint8)  # Y 2x2, then U=128 and V=128 (1 byte each)
    rgb = to_rgb(Frame(data, 2, 2, PixelFormat.YUV420, 2))
    assert (rgb == expected).all()


def test_1x1_red() -> None:
    # RGB (255, 0, 0) -> Y = 16 + 0.257*255 = 81.535 -> 82, U = 128 - 0.148*255 = 90.26 -> 90,
    # V = 128 + 0.439*255 = 239.945 -> 240; back: R = 76.824 + 178.752 -> 255, G = 0.664 -> 1, B = 0.178 -> 0
    assert rgb_to_i420(np.array([[[255, 0, 0]]], np.uint8)).tolist() == [[82], [90], [240]]
    assert rgb_to_nv12(np.array([[[255, 0, 0]]], np.uint8)).reshape(-1)[:3].tolist() == [82, 90, 240]
    rgb = to_rgb(Frame(np.array([[82], [90], [240]], np.uint8), 1, 1, PixelFormat.YUV420, 1))
    assert rgb.tolist() == [[[255, 1, 0]]]


@pytest.mark.parametrize(
    ("value", "yuv"),
    [(0, (16, 128, 128)), (128, (126, 128, 128)), (255, (235, 128, 128))],  # Y = 16 + 0.859 * v
    ids=["black", "grey", "white"],
)
def test_rgb_to_i420_greys(value: int, yuv: tuple[int, int, int]) -> None:
    buf = rgb_to_i420(np.full((4, 6, 3), value, np.uint8))
    assert buf.shape == (6, 6)  # (H * 3 // 2, stride)
    flat = buf.reshape(-1)
    assert (flat[:24] == yuv[0]).all()
    assert (flat[24:30] == yuv[1]).all() and (flat[30:36] == yuv[2]).all()


# --- an independent per-pixel reference ------------------------------------------------------------------
_COEF = {
    k: Fraction(v)
    for k, v in {"y": "1.164", "rv": "1.596", "gu": "0.392", "gv": "0.813", "bu": "2.017"}.items()
}


def _reference_pixel(y: int, u: int, v: int) -> list[int]:
    luma = _COEF["y"] * (y - 16)
    r = luma + _COEF["rv"] * (v - 128)
    g = luma - _COEF["gu"] * (u - 128) - _COEF["gv"] * (v - 128)
    b = luma + _COEF["bu"] * (u - 128)
    return [min(255, max(0, math.floor(c + Fraction(1, 2)))) for c in (r, g, b)]


def _random_yuv_frame(
    fmt: PixelFormat, h: int, w: int, stride: int, seed: int
) -> tuple[Frame, np.ndarray, np.ndarray, np.ndarray]:
    """Random Y, U, V planes written byte by byte at the offsets the layout documents; padding is random."""
    rng = np.random.default_rng(seed)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    y = rng.integers(0, 256, (h, w))
    u = rng.integers(0, 256, (ch, cw))
    v = rng.integers(0, 256, (ch, cw))
    half = (stride + 1) // 2
    total = stride * h + 2 * half * ch
    rows = -(-total // stride)
    flat = rng.integers(0, 256, rows * stride).astype(np.uint8)
    for r in range(h):
        for c in range(w):
            flat[r * stride + c] = y[r, c]
    base = stride * h
    for r in range(ch):
        for c in range(cw):
            if fmt is PixelFormat.YUV420:
                flat[base + r * half + c] = u[r, c]
                flat[base + half * ch + r * half + c] = v[r, c]
            else:
                flat[base + r * 2 * half + 2 * c] = u[r, c]
                flat[base + r * 2 * half + 2 * c + 1] = v[r, c]
    return Frame(flat.reshape(rows, stride), w, h, fmt, stride), y, u, v


@pytest.mark.parametrize("fmt", [PixelFormat.YUV420, PixelFormat.NV12], ids=["i420", "nv12"])
@pytest.mark.parametrize(
    ("h", "w", "stride"),
    [(4, 6, 6), (4, 6, 8), (6, 10, 16), (5, 7, 8), (5, 7, 7), (3, 1, 1), (1, 1, 2), (2, 2, 2), (7, 9, 12)],
    ids=lambda v: str(v),
)
def test_matches_per_pixel_reference(fmt: PixelFormat, h: int, w: int, stride: int) -> None:
    frame, y, u, v = _random_yuv_frame(fmt, h, w, stride, seed=h * 100 + w * 10 + stride)
    expected = [
        [_reference_pixel(y[r, c], u[r // 2, c // 2], v[r // 2, c // 2]) for c in range(w)] for r in range(h)
    ]
    assert to_rgb(frame).tolist() == expected


# --- packed formats ------------------------------------------------------------------------------------------
# In-memory byte order per pixel (shared/FACTS.md, picamera2 naming): channel indices into (R, G, B, A).
PACKED = {
    PixelFormat.RGB: (0, 1, 2),
    PixelFormat.RGB888: (2, 1, 0),  # B,G,R
    PixelFormat.BGR888: (0, 1, 2),  # R,G,B
    PixelFormat.XRGB8888: (2, 1, 0, 3),  # B,G,R,A
    PixelFormat.XBGR8888: (0, 1, 2, 3),  # R,G,B,A
}


def packed_frame(rgb: np.ndarray, fmt: PixelFormat, pad: int, seed: int = 0) -> Frame:
    """Lay ``rgb`` out in ``fmt``'s byte order with ``pad`` garbage bytes at the end of each row."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    rgba = np.concatenate([rgb, rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], axis=2)
    pixels = rgba[..., list(PACKED[fmt])]
    bpp = pixels.shape[2]
    if pad == 0:
        return Frame(np.ascontiguousarray(pixels), w, h, fmt, w * bpp)
    rows = np.concatenate(
        [pixels.reshape(h, w * bpp), rng.integers(0, 256, (h, pad), dtype=np.uint8)], axis=1
    )
    return Frame(rows, w, h, fmt, w * bpp + pad)


@pytest.mark.parametrize("pad", [0, 5, 64], ids=lambda p: f"pad{p}")
@pytest.mark.parametrize("fmt", list(PACKED), ids=lambda f: f.value)
def test_packed_formats(fmt: PixelFormat, pad: int) -> None:
    rgb = np.random.default_rng(7).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = to_rgb(packed_frame(rgb, fmt, pad))
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


def test_packed_flat_buffer_is_accepted() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    frame = packed_frame(rgb, PixelFormat.RGB888, pad=3)
    np.testing.assert_array_equal(
        to_rgb(Frame(frame.data.reshape(-1), 3, 2, frame.format, frame.stride)), rgb
    )


# --- round trip ------------------------------------------------------------------------------------------------
def smooth_image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = 60 + 100 * xx / max(w - 1, 1)
    g = 50 + 120 * yy / max(h - 1, 1)
    b = 128 + 40 * np.sin(xx / 15.0) * np.cos(yy / 11.0)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


@pytest.mark.parametrize(
    ("fmt", "convert"),
    [(PixelFormat.YUV420, rgb_to_i420), (PixelFormat.NV12, rgb_to_nv12)],
    ids=["i420", "nv12"],
)
@pytest.mark.parametrize(
    ("h", "w", "stride"), [(96, 128, 128), (96, 128, 160), (61, 85, 85), (61, 85, 96)], ids=str
)
def test_round_trip_on_smooth_images(
    fmt: PixelFormat, convert: Callable[[np.ndarray, int], np.ndarray], h: int, w: int, stride: int
) -> None:
    rgb = smooth_image(h, w)
    buf = convert(rgb, stride)
    assert buf.shape[1] == stride
    back = to_rgb(Frame(buf, w, h, fmt, stride))
    # Neighbours differ by at most 4 LSB here; 4:2:0 averaging plus two roundings stay within that.
    assert np.abs(back.astype(int) - rgb).max() <= 4


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (Frame(np.zeros((6, 4), np.uint8), 6, 4, PixelFormat.YUV420, 4), "stride 4 is less than width 6"),
        (Frame(np.zeros((5, 4), np.uint8), 4, 4, PixelFormat.NV12, 4), "at least 24 bytes"),
        (Frame(np.zeros((2, 8), np.uint8), 3, 2, PixelFormat.RGB888, 8), "stride 8 is less than width * 3"),
        (Frame(np.zeros((6, 4), np.float32), 4, 4, PixelFormat.YUV420, 4), "expected uint8"),
    ],
    ids=["stride-too-small", "buffer-too-short", "packed-stride-too-small", "not-uint8"],
)
def test_bad_frames_raise_kernel_error(frame: Frame, message: str) -> None:
    with pytest.raises(KernelError, match=message.replace("*", r"\*")):
        to_rgb(frame)
