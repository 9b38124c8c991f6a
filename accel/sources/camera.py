"""Live cameras: a V4L2 (USB) camera through OpenCV, and the Raspberry Pi camera through Picamera2.

The Pi camera is read from Picamera2's *lores* stream, sized near the model input, so the ISP does the
downscaling for free: on a Pi 4 (VC4 ISP) the lores stream must be YUV420 (I420; Y plane stride x h, then
U and V planes (stride/2) x (h/2)); a Pi 5 (PiSP) can also give RGB888 (B,G,R bytes) or XRGB8888 (B,G,R,A).
Rows may be padded: the stride comes from ``picam2.stream_configuration("lores")["stride"]`` and frames
keep the padded buffer with that stride, which preprocessing kernels honour.

Which clock a frame's ``SensorTimestamp`` is on: libcamera documents the control as nanoseconds on
``CLOCK_BOOTTIME`` (``control_ids_core.yaml``), but its pipeline handlers fill it with the V4L2 buffer
timestamp (``FrameMetadata::timestamp``), which the kernel's capture drivers take from
``CLOCK_MONOTONIC``, and Picamera2 itself compares it with ``time.monotonic_ns()``
(``capture_request(flush=True)`` keeps the first request with ``SensorTimestamp - ExposureTime`` after
it). The two clocks differ only by the time the system spent suspended, so ``sensor_time`` takes a stamp
as ``CLOCK_MONOTONIC`` (this process's ``time.monotonic()``) unless it lies in that clock's future, which
only a ``CLOCK_BOOTTIME`` stamp on a system that has been suspended can; then the suspended time, read
from both clocks at the same moment, is taken off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

import numpy as np

from accel.core.errors import SourceError
from accel.core.frames import Frame, PixelFormat
from accel.sources import import_cv2
from accel.sources.synthetic import bgr_frame, default_stride

__all__ = ["LORES_FORMATS", "MainStream", "Picamera2Source", "V4l2Source", "check_v4l2_device", "main_stream_size",
           "sensor_time"]

#: Pixel formats a lores stream can be asked for (RGB ones on a Pi 5 only).
LORES_FORMATS = (PixelFormat.YUV420, PixelFormat.RGB888, PixelFormat.XRGB8888)
_DEFAULT_MAIN = (640, 480)
_NO_CAMERA = "no Raspberry Pi camera found (picamera2: {msg}): check the ribbon cable and " \
             "'rpicam-hello --list-cameras'"


def check_v4l2_device(device: int) -> None:
    """``SourceError`` when ``/dev/videoN`` does not exist (without opening it)."""
    node = f"/dev/video{device}"
    if not Path(node).exists():
        raise SourceError(f"no camera at {node}: the device does not exist (list cameras with "
                          f"'v4l2-ctl --list-devices'; a Raspberry Pi camera module is 'picamera2')")


class V4l2Source:
    """A V4L2 camera (``/dev/videoN``) through ``cv2.VideoCapture(N, cv2.CAP_V4L2)``. Frames are (H, W, 3)
    ``RGB888`` (B,G,R bytes, as OpenCV gives them) at the size the driver accepted, which ``describe``
    reports next to the requested one."""

    name = "v4l2"

    def __init__(self, device: int = 0, width: int | None = None, height: int | None = None,
                 *, format: PixelFormat | None = None) -> None:
        self.device = device
        self.node = f"/dev/video{device}"
        self.format = format or PixelFormat.RGB888
        self._requested = (width, height)
        self._cv2 = cv2 = import_cv2(f"camera {self.node}")
        check_v4l2_device(device)
        self._cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"no camera at {self.node}: OpenCV could not open it (in use by another "
                              f"program, not a capture device, or no permission: add yourself to 'video')")
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.stride = default_stride(self.width, self.format)
        self._pos = 0
        self._closed = False

    def read(self) -> Frame:
        """The next frame from the camera."""
        if self._closed:
            raise SourceError(f"camera {self.node} is closed")
        start = time.perf_counter()
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise SourceError(f"camera {self.node} delivered no frame (unplugged, or in use by another program)")
        frame = bgr_frame(bgr, self.format, None, start, self._pos)
        self._pos += 1
        return frame

    def close(self) -> None:
        """Release the camera (idempotent)."""
        if not self._closed:
            self._closed = True
            self._cap.release()

    def describe(self) -> dict[str, Any]:
        """What a result records: the device, requested and delivered size, format."""
        backend = "" if self._closed else str(self._cap.getBackendName())
        return {"kind": "v4l2", "target": str(self.device), "device": self.node, "width": self.width,
                "height": self.height, "requested_size": list(self._requested), "format": self.format.value,
                "stride": self.stride, "backend": backend}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _clocks_ns() -> tuple[int, int]:
    """``(CLOCK_MONOTONIC, CLOCK_BOOTTIME)`` now, in nanoseconds, read back to back (BOOTTIME is Linux-only:
    elsewhere both are the monotonic clock)."""
    monotonic = time.monotonic_ns()
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return monotonic, time.clock_gettime_ns(boottime) if boottime is not None else monotonic


def sensor_time(sensor_ns: int, monotonic_ns: int, boottime_ns: int) -> float:
    """A ``SensorTimestamp`` (nanoseconds) as ``time.monotonic()`` seconds, given both clocks read just after
    the frame arrived (see the module's docstring): a stamp no later than ``monotonic_ns`` is on
    ``CLOCK_MONOTONIC`` already; a later one is on ``CLOCK_BOOTTIME`` and loses the time spent suspended
    (``boottime_ns - monotonic_ns``)."""
    suspended = boottime_ns - monotonic_ns
    if sensor_ns > monotonic_ns and suspended > 0:
        sensor_ns -= suspended
    return sensor_ns / 1e9


#: Camera buffers when the main stream is streamed: Picamera2's encoder holds up to two requests while it
#: encodes, the detector one, and the camera needs some to fill (Picamera2's preview default is 4).
_STREAMED_BUFFERS = 6


def main_stream_size(lores: tuple[int, int], asked: tuple[int, int] | None = None) -> tuple[int, int]:
    """The main stream's size beside a ``lores`` stream (Picamera2 requires lores to fit in main): by
    default lores, at least 640x480 (what accel always configured); ``asked``, scaled up keeping its aspect
    ratio where lores would not fit in it, to even sides."""
    if asked is None:
        return max(lores[0], _DEFAULT_MAIN[0]), max(lores[1], _DEFAULT_MAIN[1])
    w, h = asked[0] + asked[0] % 2, asked[1] + asked[1] % 2  # as lores is rounded: 641 wide fits 642
    scale = max(1.0, lores[0] / w, lores[1] / h)
    return 2 * math.ceil(w * scale / 2), 2 * math.ceil(h * scale / 2)


def _default_factory(camera_num: int) -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise SourceError(
            f"picamera2 is not installed ({exc}): on Raspberry Pi OS run 'sudo apt install python3-picamera2' "
            f"and create the venv with --system-site-packages"
        ) from exc
    return Picamera2(camera_num)


class MainStream(NamedTuple):
    """The camera's main stream, beside the lores one accel reads: its ``size`` (None: from the lores size,
    see ``main_stream_size``) and whether someone streams it (``accel watch`` with Picamera2's encoder)."""

    size: tuple[int, int] | None = None
    streamed: bool = False


class Picamera2Source:
    """The Raspberry Pi camera's lores stream through Picamera2.

    The lores stream is configured at the requested size (default 640x480; odd sides rounded up to even)
    in ``format`` (YUV420 by default; RGB888/XRGB8888 on a Pi 5), beside a main stream at least that big.
    Each ``read`` takes the next completed request (``capture_request()``), copies its lores buffer
    (``make_buffer("lores")``) and its metadata, and releases it to the camera; the buffer is reshaped with
    the stream's stride: (h * 3 // 2, stride) for YUV420, (h, stride) for the RGB formats. The frame's
    ``timestamp`` is the request's ``SensorTimestamp`` (when the sensor started sending the frame) as
    ``time.monotonic()`` seconds (``sensor_time``; ``clocks()`` gives the clock pair, ``(monotonic_ns,
    boottime_ns)``), or the time of the read when the metadata has none. ``factory(camera_num)`` makes the
    Picamera2 object (tests pass a stand-in); by default ``picamera2.Picamera2``, imported only here.

    ``main_size``: the main stream's size (``main_stream_size``: by default the lores size, at least
    640x480; one asked for is scaled up, keeping its aspect ratio, where lores would not fit in it), in
    Picamera2's default ``XBGR8888`` (R,G,B,X bytes). ``streamed``: someone streams it (``accel watch``
    encodes it with Picamera2's own encoder, ``camera`` being the Picamera2 object), so the camera gets 6
    buffers instead of 4. The frames ``read`` returns are always the lores stream's.
    """

    name = "picamera2"

    def __init__(self, camera_num: int = 0, size: tuple[int, int] | None = None, *,
                 format: PixelFormat | None = None, factory: Callable[[int], Any] | None = None,
                 clocks: Callable[[], tuple[int, int]] = _clocks_ns, main: MainStream | None = None) -> None:
        width, height = size or (None, None)
        main_size, streamed = main or MainStream()
        self.camera_num = camera_num
        self._clocks = clocks
        self.format = format or PixelFormat.YUV420
        if self.format not in LORES_FORMATS:
            raise SourceError(f"picamera2: the lores stream cannot deliver {self.format.value}; valid: "
                              f"{', '.join(f.value for f in LORES_FORMATS)} (the RGB ones on a Pi 5 only)")
        w, h = width or 640, height or 480
        lores = (w + w % 2, h + h % 2)
        self._closed = True  # until the camera is open, close() has nothing to do
        try:
            self._cam = (factory or _default_factory)(camera_num)
        except SourceError:
            raise
        except Exception as exc:  # picamera2 raises RuntimeError, IndexError, ... when there is no camera
            raise SourceError(_NO_CAMERA.format(msg=str(exc) or type(exc).__name__)) from exc
        self._closed = False
        self._started = False
        try:
            extra = {"buffer_count": _STREAMED_BUFFERS} if streamed else {}
            config = self._cam.create_preview_configuration(
                main={"size": main_stream_size(lores, main_size), "format": "XBGR8888"},
                lores={"size": lores, "format": self.format.value}, **extra,
            )
            self._cam.configure(config)
            stream = self._cam.stream_configuration("lores")
            self.width, self.height = (int(v) for v in stream["size"])
            self.stride = int(stream["stride"])
            self._cam.start()
            self._started = True
        except Exception as exc:
            self.close()
            raise SourceError(f"picamera2 camera {camera_num}: cannot configure a {lores[0]}x{lores[1]} "
                              f"{self.format.value} lores stream: {exc}") from exc
        self.model = str(self._cam.camera_properties.get("Model", "unknown"))
        self._rows = self.height * 3 // 2 if self.format is PixelFormat.YUV420 else self.height
        self._pos = 0

    @property
    def camera(self) -> Any:
        """The Picamera2 object (configured and started), for the main stream's encoder."""
        return self._cam

    def read(self) -> Frame:
        """The next lores frame, keeping the stream's row padding, stamped with its sensor timestamp."""
        if self._closed:
            raise SourceError(f"picamera2 camera {self.camera_num} is closed")
        start = time.perf_counter()
        try:
            request = self._cam.capture_request()
        except Exception as exc:
            raise SourceError(f"picamera2 camera {self.camera_num}: capture failed: {exc}") from exc
        try:
            buffer = request.make_buffer("lores")  # a copy: the request can go back to the camera at once
            metadata = dict(request.get_metadata())
        except Exception as exc:
            raise SourceError(f"picamera2 camera {self.camera_num}: reading a completed request failed: "
                              f"{exc}") from exc
        finally:
            request.release()
        monotonic_ns, boottime_ns = self._clocks()
        stamp = metadata.get("SensorTimestamp")
        timestamp = sensor_time(int(stamp), monotonic_ns, boottime_ns) if stamp else monotonic_ns / 1e9
        flat = np.asarray(buffer, dtype=np.uint8).reshape(-1)
        need = self._rows * self.stride
        if flat.size < need:
            raise SourceError(f"picamera2 camera {self.camera_num}: lores buffer has {flat.size} bytes, "
                              f"expected {need} ({self._rows} rows x stride {self.stride})")
        data = flat[:need].reshape(self._rows, self.stride)
        frame = Frame(data, self.width, self.height, self.format, self.stride, timestamp=timestamp,
                      capture_s=time.perf_counter() - start, index=self._pos)
        self._pos += 1
        return frame

    def close(self) -> None:
        """Stop and close the camera, once (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                self._cam.stop()
        finally:
            self._cam.close()

    def describe(self) -> dict[str, Any]:
        """What a result records: camera number and model, lores size, format and stride."""
        return {"kind": "picamera2", "target": str(self.camera_num), "camera_model": self.model,
                "width": self.width, "height": self.height, "format": self.format.value,
                "stride": self.stride, "stream": "lores"}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
