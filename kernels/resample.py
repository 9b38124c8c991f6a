"""Resize and letterbox of the numpy reference, bit-exact with Pillow's ``Image.resize``.

Three filters (``FILTERS``), each as Pillow's ``precompute_coeffs`` computes its taps: ``antialias`` is
Pillow's BILINEAR, a triangle whose support widens by the reduction factor when downscaling; ``area`` is
OpenCV's INTER_AREA: each output pixel the mean of the input it covers, each input pixel weighted by the
share of it inside (Pillow's BOX counts whole pixels instead, and differs for ratios that are not whole
numbers); ``bilinear`` keeps the triangle one input pixel wide whatever the reduction (the 2x2 interpolation
of OpenCV's INTER_LINEAR and TensorFlow's ``resize_bilinear(half_pixel_centers=True)``, no antialiasing).
Pixel centres at +0.5, Pillow's 22-bit fixed-point coefficients, two passes with a rounded uint8
intermediate, in Pillow's pass order. Each pass runs along the first axis of a planar image, (rows, channel,
columns): whole rows are gathered and weighted, so an image is transposed between a horizontal and a
vertical pass.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from accel.core.errors import KernelError
from accel.kernels import Geometry
from accel.kernels.planes import interleave_into, planes_from_pixels, swap_axes

PRECISION_BITS = 22  # Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2
FILTERS = ("antialias", "bilinear", "area")  # the first is the numpy set's own


@functools.lru_cache(maxsize=64)
def bilinear_taps(in_size: int, out_size: int, filter: str = "antialias") -> tuple[np.ndarray, np.ndarray]:
    """Pillow's fixed-point coefficients (``precompute_coeffs`` + ``normalize_coeffs_8bpc``) for ``filter``
    (``FILTERS``) as taps: input indices (out_size, ksize) and int32 weights (out_size, ksize); unused taps
    have weight 0."""
    if filter not in FILTERS:
        raise KernelError(f"unknown resize filter {filter!r}; valid: {', '.join(FILTERS)}")
    scale = in_size / out_size
    if filter == "area":
        return _area_taps(in_size, out_size)
    filterscale = 1.0 if filter == "bilinear" else max(scale, 1.0)  # widened when downscaling, but bilinear
    support = filterscale  # the triangle's support: 1 input pixel, widened when downscaling (antialias)
    ksize = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)  # C's (int) truncates
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    pos = xmin[:, None] + taps
    dist = np.abs((pos - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where((dist < 1.0) & (taps < xmax[:, None]), 1.0 - dist, 0.0)
    return _fixed(w, pos, taps < xmax[:, None])


def _area_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Coverage weights: output ``o`` spans input ``[o * s, (o + 1) * s)`` (``s = in / out``); input pixel
    ``i`` weighs the length of ``[i, i + 1)`` inside that span / ``s``."""
    scale = in_size / out_size
    start = np.arange(out_size) * scale
    end = np.minimum(start + scale, in_size)
    first = np.floor(start).astype(np.int64)
    ksize = int(np.max(np.ceil(end).astype(np.int64) - first))
    pos = first[:, None] + np.arange(ksize)
    cover = np.minimum(pos + 1, end[:, None]) - np.maximum(pos, start[:, None])
    valid = (cover > 1e-12) & (pos < in_size)
    return _fixed(np.where(valid, cover, 0.0), pos, valid)


def _fixed(w: np.ndarray, pos: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out, ksize) normalized per output and made Pillow's fixed point, with their indices."""
    out_size, ksize = w.shape
    ww = np.zeros(out_size)
    for t in range(ksize):  # summed in Pillow's order, tap by tap
        ww += w[:, t]
    k = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    fixed = np.trunc(k * (1 << PRECISION_BITS) + np.where(k < 0, -0.5, 0.5))
    index = np.where(valid, pos, 0).astype(np.intp)
    weight = np.where(valid, fixed, 0).astype(np.int32)
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


@functools.lru_cache(maxsize=64)
def _used_taps(in_size: int, out_size: int, filter: str = "antialias") -> tuple[np.ndarray, np.ndarray, bool]:
    """``bilinear_taps`` without the tap columns whose weight is 0 for every output (they add nothing),
    and whether Pillow's ``clip8`` can change a result: never, unless the weights (all >= 0) sum to so much
    more than 2**22 that ``(255 * sum + 2**21) >> 22`` passes 255."""
    index, weight = bilinear_taps(in_size, out_size, filter)
    used = weight.any(axis=0)
    index, weight = np.ascontiguousarray(index[:, used]), np.ascontiguousarray(weight[:, used])
    index.setflags(write=False)
    weight.setflags(write=False)
    most = int(weight.sum(axis=1, dtype=np.int64).max())
    return index, weight, (255 * most + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS > 255


def _resample_rows(planes: np.ndarray, out_size: int, filter: str = "antialias") -> np.ndarray:
    """One pass along axis 0 of (N, C, M) uint8 planes -> (out_size, C, M) uint8.

    Output row ``o`` is ``clip8((sum_t weight[o, t] * row[index[o, t]] + 2**21) >> 22)``, Pillow's
    rounding, summed exactly in int32 (weights sum to about 2**22 and are >= 0, so the sum stays below
    2**31). The taps' rows are gathered at once and ``einsum`` weights and sums them."""
    index, weight, clip = _used_taps(planes.shape[0], out_size, filter)
    rows = planes.reshape(planes.shape[0], -1)
    acc = np.einsum("ot,otm->om", weight, rows[index])
    acc += 1 << (PRECISION_BITS - 1)
    out = np.empty((out_size, *planes.shape[1:]), np.uint8)
    if clip:
        acc >>= PRECISION_BITS
        np.clip(acc, 0, 255, out=out.reshape(out_size, -1), casting="unsafe")
    else:
        np.right_shift(acc, PRECISION_BITS, out=out.reshape(out_size, -1), casting="unsafe")
    return out


def pass_order(in_h: int, in_w: int, height: int, width: int) -> str:
    """The bilinear passes Pillow makes, in order: ``"v"`` (vertical) and ``"h"`` (horizontal), or none.

    Each pass rounds to uint8, so the order matters. Pillow 13 runs the vertical pass first when the height
    shrinks by more than twice as many pixels as the width does (``2 * (W - width) < H - height``),
    otherwise horizontal first: a rule observed on Pillow 13.0 over thousands of random sizes, not read
    from its source. Older Pillow always goes horizontal first; the two orders differ by at most 1 LSB.
    """
    if height < in_h and 2 * (in_w - width) < in_h - height:
        return "vh" if width != in_w else "v"
    return ("h" if width != in_w else "") + ("v" if height != in_h else "")


def resize_planes(planes: np.ndarray, transposed: bool, height: int, width: int,
                  filter: str = "antialias") -> tuple[np.ndarray, bool]:
    """``resize_bilinear`` of planes from ``colour.to_planes``: (H, C, W), or (W, C, H) when ``transposed``.

    Returns the resized planes and whether they are transposed. Planes that start in the first pass's
    layout (transposed when ``pass_order`` begins with ``"h"``) are transposed at most once, between the
    passes."""
    in_h, in_w = (planes.shape[2], planes.shape[0]) if transposed else (planes.shape[0], planes.shape[2])
    for direction in pass_order(in_h, in_w, height, width):
        if transposed != (direction == "h"):
            planes, transposed = swap_axes(planes), not transposed
        planes = _resample_rows(planes, width if transposed else height, filter)
    return planes, transposed


def resize_bilinear(rgb: np.ndarray, height: int, width: int, filter: str = "antialias") -> np.ndarray:
    """(H, W, C) uint8 -> (height, width, C) uint8, bit-exact with Pillow's ``Image.resize`` BILINEAR
    (``filter`` antialias; BOX for area; see the module docstring for bilinear).

    Separable passes in ``pass_order``, each rounding to uint8 as Pillow does."""
    if rgb.ndim != 3 or rgb.dtype != np.uint8:
        raise KernelError(f"expected an (H, W, C) uint8 image, got {rgb.shape} {rgb.dtype}")
    if height < 1 or width < 1:
        raise KernelError(f"resize target must be at least 1x1, got {width}x{height}")
    in_h, in_w, channels = rgb.shape
    transposed = pass_order(in_h, in_w, height, width).startswith("h")
    planes = planes_from_pixels(rgb, range(channels), transposed)
    planes, transposed = resize_planes(planes, transposed, height, width, filter)
    out = np.empty((height, width, channels), np.uint8)
    interleave_into(out, planes, transposed)
    return out


def letterbox_placement(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Where a letterboxed (src_h, src_w) image lands in (height, width): (content_h, content_w, top, left).

    ``scale = min(height / src_h, width / src_w)``; content is ``round_half_up(src_w * scale)`` x
    ``round_half_up(src_h * scale)`` (at least 1), centred with the odd pad pixel on the right/bottom.
    """
    scale = min(height / src_h, width / src_w)
    new_w = min(width, max(1, math.floor(src_w * scale + 0.5)))
    new_h = min(height, max(1, math.floor(src_h * scale + 0.5)))
    return new_h, new_w, (height - new_h) // 2, (width - new_w) // 2


def letterbox_canvas(
    src_h: int, src_w: int, height: int, width: int, fill: int, channels: int = 3
) -> tuple[np.ndarray, np.ndarray, Geometry]:
    """A (height, width, channels) uint8 canvas of ``fill`` (0..255), the view of it where the resized
    (src_h, src_w) content goes (``letterbox_placement``) and the ``Geometry``: ``scale_x = content_w /
    width``, ``offset_x = left / width``, same for y."""
    if not 0 <= fill <= 255:
        raise KernelError(f"letterbox fill must be 0..255, got {fill}")
    new_h, new_w, top, left = letterbox_placement(src_h, src_w, height, width)
    canvas = np.full((height, width, channels), fill, np.uint8)
    geometry = Geometry(new_w / width, new_h / height, left / width, top / height)
    return canvas, canvas[top : top + new_h, left : left + new_w], geometry


def letterbox(rgb: np.ndarray, height: int, width: int, fill: int,
              filter: str = "antialias") -> tuple[np.ndarray, Geometry]:
    """Fit ``rgb`` into (height, width) keeping its aspect ratio, ``fill`` elsewhere: ``letterbox_canvas``
    with the content ``resize_bilinear``."""
    canvas, content, geometry = letterbox_canvas(rgb.shape[0], rgb.shape[1], height, width, fill, rgb.shape[2])
    content[...] = resize_bilinear(rgb, content.shape[0], content.shape[1], filter)
    return canvas, geometry
