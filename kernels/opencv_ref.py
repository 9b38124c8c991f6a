"""The OpenCV kernel set: the baseline a Raspberry Pi user would write by hand.

``cv2.cvtColor`` for the pixel format, ``cv2.resize(INTER_LINEAR)`` (INTER_AREA with [model] resize_filter =
area; plus a constant border for letterbox), then the numpy ``to_input_tensor``. Post-processing is the
numpy reference's, unchanged. This is a baseline, not a reference: OpenCV's YUV conversion rounds its own
fixed-point BT.601 coefficients (1 LSB) and clamps Y below 16 before converting (out-of-range luma then
differs by up to ~20 LSB), and its bilinear resize does not antialias when it shrinks, so results differ
from ``numpy_ref`` by a few LSB on camera-like images, more on fine detail when downscaling. ``cv2`` is
imported when the set is first used, never at module import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accel.core.errors import KernelError
from accel.core.frames import Frame, PixelFormat
from accel.core.plugins import Availability
from accel.kernels import Geometry, InputSpec, KernelSetBase, ResizeMode
from accel.kernels.numpy_ref import (
    letterbox_placement,
    postprocess,
    to_input_tensor,
    to_rgb,
)

_MISSING = "OpenCV is not installed: pip install 'accel[opencv]'"
_BYTES_PER_PIXEL = {
    PixelFormat.RGB: 3,
    PixelFormat.RGB888: 3,
    PixelFormat.BGR888: 3,
    PixelFormat.XRGB8888: 4,
    PixelFormat.XBGR8888: 4,
}


class OpenCvKernels(KernelSetBase):
    """Colour conversion and resize with OpenCV; post-processing shared with the numpy reference."""

    name = "opencv"
    filters = ("bilinear", "area")  # cv2.INTER_LINEAR (its own), cv2.INTER_AREA; no antialiased triangle
    postprocess = staticmethod(postprocess)

    def __init__(self) -> None:
        self._module: Any = None

    def _cv2(self) -> Any:
        if self._module is None:
            try:
                import cv2
            except ImportError as exc:
                raise KernelError(_MISSING) from exc
            self._module = cv2
        return self._module

    def probe(self) -> Availability:
        try:
            cv2 = self._cv2()
        except KernelError as exc:
            return Availability.no(exc.message)
        return Availability.yes(f"OpenCV {cv2.__version__}")

    def to_rgb(self, frame: Frame) -> np.ndarray:
        """Frame -> (H, W, 3) uint8 RGB with ``cv2.cvtColor``; row padding is sliced off first."""
        cv2 = self._cv2()
        fmt, h, w, stride, data = frame.format, frame.height, frame.width, frame.stride, frame.data
        if fmt in _BYTES_PER_PIXEL:
            bpp = _BYTES_PER_PIXEL[fmt]
            if data.ndim == 3 and data.shape == (h, w, bpp):
                pixels = data
            else:
                pixels = _rows(data, 0, h, stride, w * bpp, fmt).reshape(h, w, bpp)
            code = {
                PixelFormat.RGB888: cv2.COLOR_BGR2RGB,
                PixelFormat.XRGB8888: cv2.COLOR_BGRA2RGB,
                PixelFormat.XBGR8888: cv2.COLOR_RGBA2RGB,
            }.get(fmt)
            if code is None:  # RGB and BGR888 are R,G,B in memory already
                return np.ascontiguousarray(pixels)
            return np.asarray(cv2.cvtColor(np.ascontiguousarray(pixels), code))
        if h % 2 or w % 2:  # OpenCV's 4:2:0 conversions take even sizes only; cameras never give odd ones
            return to_rgb(frame)
        planes = [_rows(data, 0, h, stride, w, fmt)]
        if fmt is PixelFormat.NV12:
            planes.append(_rows(data, h * stride, h // 2, stride, w, fmt))
            code = cv2.COLOR_YUV2RGB_NV12
        else:
            half = stride // 2
            planes.append(_rows(data, h * stride, h // 2, half, w // 2, fmt))
            planes.append(_rows(data, h * stride + half * (h // 2), h // 2, half, w // 2, fmt))
            code = cv2.COLOR_YUV2RGB_I420
        packed = np.concatenate([p.reshape(-1) for p in planes]).reshape(h * 3 // 2, w)  # padding dropped
        return np.asarray(cv2.cvtColor(packed, code))

    def preprocess(self, frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """Frame -> (1, H, W, 3) tensor: ``cv2.cvtColor``, ``cv2.resize`` (letterbox: plus a border)."""
        cv2 = self._cv2()
        rgb = self.to_rgb(frame)
        geometry = Geometry()
        height, width = spec.height, spec.width
        interpolation = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}[self.filter_for(spec)]
        if rgb.shape[:2] != (height, width):
            if spec.resize is ResizeMode.LETTERBOX:
                if not 0 <= spec.fill <= 255:
                    raise KernelError(f"letterbox fill must be 0..255, got {spec.fill}")
                new_h, new_w, top, left = letterbox_placement(rgb.shape[0], rgb.shape[1], height, width)
                content = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
                bottom, right = height - new_h - top, width - new_w - left
                fill = (spec.fill,) * 3
                rgb = cv2.copyMakeBorder(content, top, bottom, left, right, cv2.BORDER_CONSTANT, value=fill)
                geometry = Geometry(new_w / width, new_h / height, left / width, top / height)
            else:
                rgb = cv2.resize(rgb, (width, height), interpolation=interpolation)
        return to_input_tensor(np.asarray(rgb), spec), geometry


def _rows(
    data: np.ndarray, offset: int, rows: int, row_stride: int, row_bytes: int, fmt: PixelFormat
) -> np.ndarray:
    """A (rows, row_bytes) view of a plane at byte ``offset`` of ``data``, ``row_stride`` bytes per row."""
    flat = data.reshape(-1)
    end = offset + rows * row_stride
    if row_stride < row_bytes or flat.size < end:
        raise KernelError(
            f"{fmt.value} frame: expected rows of at least {row_bytes} bytes in a buffer of at least {end} "
            f"bytes, got stride {row_stride} and {flat.size} bytes"
        )
    return flat[offset:end].reshape(rows, row_stride)[:, :row_bytes]
