"""The numpy reference kernel set: the correctness yardstick every other kernel set is tested against.

Every formula is spelled out, exactly, so a faster implementation can be checked bit for bit:

- Colour (``accel.kernels.colour``): BT.601 limited ("video") range, the matrices ``YUV_TO_RGB`` /
  ``RGB_TO_YUV``. YUV -> RGB is done in integers with the coefficients x 1000 and rounded half up, so it has
  no float ambiguity at all.
- Resize (``accel.kernels.resample``): Pillow's ``Image.resize(size, Image.BILINEAR)`` reproduced
  bit-exactly: a triangle filter whose support widens by the reduction factor when downscaling
  (antialiased), pixel centres at +0.5, Pillow's 22-bit fixed-point coefficients, two passes with a rounded
  uint8 intermediate, in Pillow's pass order.
- Quantization: ``round_half_away_from_zero(real / scale) + zero_point`` (TFLite's rounding), clipped.

The colour and resize functions are importable from here as well as from their own modules.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from accel.core.detections import Classification, Detections
from accel.core.errors import KernelError
from accel.core.frames import Frame
from accel.core.plugins import Availability
from accel.kernels import DecodeSpec, Geometry, InputSpec, KernelSetBase, ResizeMode
from accel.kernels.colour import (
    RGB_TO_YUV,
    YUV_OFFSETS,
    YUV_TO_RGB,
    rgb_to_i420,
    rgb_to_nv12,
    to_planes,
    to_rgb,
)
from accel.kernels.decode import decode_raw, label_tuple, ssd_detections
from accel.kernels.planes import interleave_into
from accel.kernels.resample import (
    FILTERS,
    letterbox,
    letterbox_canvas,
    letterbox_placement,
    pass_order,
    resize_bilinear,
    resize_planes,
)

__all__ = [
    "byte_lut",
    "RGB_TO_YUV",
    "YUV_OFFSETS",
    "YUV_TO_RGB",
    "NumpyKernels",
    "classify_topk",
    "letterbox",
    "letterbox_placement",
    "postprocess",
    "resize_bilinear",
    "rgb_to_i420",
    "rgb_to_nv12",
    "ssd_detections",
    "to_input_tensor",
    "to_rgb",
]


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


@functools.lru_cache(maxsize=32)
def byte_lut(dtype: str, lo: float, hi: float, scale: float, zero_point: int) -> np.ndarray:
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
    return np.take(byte_lut(spec.dtype, lo, hi, float(spec.scale), int(spec.zero_point)), rgb)[np.newaxis]


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
    return Classification(ids, v[ids].astype(np.float32), label_tuple(ids, labels))


def postprocess(outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry) -> Detections | Classification:
    """The reference post-processing of every family (ssd-raw, yolov5, yolov8: ``kernels.decode``)."""
    labels = spec.labels or None
    if spec.family == "ssd":
        return ssd_detections(outputs, threshold=spec.score_threshold, geometry=geometry, labels=labels,
                              quant=spec.quant)
    if spec.family == "classifier":
        scale, zero_point = spec.quant.get("logits", (0.0, 0))
        return classify_topk(outputs["logits"], scale=scale, zero_point=zero_point, top_k=spec.top_k, labels=labels)
    return decode_raw(outputs, spec, geometry)  # a family it does not know raises KernelError


class NumpyKernels(KernelSetBase):
    """The reference kernel set: plain numpy, always available, exact rather than fast."""

    name = "numpy"
    filters = FILTERS  # antialias (Pillow's BILINEAR) is its own


    def probe(self) -> Availability:
        return Availability.yes()

    def preprocess(self, frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """Frame -> (1, H, W, 3) tensor: ``to_rgb``, then ``resize_bilinear`` or ``letterbox``, then
        ``to_input_tensor``, exactly, computed on planes (``to_planes``, ``resize_planes``) so that the
        resize gathers whole rows, never single pixels."""
        height, width = spec.height, spec.width
        if (frame.height, frame.width) == (height, width):
            return to_input_tensor(to_rgb(frame), spec), Geometry()
        if height < 1 or width < 1:
            raise KernelError(f"resize target must be at least 1x1, got {width}x{height}")
        if spec.resize is ResizeMode.LETTERBOX:
            rgb, content, geometry = letterbox_canvas(frame.height, frame.width, height, width, spec.fill)
        else:
            rgb = content = np.empty((height, width, 3), np.uint8)
            geometry = Geometry()
        new_h, new_w = content.shape[:2]
        transposed = pass_order(frame.height, frame.width, new_h, new_w).startswith("h")
        planes, transposed = resize_planes(to_planes(frame, transposed), transposed, new_h, new_w,
                                           self.filter_for(spec))
        interleave_into(content, planes, transposed)
        return to_input_tensor(rgb, spec), geometry

    def postprocess(
        self, outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry
    ) -> Detections | Classification:
        """Raw outputs by role -> answers, by ``spec.family`` (see ``DecodeSpec``)."""
        return postprocess(outputs, spec, geometry)
