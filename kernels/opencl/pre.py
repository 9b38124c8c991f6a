"""Host side of the pre-processing kernels (``preprocess.cl``): sources, pass plans, LUTs, one fused path.

A frame goes to the device once; colour conversion happens inside the first kernel that reads it (it is
never written out as RGB), each bilinear pass writes a uint8 image as Pillow's does, and the last kernel also
applies the input LUT and the letterbox border. So a frame takes 1 kernel (same size), 1 (one axis resized)
or 2 (both axes) launches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from accel.core.errors import KernelError
from accel.core.frames import Frame, PixelFormat
from accel.kernels import InputSpec
from accel.kernels.colour import PACKED, YUV_TO_RGB_MILLI
from accel.kernels.numpy_ref import byte_lut
from accel.kernels.resample import PRECISION_BITS, bilinear_taps

from .runtime import Runtime

_FILE = "preprocess.cl"
_IDENTITY = np.arange(256, dtype=np.uint8)


@functools.cache
def build_options() -> tuple[str, ...]:
    """``-D`` options carrying numpy_ref's constants into ``preprocess.cl``."""
    m = YUV_TO_RGB_MILLI
    names = {"YUV_Y": m[0, 0], "YUV_RU": m[0, 1], "YUV_RV": m[0, 2], "YUV_GU": m[1, 1], "YUV_GV": m[1, 2],
             "YUV_BU": m[2, 1], "YUV_BV": m[2, 2], "PRECISION_BITS": PRECISION_BITS}
    return tuple(f"-D{k}={int(v)}" for k, v in names.items())


@dataclass(frozen=True)
class Source:
    """An image on the device and how ``load_rgb`` reads it: (kind, stride, bpp, ri, gi, bi, uoff, voff,
    cstride, cstep), see ``preprocess.cl``."""

    buffer: Any
    width: int
    height: int
    params: tuple[int, ...]


@dataclass(frozen=True)
class Canvas:
    """The output image: ``width`` x ``height``, content ``cw`` x ``ch`` at (``top``, ``left``), ``fill``
    (a LUT index) elsewhere."""

    width: int
    height: int
    top: int = 0
    left: int = 0
    cw: int = 0
    ch: int = 0
    fill: int = 0

    @classmethod
    def full(cls, height: int, width: int) -> Canvas:
        return cls(width, height, 0, 0, width, height, 0)


def rgb_source(buffer: Any, height: int, width: int) -> Source:
    """A packed (H, W, 3) RGB image already on the device."""
    return Source(buffer, width, height, (0, width * 3, 3, 0, 1, 2, 0, 0, 0, 0))


def frame_source(rt: Runtime, frame: Frame) -> Source:
    """Validate ``frame`` as ``numpy_ref.to_rgb`` does and upload the bytes it covers (stride included)."""
    data, h, w, stride, fmt = frame.data, frame.height, frame.width, frame.stride, frame.format
    if data.dtype != np.uint8:
        raise KernelError(f"frame {frame.index}: expected uint8 pixel data, got {data.dtype}")
    if fmt in PACKED:
        (ri, gi, bi), bpp = PACKED[fmt]
        if data.ndim == 3 and data.shape == (h, w, bpp):
            stride = w * bpp
        elif stride < w * bpp:
            raise KernelError(f"{fmt.value} frame: stride {stride} is less than width * {bpp} = {w * bpp}")
        need = h * stride
        params = (0, stride, bpp, ri, gi, bi, 0, 0, 0, 0)
    else:
        if stride < w:
            raise KernelError(f"{fmt.value} frame: stride {stride} is less than width {w}")
        half, ch = (stride + 1) // 2, (h + 1) // 2
        need, luma = stride * h + 2 * half * ch, stride * h
        if fmt is PixelFormat.NV12:
            params = (1, stride, 1, 0, 0, 0, luma, luma + 1, 2 * half, 2)
        else:
            params = (1, stride, 1, 0, 0, 0, luma, luma + half * ch, half, 1)
    flat = data.reshape(-1)
    if flat.size < need:
        raise KernelError(f"{fmt.value}: expected a buffer of at least {need} bytes, got {flat.size}")
    return Source(rt.upload("frame", flat[:need]), w, h, params)


def plan_passes(in_h: int, in_w: int, height: int, width: int) -> tuple[str, ...]:
    """Pillow's pass order as ``numpy_ref.resize_bilinear`` states it: "v" first when the height shrinks by
    more than twice as many pixels as the width, else "h" first; an axis that keeps its size is skipped."""
    if height < in_h and 2 * (in_w - width) < in_h - height:
        return ("v", "h") if width != in_w else ("v",)
    return (("h",) if width != in_w else ()) + (("v",) if height != in_h else ())


def input_lut(spec: InputSpec) -> np.ndarray:
    """The model input's 256-entry table, validated as ``numpy_ref.to_input_tensor`` does."""
    if spec.dtype not in ("uint8", "int8", "float32"):
        raise KernelError(f"input dtype must be uint8, int8 or float32, got {spec.dtype!r}")
    if spec.scale < 0:
        raise KernelError(f"input quantization scale must be >= 0, got {spec.scale}")
    lo, hi = (float(v) for v in spec.norm_range)
    return byte_lut(spec.dtype, lo, hi, float(spec.scale), int(spec.zero_point))


def _lut_buffer(rt: Runtime, lut: np.ndarray) -> tuple[Any, str]:
    """The LUT on the device (uploaded once per table) and the kernel suffix for its output type."""
    key = ("lut", lut.dtype.str, lut.tobytes())
    if lut.dtype == np.float32:
        return rt.constant(key, lut), "f32"
    return rt.constant(key, lut.view(np.uint8)), "u8"


def _taps(rt: Runtime, in_size: int, out_size: int, filter: str) -> tuple[Any, Any, int]:
    index, weight = bilinear_taps(in_size, out_size, filter)
    return (rt.constant(("index", in_size, out_size, filter), index.astype(np.int32)),
            rt.constant(("weight", in_size, out_size, filter), weight.astype(np.int32)), int(index.shape[1]))


def render(rt: Runtime, src: Source, canvas: Canvas, lut: np.ndarray, filter: str = "antialias") -> Any:
    """Resize ``src`` to the canvas content (``filter``'s taps, ``accel.kernels.resample``: the numpy set's
    exactly), place it and map it through ``lut``; the device buffer holding the (height, width, 3) result
    in the LUT's type."""
    options = build_options()
    table, suffix = _lut_buffer(rt, lut)
    identity, _ = _lut_buffer(rt, _IDENTITY)
    i32 = np.int32
    passes = plan_passes(src.height, src.width, canvas.ch, canvas.cw)
    out = rt.buffer("out", canvas.width * canvas.height * 3 * lut.itemsize)
    if not passes:
        args = (table, out, *map(i32, (canvas.width, canvas.height, canvas.top, canvas.left, canvas.cw,
                                       canvas.ch, canvas.fill)))
        rt.run(rt.kernel(_FILE, f"copy_{suffix}", options), (canvas.width, canvas.height),
               src.buffer, *map(i32, src.params), *args)
        return out
    for n, axis in enumerate(passes):
        last = n == len(passes) - 1
        h, w = (canvas.ch, src.width) if axis == "v" else (src.height, canvas.cw)
        index, weight, ksize = (_taps(rt, src.height, h, filter) if axis == "v" else _taps(rt, src.width, w, filter))
        if last:
            target, name = canvas, f"{axis}pass_{suffix}"
            dst, lut_buf = out, table
        else:
            target, name = Canvas.full(h, w), f"{axis}pass_u8"
            dst, lut_buf = rt.buffer("mid", h * w * 3), identity
        args = (lut_buf, dst, *map(i32, (target.width, target.height, target.top, target.left, target.cw,
                                         target.ch, target.fill)))
        rt.run(rt.kernel(_FILE, name, options), (target.width, target.height),
               src.buffer, *map(i32, src.params), index, weight, i32(ksize), *args)
        src = rgb_source(dst, h, w)
    return out
