"""Colour conversion of the numpy reference: every camera ``PixelFormat`` -> RGB, and RGB -> I420/NV12.

BT.601 limited ("video") range, the matrices ``YUV_TO_RGB`` / ``RGB_TO_YUV``. YUV -> RGB is computed in
integers with the coefficients x 1000 and rounded half up, so it has no float ambiguity at all.
"""

from __future__ import annotations

import numpy as np

from accel.errors import KernelError
from accel.frames import Frame, PixelFormat

#: BT.601 limited range. Rows R, G, B; columns (Y - 16), (U - 128), (V - 128).
YUV_TO_RGB = np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]])
#: Rows Y, U, V; columns R, G, B; add ``YUV_OFFSETS`` afterwards.
RGB_TO_YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]])
YUV_OFFSETS = (16, 128, 128)
_YUV_TO_RGB_MILLI = np.rint(YUV_TO_RGB * 1000).astype(np.int32)
_RGB_TO_YUV_MILLI = np.rint(RGB_TO_YUV * 1000).astype(np.int32)
for _m in (YUV_TO_RGB, RGB_TO_YUV):
    _m.setflags(write=False)

# Channel indices of R, G, B and bytes per pixel, from the in-memory byte orders in accel.frames.
_PACKED = {
    PixelFormat.RGB: ((0, 1, 2), 3),
    PixelFormat.RGB888: ((2, 1, 0), 3),
    PixelFormat.BGR888: ((0, 1, 2), 3),
    PixelFormat.XRGB8888: ((2, 1, 0), 4),
    PixelFormat.XBGR8888: ((0, 1, 2), 4),
}

def _plane(
    flat: np.ndarray, offset: int, rows: int, row_stride: int, row_bytes: int, what: str
) -> np.ndarray:
    """A (rows, row_bytes) view of a plane starting at byte ``offset`` with ``row_stride`` bytes per row."""
    end = offset + rows * row_stride
    if flat.size < end:
        raise KernelError(f"{what}: expected a buffer of at least {end} bytes, got {flat.size}")
    return flat[offset:end].reshape(rows, row_stride)[:, :row_bytes]


def to_rgb(frame: Frame) -> np.ndarray:
    """Any ``PixelFormat`` -> (H, W, 3) uint8 RGB, ignoring row padding (may be a view of ``frame.data``).

    YUV: ``[R, G, B] = round_half_up(YUV_TO_RGB @ [Y - 16, U - 128, V - 128])`` clipped to 0..255, computed
    exactly in integers (coefficients x 1000). Chroma is upsampled by nearest: pixel (y, x) uses chroma
    sample (y // 2, x // 2). Chroma planes are ceil(W/2) x ceil(H/2) samples; I420's U and V rows are
    ``(stride + 1) // 2`` bytes apart (``stride / 2`` for the even strides cameras use: rounding up only
    matters for an unpadded odd width), NV12's interleaved UV rows twice that.
    """
    data, h, w, stride, fmt = frame.data, frame.height, frame.width, frame.stride, frame.format
    if data.dtype != np.uint8:
        raise KernelError(f"frame {frame.index}: expected uint8 pixel data, got {data.dtype}")
    if fmt in _PACKED:
        order, bpp = _PACKED[fmt]
        if data.ndim == 3 and data.shape == (h, w, bpp):
            pixels = data
        else:
            if stride < w * bpp:
                raise KernelError(
                    f"{fmt.value} frame: stride {stride} is less than width * {bpp} = {w * bpp}"
                )
            pixels = _plane(data.reshape(-1), 0, h, stride, w * bpp, fmt.value).reshape(h, w, bpp)
        if order == (0, 1, 2) and bpp == 3:
            return pixels
        return np.ascontiguousarray(pixels[..., list(order)])
    if stride < w:
        raise KernelError(f"{fmt.value} frame: stride {stride} is less than width {w}")
    flat = data.reshape(-1)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    half = (stride + 1) // 2  # I420 chroma row stride; NV12's interleaved UV rows are twice that
    luma = _plane(flat, 0, h, stride, w, fmt.value)
    if fmt is PixelFormat.YUV420:
        u = _plane(flat, stride * h, ch, half, cw, fmt.value)
        v = _plane(flat, stride * h + half * ch, ch, half, cw, fmt.value)
    elif fmt is PixelFormat.NV12:
        uv = _plane(flat, stride * h, ch, 2 * half, 2 * cw, fmt.value).reshape(ch, cw, 2)
        u, v = uv[..., 0], uv[..., 1]
    else:  # pragma: no cover - every PixelFormat is handled above
        raise KernelError(f"unsupported pixel format {fmt.value}")
    yy = (luma.astype(np.int32) - 16) * _YUV_TO_RGB_MILLI[0, 0]
    cu, cv = u.astype(np.int32) - 128, v.astype(np.int32) - 128
    rows, cols = (np.arange(h) // 2)[:, None], (np.arange(w) // 2)[None, :]
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        chroma = _YUV_TO_RGB_MILLI[c, 1] * cu + _YUV_TO_RGB_MILLI[c, 2] * cv  # at chroma resolution
        total = yy + chroma[rows, cols] + 500  # floor((x + 500) / 1000) = round half up of x / 1000
        out[..., c] = np.clip(total // 1000, 0, 255)
    return out


def _rgb_to_yuv_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y (H, W) and 2x2-averaged U, V (ceil(H/2), ceil(W/2)) uint8 planes, rounded half up.

    Exact integer arithmetic: ``RGB_TO_YUV`` has three decimals, so values are computed in thousandths."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise KernelError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    m = _RGB_TO_YUV_MILLI
    y = (m[0, 0] * r + m[0, 1] * g + m[0, 2] * b + (YUV_OFFSETS[0] * 1000 + 500)) // 1000
    h, w = rgb.shape[:2]
    planes = [np.clip(y, 0, 255).astype(np.uint8)]
    for row, offset in ((m[1], YUV_OFFSETS[1]), (m[2], YUV_OFFSETS[2])):
        c = row[0] * r + row[1] * g + row[2] * b
        # Edge replication makes a half block at an odd edge the average of the pixels it has.
        c = np.pad(c, ((0, h % 2), (0, w % 2)), mode="edge")
        block = c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]  # 4000 x the mean
        planes.append(np.clip((block + offset * 4000 + 2000) // 4000, 0, 255).astype(np.uint8))
    return planes[0], planes[1], planes[2]


def _yuv_buffer(rgb: np.ndarray, stride: int | None, nv12: bool) -> np.ndarray:
    y, u, v = _rgb_to_yuv_planes(rgb)
    (h, w), (ch, cw) = y.shape, u.shape
    stride = w if stride is None else stride
    if stride < w:
        raise KernelError(f"stride {stride} is less than width {w}")
    half = (stride + 1) // 2
    chroma_bytes = 2 * half * ch  # U then V planes, or one plane of interleaved rows twice as long
    buf = np.zeros((h + -(-chroma_bytes // stride), stride), np.uint8)  # (H * 3 // 2, stride) when even
    flat = buf.reshape(-1)
    flat[: h * stride].reshape(h, stride)[:, :w] = y
    if nv12:
        uv = flat[h * stride : h * stride + chroma_bytes].reshape(ch, 2 * half)
        uv[:, 0 : 2 * cw : 2], uv[:, 1 : 2 * cw : 2] = u, v
    else:
        for i, plane in enumerate((u, v)):
            start = h * stride + i * half * ch
            flat[start : start + half * ch].reshape(ch, half)[:, :cw] = plane
    return buf


def rgb_to_i420(rgb: np.ndarray, stride: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> I420 buffer (rows, stride), the layout ``to_rgb`` reads for ``YUV420``.

    BT.601 limited range (``RGB_TO_YUV``, rounded half up), chroma averaged over each 2x2 block (over the
    pixels there are at odd edges). ``stride`` defaults to W; padding bytes are zero. Rows are H * 3 // 2
    for even sizes, enough for every plane otherwise.
    """
    return _yuv_buffer(rgb, stride, nv12=False)


def rgb_to_nv12(rgb: np.ndarray, stride: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> NV12 buffer (rows, stride): the Y plane, then interleaved U,V rows."""
    return _yuv_buffer(rgb, stride, nv12=True)
