"""Image layouts of the numpy reference: interleaved (H, W, C) pixels and planes (rows, C, columns).

The bilinear passes of ``accel.kernels.resample`` gather whole rows along the first axis of planes, (H, C, W)
for a vertical pass, transposed (W, C, H) for a horizontal one. Moving between the layouts is copying only,
done channel by channel (a copy that walks 3- or 4-byte pixels one at a time is several times slower) and
transposed in blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BLOCK = 32  # source rows per block in ``transpose_into``


def transpose_into(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src.T`` for 2-D views, copied ``_BLOCK`` source rows at a time.

    A plain transposed copy walks one side a whole row apart per element; in blocks both sides stay in
    cache, which is several times faster on camera-sized planes."""
    for start in range(0, src.shape[0], _BLOCK):
        dst[:, start : start + _BLOCK] = src[start : start + _BLOCK].T


def planes_from_pixels(pixels: np.ndarray, channels: Sequence[int], transposed: bool) -> np.ndarray:
    """(H, W, bpp) uint8 pixels -> (H, C, W) planes of the given channel indices, or (W, C, H)."""
    h, w = pixels.shape[:2]
    planes = np.empty((w, len(channels), h) if transposed else (h, len(channels), w), np.uint8)
    for c, k in enumerate(channels):
        if transposed:
            transpose_into(planes[:, c], pixels[..., k])
        else:
            planes[:, c] = pixels[..., k]
    return planes


def swap_axes(planes: np.ndarray) -> np.ndarray:
    """(A, C, B) planes -> (B, C, A): a horizontal pass's layout to a vertical one's, or back."""
    out = np.empty(planes.shape[::-1], planes.dtype)
    for c in range(planes.shape[1]):
        transpose_into(out[:, c], planes[:, c])
    return out


def interleave_into(dst: np.ndarray, planes: np.ndarray, transposed: bool) -> None:
    """Write planes (H, C, W), or (W, C, H) when ``transposed``, into the (H, W, C) view ``dst``."""
    for c in range(planes.shape[1]):
        if transposed:
            transpose_into(dst[..., c], planes[:, c])
        else:
            dst[..., c] = planes[:, c]
