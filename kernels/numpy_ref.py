"""The numpy reference kernel set: the correctness yardstick every other kernel set is tested against.

Every formula is spelled out here, exactly, so a faster implementation can be checked bit for bit:

- Colour: BT.601 limited ("video") range, the matrices ``YUV_TO_RGB`` / ``RGB_TO_YUV``. YUV -> RGB is done
  in integers with the coefficients x 1000 and rounded half up, so it has no float ambiguity at all.
- Resize: Pillow's ``Image.resize(size, Image.BILINEAR)`` reproduced bit-exactly: a triangle filter whose
  support widens by the reduction factor when downscaling (antialiased), pixel centres at +0.5, Pillow's
  22-bit fixed-point coefficients, two passes with a rounded uint8 intermediate, in Pillow's pass order.
- Quantization: ``round_half_away_from_zero(real / scale) + zero_point`` (TFLite's rounding), clipped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from accel.detections import Classification, Detections
from accel.errors import KernelError
from accel.frames import Frame, PixelFormat
from accel.kernels import DecodeSpec, Geometry, InputSpec, KernelSetBase, ResizeMode
from accel.kernels.decode import decode_raw
from accel.plugins import Availability

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
_PRECISION_BITS = 22  # Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


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


@functools.lru_cache(maxsize=32)
def _input_lut(dtype: str, lo: float, hi: float, scale: float, zero_point: int) -> np.ndarray:
    real = lo + np.arange(256, dtype=np.float64) * (hi - lo) / 255.0
    if dtype == "float32":
        lut = real.astype(np.float32)
    else:
        info = np.iinfo(np.dtype(dtype))
        q = _round_half_away(real / (scale or 1.0)) + zero_point  # scale 0: the tensor is not quantized
        lut = np.clip(q, info.min, info.max).astype(dtype)
    lut.setflags(write=False)
    return lut


def to_input_tensor(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, H, W, 3) ``spec.dtype``.

    Pixel ``p`` maps to ``r = lo + p * (hi - lo) / 255`` with ``(lo, hi) = spec.norm_range``; float32 gives
    ``r``, uint8/int8 give ``clip(round_half_away(r / scale) + zero_point)`` in the dtype's range, through a
    256-entry table. Raw uint8 (range (0, 255), scale 1, zero point 0) is a view of ``rgb``, not a copy.
    """
    if rgb.shape != (spec.height, spec.width, 3) or rgb.dtype != np.uint8:
        raise KernelError(
            f"expected a ({spec.height}, {spec.width}, 3) uint8 image, got {rgb.shape} {rgb.dtype}"
        )
    if spec.dtype not in ("uint8", "int8", "float32"):
        raise KernelError(f"input dtype must be uint8, int8 or float32, got {spec.dtype!r}")
    if spec.scale < 0:
        raise KernelError(f"input quantization scale must be >= 0, got {spec.scale}")
    lo, hi = (float(v) for v in spec.norm_range)
    if spec.dtype == "uint8" and (lo, hi) == (0.0, 255.0) and spec.scale == 1.0 and spec.zero_point == 0:
        return rgb[np.newaxis]
    return np.take(_input_lut(spec.dtype, lo, hi, float(spec.scale), int(spec.zero_point)), rgb)[np.newaxis]


def _label_tuple(ids: np.ndarray, labels: Sequence[str] | None) -> tuple[str, ...]:
    if labels is None:
        return ()
    return tuple(labels[i] if 0 <= i < len(labels) else str(i) for i in ids.tolist())


def ssd_detections(
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    count: np.ndarray,
    *,
    threshold: float,
    geometry: Geometry,
    labels: Sequence[str] | None = None,
) -> Detections:
    """Outputs of ``TFLite_Detection_PostProcess`` -> ``Detections`` in frame coordinates.

    Boxes are (ymin, xmin, ymax, xmax) normalized to the model input, batch dim optional. The first
    ``count`` rows (rounded, at most N) with ``score >= threshold`` are kept; coordinates map back as
    ``(m - offset) / scale`` and are clipped to [0, 1]; class ids are rounded to nearest (quantized
    models return 16.9999 for 17).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    c = np.asarray(classes, np.float64).reshape(-1)
    s = np.asarray(scores, np.float64).reshape(-1)
    if not b.shape[0] == c.shape[0] == s.shape[0]:
        raise KernelError(
            f"SSD outputs disagree: {b.shape[0]} boxes, {c.shape[0]} classes, {s.shape[0]} scores"
        )
    cnt = np.asarray(count, np.float64).reshape(-1)
    if cnt.size and not np.isfinite(cnt[0]):
        raise KernelError(f"SSD detection count is not a number: {cnt[0]}")
    n = b.shape[0] if cnt.size == 0 else int(np.clip(math.floor(cnt[0] + 0.5), 0, b.shape[0]))
    keep = np.nonzero(s[:n] >= threshold)[0]
    b, c, s = b[keep], c[keep], s[keep]
    xs = (b[:, [1, 3]] - geometry.offset_x) / geometry.scale_x
    ys = (b[:, [0, 2]] - geometry.offset_y) / geometry.scale_y
    xyxy = np.clip(np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1), 0.0, 1.0)
    ids = _round_half_up(c).astype(np.int32)
    return Detections(xyxy.astype(np.float32), ids, s.astype(np.float32), _label_tuple(ids, labels))


def classify_topk(
    output: np.ndarray, *, scale: float, zero_point: int, top_k: int, labels: Sequence[str] | None = None
) -> Classification:
    """A classifier's [1, C] output -> its ``top_k`` classes, best first, ties by lower class id.

    Dequantized as ``(q - zero_point) * scale`` when ``scale != 0``. Values all in [0, 1] are kept as they
    are (probabilities or independent sigmoids); otherwise they are logits and get a stable softmax.
    """
    if top_k < 1:
        raise KernelError(f"top_k must be >= 1, got {top_k}")
    v = np.asarray(output).reshape(-1).astype(np.float64)
    if scale != 0:
        v = (v - zero_point) * scale
    if v.size and (v.min() < 0.0 or v.max() > 1.0):
        e = np.exp(v - v.max())
        v = e / e.sum()
    ids = np.argsort(-v, kind="stable")[:top_k].astype(np.int32)
    return Classification(ids, v[ids].astype(np.float32), _label_tuple(ids, labels))


def postprocess(outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry) -> Detections | Classification:
    """The reference post-processing of every family (ssd-raw, yolov5, yolov8: ``kernels.decode``)."""
    labels = spec.labels or None
    if spec.family == "ssd":
        return ssd_detections(outputs["boxes"], outputs["classes"], outputs["scores"], outputs["count"],
                              threshold=spec.score_threshold, geometry=geometry, labels=labels)
    if spec.family == "classifier":
        scale, zero_point = spec.quant.get("logits", (0.0, 0))
        return classify_topk(outputs["logits"], scale=scale, zero_point=zero_point, top_k=spec.top_k, labels=labels)
    return decode_raw(outputs, spec, geometry)  # a family it does not know raises KernelError


class NumpyKernels(KernelSetBase):
    """The reference kernel set: plain numpy, always available, exact rather than fast."""

    name = "numpy"


    def probe(self) -> Availability:
        return Availability.yes()

    def preprocess(self, frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """Frame -> (1, H, W, 3) tensor via ``to_rgb``, resize or letterbox, ``to_input_tensor``."""
        rgb = to_rgb(frame)
        geometry = Geometry()
        if rgb.shape[:2] != (spec.height, spec.width):
            if spec.resize is ResizeMode.LETTERBOX:
                rgb, geometry = letterbox(rgb, spec.height, spec.width, spec.fill)
            else:
                rgb = resize_bilinear(rgb, spec.height, spec.width)
        return to_input_tensor(rgb, spec), geometry

    def postprocess(
        self, outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry
    ) -> Detections | Classification:
        """Raw outputs by role -> answers, by ``spec.family`` (see ``DecodeSpec``)."""
        return postprocess(outputs, spec, geometry)
