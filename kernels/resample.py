"""Bilinear resize and letterbox of the numpy reference, bit-exact with Pillow's ``Image.resize`` BILINEAR.

A triangle filter whose support widens by the reduction factor when downscaling (antialiased), pixel
centres at +0.5, Pillow's 22-bit fixed-point coefficients, two passes with a rounded uint8 intermediate,
in Pillow's pass order.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from accel.errors import KernelError
from accel.kernels import Geometry

_PRECISION_BITS = 22  # Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2


@functools.lru_cache(maxsize=32)
def _bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's fixed-point coefficients (``precompute_coeffs`` + ``normalize_coeffs_8bpc``) as taps:
    input indices (out_size, ksize) and int32 weights (out_size, ksize); unused taps have weight 0."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # bilinear support is 1 input pixel, widened when downscaling
    ksize = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)  # C's (int) truncates
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    pos = xmin[:, None] + taps
    dist = np.abs((pos - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where((dist < 1.0) & (taps < xmax[:, None]), 1.0 - dist, 0.0)
    ww = np.zeros(out_size)
    for t in range(ksize):  # summed in Pillow's order, tap by tap
        ww += w[:, t]
    k = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    fixed = np.trunc(k * (1 << _PRECISION_BITS) + np.where(k < 0, -0.5, 0.5))
    valid = taps < xmax[:, None]
    index = np.where(valid, pos, 0).astype(np.intp)
    weight = np.where(valid, fixed, 0).astype(np.int32)
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def _resample(img: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One pass along ``axis`` (0 rows, 1 columns): a banded sum of a few taps per output pixel in int32
    (weights sum to 2**22, so 255 * 2**22 + 2**21 cannot overflow), then Pillow's
    ``clip8((acc + 2**21) >> 22)``."""
    index, weight = _bilinear_taps(img.shape[axis], out_size)
    shape = [1, 1, 1]
    shape[axis] = out_size
    acc = np.full(tuple(out_size if a == axis else n for a, n in enumerate(img.shape)), 1 << (_PRECISION_BITS - 1),
                  np.int32)
    for t in range(index.shape[1]):
        if weight[:, t].any():
            acc += weight[:, t].reshape(shape) * np.take(img, index[:, t], axis=axis)
    return np.clip(acc >> _PRECISION_BITS, 0, 255).astype(np.uint8)


def resize_bilinear(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) uint8 -> (height, width, C) uint8, bit-exact with Pillow's ``Image.resize`` BILINEAR.

    Each pass rounds to uint8, so the pass order matters. Pillow 13 runs the vertical pass first when the
    height shrinks by more than twice as many pixels as the width does (``2 * (W - width) < H - height``),
    otherwise horizontal first: a rule observed on Pillow 13.0 over thousands of random sizes, not read
    from its source. Older Pillow always goes horizontal first; the two orders differ by at most 1 LSB.
    """
    if rgb.ndim != 3 or rgb.dtype != np.uint8:
        raise KernelError(f"expected an (H, W, C) uint8 image, got {rgb.shape} {rgb.dtype}")
    if height < 1 or width < 1:
        raise KernelError(f"resize target must be at least 1x1, got {width}x{height}")
    in_h, in_w = rgb.shape[:2]
    out = rgb
    if height < in_h and 2 * (in_w - width) < in_h - height:
        out = _resample(out, height, 0)
    if width != in_w:
        out = _resample(out, width, 1)
    if out.shape[0] != height:
        out = _resample(out, height, 0)
    return np.ascontiguousarray(out) if out is not rgb else rgb.copy()


def letterbox_placement(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Where a letterboxed (src_h, src_w) image lands in (height, width): (content_h, content_w, top, left).

    ``scale = min(height / src_h, width / src_w)``; content is ``round_half_up(src_w * scale)`` x
    ``round_half_up(src_h * scale)`` (at least 1), centred with the odd pad pixel on the right/bottom.
    """
    scale = min(height / src_h, width / src_w)
    new_w = min(width, max(1, math.floor(src_w * scale + 0.5)))
    new_h = min(height, max(1, math.floor(src_h * scale + 0.5)))
    return new_h, new_w, (height - new_h) // 2, (width - new_w) // 2


def letterbox(rgb: np.ndarray, height: int, width: int, fill: int) -> tuple[np.ndarray, Geometry]:
    """Fit ``rgb`` into (height, width) keeping its aspect ratio (``letterbox_placement``), ``fill``
    (0..255) elsewhere. Geometry: ``scale_x = content_w / width``, ``offset_x = left / width``, same for y.
    """
    if not 0 <= fill <= 255:
        raise KernelError(f"letterbox fill must be 0..255, got {fill}")
    new_h, new_w, top, left = letterbox_placement(rgb.shape[0], rgb.shape[1], height, width)
    canvas = np.full((height, width, rgb.shape[2]), fill, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resize_bilinear(rgb, new_h, new_w)
    return canvas, Geometry(new_w / width, new_h / height, left / width, top / height)
