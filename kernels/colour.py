"""Colour conversion of the numpy reference: every camera ``PixelFormat`` -> RGB, and RGB -> I420/NV12.

BT.601 limited ("video") range, the matrices ``YUV_TO_RGB`` / ``RGB_TO_YUV``. YUV -> RGB is computed in
integers with the coefficients x 1000 and rounded half up, so it has no float ambiguity at all.
``to_rgb`` gives the usual (H, W, 3) image; ``to_planes`` gives the same pixels as three planes, (H, 3, W)
or transposed (W, 3, H), the layouts the bilinear passes of ``accel.kernels.resample`` work in
(``accel.kernels.planes``).
"""

from __future__ import annotations

import numpy as np

from accel.core.errors import KernelError
from accel.core.frames import Frame, PixelFormat
from accel.kernels.planes import planes_from_pixels, transpose_into

#: BT.601 limited range. Rows R, G, B; columns (Y - 16), (U - 128), (V - 128).
YUV_TO_RGB = np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]])
#: Rows Y, U, V; columns R, G, B; add ``YUV_OFFSETS`` afterwards.
RGB_TO_YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]])
YUV_OFFSETS = (16, 128, 128)
YUV_TO_RGB_MILLI = np.rint(YUV_TO_RGB * 1000).astype(np.int32)
_RGB_TO_YUV_MILLI = np.rint(RGB_TO_YUV * 1000).astype(np.int32)
for _m in (YUV_TO_RGB, RGB_TO_YUV):
    _m.setflags(write=False)

# Channel indices of R, G, B and bytes per pixel, from the in-memory byte orders in accel.core.frames.
PACKED = {
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


def _packed_pixels(frame: Frame, bpp: int) -> np.ndarray:
    """The (H, W, bpp) view of a packed frame's pixels, row padding left out."""
    data, h, w, stride, fmt = frame.data, frame.height, frame.width, frame.stride, frame.format
    if data.ndim == 3 and data.shape == (h, w, bpp):
        return data
    if stride < w * bpp:
        raise KernelError(f"{fmt.value} frame: stride {stride} is less than width * {bpp} = {w * bpp}")
    return _plane(data.reshape(-1), 0, h, stride, w * bpp, fmt.value).reshape(h, w, bpp)


def _yuv_planes(frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H, W), U and V (ceil(H/2), ceil(W/2)) planes of an I420 or NV12 frame."""
    data, h, w, stride, fmt = frame.data, frame.height, frame.width, frame.stride, frame.format
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
    else:  # pragma: no cover - every PixelFormat is handled by the caller or here
        raise KernelError(f"unsupported pixel format {fmt.value}")
    return luma, u, v


def _yuv_into(luma: np.ndarray, u: np.ndarray, v: np.ndarray, dst: tuple[np.ndarray, ...]) -> None:
    """BT.601 of ``luma`` (A, B) and chroma (ceil(A/2), ceil(B/2)) into the R, G, B (A, B) views ``dst``.

    ``floor((1164 * (Y - 16) + cu * (U - 128) + cv * (V - 128) + 500) / 1000)`` clipped to 0..255, in
    int32. The chroma term (with Y's -16 and the rounding 500) is computed once per chroma sample, on
    chroma rows widened to the luma width; luma rows are taken in pairs, so that each chroma row reaches
    both of its luma rows by broadcasting (an odd last row is padded, then dropped)."""
    a, b = luma.shape
    ca = u.shape[0]
    luma_coefficient = YUV_TO_RGB_MILLI[0, 0]  # the same for R, G and B
    yy = np.zeros((2 * ca, b), np.int32)
    np.multiply(luma, luma_coefficient, out=yy[:a])
    pairs = yy.reshape(ca, 2, b)
    # A byte u times 257 is the uint16 with both bytes u: viewed as bytes, each sample fills its 2 columns.
    wide = [(np.asarray(plane, np.uint16, order="C") * 257).view(np.uint8)[:, :b] for plane in (u, v)]
    term = np.empty((ca, 1, b), np.int32)
    total = np.empty_like(pairs)
    for c in range(3):
        m = YUV_TO_RGB_MILLI[c]
        term[...] = 500 - 16 * luma_coefficient - 128 * (m[1] + m[2])
        for coefficient, plane in zip(m[1:], wide, strict=True):
            if coefficient:
                term[:, 0] += coefficient * plane
        np.add(pairs, term, out=total)
        np.floor_divide(total, 1000, out=total)
        np.clip(total.reshape(2 * ca, b)[:a], 0, 255, out=dst[c], casting="unsafe")


def _check_dtype(frame: Frame) -> None:
    if frame.data.dtype != np.uint8:
        raise KernelError(f"frame {frame.index}: expected uint8 pixel data, got {frame.data.dtype}")


def to_rgb(frame: Frame) -> np.ndarray:
    """Any ``PixelFormat`` -> (H, W, 3) uint8 RGB, ignoring row padding (may be a view of ``frame.data``).

    YUV: ``[R, G, B] = round_half_up(YUV_TO_RGB @ [Y - 16, U - 128, V - 128])`` clipped to 0..255, computed
    exactly in integers (coefficients x 1000). Chroma is upsampled by nearest: pixel (y, x) uses chroma
    sample (y // 2, x // 2). Chroma planes are ceil(W/2) x ceil(H/2) samples; I420's U and V rows are
    ``(stride + 1) // 2`` bytes apart (``stride / 2`` for the even strides cameras use: rounding up only
    matters for an unpadded odd width), NV12's interleaved UV rows twice that.
    """
    _check_dtype(frame)
    if frame.format in PACKED:
        order, bpp = PACKED[frame.format]
        pixels = _packed_pixels(frame, bpp)
        if order == (0, 1, 2) and bpp == 3:
            return pixels
        out = np.empty((frame.height, frame.width, 3), np.uint8)
        for c, k in enumerate(order):  # channel by channel: a copy along the 3-byte pixels would be slow
            out[..., c] = pixels[..., k]
        return out
    out = np.empty((frame.height, frame.width, 3), np.uint8)
    _yuv_into(*_yuv_planes(frame), dst=(out[..., 0], out[..., 1], out[..., 2]))
    return out


def to_planes(frame: Frame, transposed: bool = False) -> np.ndarray:
    """``to_rgb(frame)`` as planes: (H, 3, W) uint8, or (W, 3, H) with ``transposed`` (``[x, c, y]``).

    The same pixel values as ``to_rgb``, laid out for a bilinear pass along the first axis."""
    _check_dtype(frame)
    if frame.format in PACKED:
        order, bpp = PACKED[frame.format]
        return planes_from_pixels(_packed_pixels(frame, bpp), order, transposed)
    h, w = frame.height, frame.width
    planes = np.empty((w, 3, h) if transposed else (h, 3, w), np.uint8)
    luma, u, v = _yuv_planes(frame)
    if transposed:
        luma_t = np.empty((w, h), np.uint8)
        transpose_into(luma_t, luma)
        luma, u, v = luma_t, u.T, v.T
    _yuv_into(luma, u, v, dst=(planes[:, 0], planes[:, 1], planes[:, 2]))
    return planes


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
