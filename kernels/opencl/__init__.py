"""The OpenCL kernel set: hand-written pre/post-processing kernels, checked against the numpy reference.

Pre-processing is bit-exact with ``numpy_ref`` (integer colour conversion, Pillow's fixed-point bilinear
taps and pass order, the same input LUT) in one fused path per frame (``pre``). Post-processing of the
raw families (``ssd-raw``, ``yolov5``, ``yolov8``) decodes, thresholds and compacts candidates on the
device and builds the NMS suppression bitmask there; the host sorts the candidates and runs the greedy scan
(``post``). The ``ssd`` family (decoding and NMS done by the model's own post-process op) and
``classifier`` have nothing to accelerate and use the numpy reference. So does an ssd-raw detector split at
its post-process op (``DecodeSpec.postprocess``): it decodes as that op, on the host, with
``accel.kernels.detection_postprocess`` (the op's float32 rounding, NMS modes and tie order; in its fast
mode that is about a millisecond a frame), and its frames report no device timings.

``pyopencl`` is imported when the set is first used, never at module import. Per-frame transfer and kernel
times come from OpenCL profiling events: ``last_timings()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from accel.core.detections import Classification, Detections
from accel.core.errors import KernelError
from accel.core.frames import Frame
from accel.core.plugins import Availability
from accel.kernels import DecodeSpec, Geometry, InputSpec, KernelSetBase, ResizeMode
from accel.kernels.numpy_ref import letterbox_placement
from accel.kernels.numpy_ref import postprocess as numpy_postprocess
from accel.kernels.resample import FILTERS

from . import post, pre
from .runtime import Runtime, open_runtime

__all__ = ["OpenClKernels"]


class OpenClKernels(KernelSetBase):
    """Pre/post-processing on an OpenCL device.

    ``platform`` and ``device`` pick the device by name substrings (default: the first GPU, else the first
    device); ``zero_copy`` forces mapped host-visible buffers on or off (default: when the device reports
    unified host memory). Use as a context manager or call ``close()``.
    """

    name = "opencl"
    filters = FILTERS  # the numpy set's taps, run on the device

    def __init__(self, platform: str | None = None, device: str | None = None, zero_copy: bool | None = None) -> None:
        self._options = (platform, device, zero_copy)
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        """The open OpenCL runtime (context, queue, caches), opened on first use; ``KernelError`` if none."""
        if self._runtime is None:
            self._runtime = open_runtime(*self._options)
        return self._runtime

    def probe(self) -> Availability:
        try:
            info = self.runtime.describe()
        except KernelError as exc:
            return Availability.no(exc.message)
        return Availability.yes(f"{info['device']} ({info['platform']}, {info['opencl_version']})")

    def describe(self) -> dict[str, Any]:
        """Platform, device, driver version, OpenCL version, unified memory and the features in use."""
        return self.runtime.describe()

    def last_timings(self) -> dict[str, float]:
        """The last call's upload_ms, kernel_ms and download_ms, from OpenCL profiling events."""
        return dict(self.runtime.timings)

    def build(self, source: str, options: Sequence[str] = (), name: str = "<source>") -> Any:
        """Build OpenCL C ``source`` in this context (cached); ``KernelError`` with the build log on failure."""
        return self.runtime.program(source, options, name)

    # Pre-processing -----------------------------------------------------------------------------------
    def preprocess(self, frame: Frame, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
        """Frame -> (1, H, W, 3) tensor in ``spec.dtype``, bit-exact with ``NumpyKernels.preprocess``."""
        lut = pre.input_lut(spec)
        rt = self.runtime
        rt.begin()
        src = pre.frame_source(rt, frame)
        geometry = Geometry()
        canvas = pre.Canvas.full(spec.height, spec.width)
        if (frame.height, frame.width) != (spec.height, spec.width) and spec.resize is ResizeMode.LETTERBOX:
            if not 0 <= spec.fill <= 255:
                raise KernelError(f"letterbox fill must be 0..255, got {spec.fill}")
            new_h, new_w, top, left = letterbox_placement(frame.height, frame.width, spec.height, spec.width)
            canvas = pre.Canvas(spec.width, spec.height, top, left, new_w, new_h, spec.fill)
            geometry = Geometry(new_w / spec.width, new_h / spec.height, left / spec.width, top / spec.height)
        out = pre.render(rt, src, canvas, lut, self.filter_for(spec))
        tensor = self._download(out, spec.height, spec.width, lut)
        rt.end()
        return tensor.reshape(1, spec.height, spec.width, 3), geometry

    def to_rgb(self, frame: Frame) -> np.ndarray:
        """Colour conversion alone: Frame -> (H, W, 3) uint8, exactly ``numpy_ref.to_rgb``."""
        rt = self.runtime
        rt.begin()
        src = pre.frame_source(rt, frame)
        out = pre.render(rt, src, pre.Canvas.full(frame.height, frame.width), pre.input_lut(InputSpec(1, 1)))
        rgb = self._download(out, frame.height, frame.width, np.arange(256, dtype=np.uint8))
        rt.end()
        return rgb

    def resize(self, rgb: np.ndarray, height: int, width: int) -> np.ndarray:
        """Bilinear resize alone: (H, W, 3) uint8 -> (height, width, 3), as ``numpy_ref.resize_bilinear``."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise KernelError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
        if height < 1 or width < 1:
            raise KernelError(f"resize target must be at least 1x1, got {width}x{height}")
        return self._from_rgb(rgb, pre.Canvas.full(height, width), np.arange(256, dtype=np.uint8))

    def quantize(self, rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
        """The input LUT alone: (H, W, 3) uint8 -> (1, H, W, 3), as ``numpy_ref.to_input_tensor``."""
        if rgb.shape != (spec.height, spec.width, 3) or rgb.dtype != np.uint8:
            raise KernelError(f"expected a ({spec.height}, {spec.width}, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
        lut = pre.input_lut(spec)
        return self._from_rgb(rgb, pre.Canvas.full(spec.height, spec.width), lut)[np.newaxis]

    def _from_rgb(self, rgb: np.ndarray, canvas: pre.Canvas, lut: np.ndarray) -> np.ndarray:
        rt = self.runtime
        rt.begin()
        src = pre.rgb_source(rt.upload("rgb", rgb), rgb.shape[0], rgb.shape[1])
        out = self._download(pre.render(rt, src, canvas, lut), canvas.height, canvas.width, lut)
        rt.end()
        return out

    def _download(self, buf: Any, height: int, width: int, lut: np.ndarray) -> np.ndarray:
        raw = np.float32 if lut.dtype == np.float32 else np.uint8
        return self.runtime.download(buf, height * width * 3, raw).view(lut.dtype).reshape(height, width, 3)

    # Post-processing ----------------------------------------------------------------------------------
    def postprocess(
        self, outputs: Mapping[str, np.ndarray], spec: DecodeSpec, geometry: Geometry
    ) -> Detections | Classification:
        """Raw outputs by role -> answers: ssd-raw and YOLO on the device; ssd, classifier and split
        post-process detectors by numpy (module docstring)."""
        if spec.family not in post.DEVICE_FAMILIES or spec.postprocess is not None:
            if self._runtime is not None:  # nothing ran on the device: no transfer or kernel time to report
                self._runtime.timings = {}
            return numpy_postprocess(outputs, spec, geometry)
        rt = self.runtime
        rt.begin()
        try:
            return post.postprocess(rt, outputs, spec, geometry)
        finally:
            rt.end()

    def nms(self, boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
            max_detections: int, class_agnostic: bool = False) -> np.ndarray:
        """``decode.nms`` with the suppression bitmask built on the device: the same kept indices."""
        rt = self.runtime
        rt.begin()
        try:
            return post.nms(rt, boxes_xyxy, scores, class_ids,
                            post.Suppression(iou_threshold, max_detections, class_agnostic))
        finally:
            rt.end()

    def close(self) -> None:
        """Release the context, queue, programs and buffers; idempotent."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
