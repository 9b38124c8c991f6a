"""The stream encoded by Picamera2 itself from the camera's main stream, while the lores stream feeds the model.

With the picamera2 source the ISP gives two streams of one picture: lores, sized near the model's input,
which the detector reads, and main, at the stream's size, which Picamera2's encoder turns into JPEG: its
hardware MJPEG encoder (``MJPEGEncoder``, V4L2) where the board has one (a Pi 4), else its ``JpegEncoder``
(libjpeg-turbo through simplejpeg, in Picamera2's own threads; a Pi 5 has no video encoder). Nothing is
converted or scaled on the CPU. The caption and the detections of the newest finished frame are drawn onto
the main buffer, in place, in Picamera2's ``pre_callback`` (``MappedArray``), for the frames that are
encoded only; so the boxes are the newest answers over a picture taken after the frame they answer, later
by about the detector's end-to-end latency, as in any live overlay.

At most ``fps`` frames a second reach the encoder: a request goes through when the last one that went is
at least 1/fps old (Picamera2 offers every request to every running encoder); the others are left alone.
The encoder runs only while somebody watches (``start``/``stop``).

What it costs is measured per stream frame: the drawing (CPU, in the camera's thread) plus, for
``JpegEncoder``, the encoding in its thread; for the hardware encoder the time from handing the frame over
to its JPEG coming back (``encode_timed`` says which: "cpu" or "hardware latency").

Picamera2 is imported only here (``modules`` lets tests pass stand-ins with its API).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from accel.detections import Classification, Detections
from accel.errors import SourceError

__all__ = ["CameraStream", "quality_level"]

Result = Detections | Classification
_MAX_PENDING = 16  # requests let through that no encoder took (the encoder stopped meanwhile): dropped


def quality_level(quality: int) -> str:
    """JPEG quality 1..100 as the ``picamera2.encoders.Quality`` member a bitrate-driven encoder takes."""
    for limit, name in ((30, "VERY_LOW"), (50, "LOW"), (70, "MEDIUM"), (85, "HIGH")):
        if quality < limit:
            return name
    return "VERY_HIGH"


def _modules() -> tuple[Any, Any, Any]:
    try:
        import picamera2
        import picamera2.encoders as encoders
        import picamera2.outputs as outputs
    except ImportError as exc:
        raise SourceError(f"picamera2's encoders cannot be imported ({exc}): update python3-picamera2, or "
                          "use --stream-encoder auto to encode on the CPU") from exc
    return picamera2, encoders, outputs


class CameraStream:
    """Picamera2's encoder over ``camera``'s main stream: each JPEG goes to ``on_jpeg(jpeg, seconds)`` (what
    drawing and encoding it took); ``overlay()`` gives what to draw on the next frame (answers, caption)."""

    def __init__(self, camera: Any, quality: int, fps: float, overlay: Callable[[], tuple[Result | None, str]],
                 on_jpeg: Callable[[bytes, float], None], *, on_error: Callable[[Exception], None] | None = None,
                 modules: tuple[Any, Any, Any] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        import cv2

        self._cv2 = cv2
        self._picamera2, encoders, outputs = modules or _modules()
        self._cam, self._overlay, self._on_jpeg, self._clock = camera, overlay, on_jpeg, clock
        self._on_error = on_error
        self.error: Exception | None = None
        self._interval = 1.0 / fps
        self._due = 0.0
        self._lock = threading.Lock()
        self._pending: collections.OrderedDict[int, float] = collections.OrderedDict()  # id(request) -> draw s
        # id(request) -> [draw s, when handed to the encoder, encode s on the CPU or -1], in the order handed
        self._inflight: collections.OrderedDict[int, list[float]] = collections.OrderedDict()
        main = camera.stream_configuration("main")
        self.size = (int(main["size"][0]), int(main["size"][1]))
        self.running = False
        stream = self
        try:
            self._encoder = self._gated(encoders.MJPEGEncoder)()
            self.hardware = True
        except RuntimeError:  # "Hardware MJPEG not available on this platform"
            self._encoder = self._gated(encoders.JpegEncoder, timed=True)(q=quality)
            self.hardware = False
        self._quality = getattr(encoders.Quality, quality_level(quality)) if self.hardware else None
        self.name = "picamera2 MJPEGEncoder (hardware)" if self.hardware else "picamera2 JpegEncoder"
        self.encode_timed = "hardware latency" if self.hardware else "cpu"

        class _Output(outputs.Output):  # type: ignore[misc, name-defined]
            def outputframe(self, frame: Any, keyframe: bool = True, timestamp: Any = None, *args: Any,
                            **kwargs: Any) -> None:
                stream._output(bytes(frame))

        self._output_obj = _Output()

    def _gated(self, base: type, *, timed: bool = False) -> type:
        """``base`` (a Picamera2 encoder class) taking only the requests the gate let through."""
        stream = self

        class Gated(base):  # type: ignore[misc, valid-type]
            def encode(self, name: Any, request: Any) -> None:
                if stream._took(request) is not None:
                    super().encode(name, request)

            if timed:
                def encode_func(self, request: Any, name: Any) -> Any:
                    t0 = time.perf_counter()
                    try:
                        return super().encode_func(request, name)
                    finally:
                        stream._encoded(request, time.perf_counter() - t0)

        return Gated

    def start(self) -> None:
        """Draw and encode from the next request on (idempotent)."""
        with self._lock:
            if self.running:
                return
            self._due = 0.0
            self._cam.pre_callback = self._draw
            self._cam.start_encoder(self._encoder, self._output_obj, name="main", quality=self._quality)
            self.running = True

    def stop(self) -> None:
        """Stop the encoder and the drawing (idempotent); the camera goes on for the detector."""
        with self._lock:
            if not self.running:
                return
            self.running = False
            self._cam.pre_callback = None
            self._cam.stop_encoder(self._encoder)
            self._pending.clear()
            self._inflight.clear()

    def _failed(self, exc: Exception) -> None:
        """What Picamera2's thread would otherwise swallow or die of: kept, the drawing stopped, and told."""
        if self.error is None:
            self.error = exc
            self._cam.pre_callback = None
            if self._on_error is not None:
                self._on_error(exc)

    def _draw(self, request: Any) -> None:
        try:
            self._draw_on(request)
        except Exception as exc:  # a bug in drawing, or a buffer that cannot be mapped
            self._failed(exc)

    def _draw_on(self, request: Any) -> None:
        """Picamera2's ``pre_callback``: a request the gate lets through gets the overlay drawn on its main
        buffer."""
        now = self._clock()
        if not self.running or self.error is not None or now < self._due:
            return
        self._due = now + self._interval
        t0 = time.perf_counter()
        result, caption = self._overlay()
        from accel.watch.render import draw_cv2

        with self._picamera2.MappedArray(request, "main") as mapped:
            draw_cv2(self._cv2, mapped.array, result, caption)
        with self._lock:
            self._pending[id(request)] = time.perf_counter() - t0
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)

    def _took(self, request: Any) -> float | None:
        """The drawing time of a request the gate let through (once; it is handed to the encoder now), None
        for the others."""
        with self._lock:
            drawn = self._pending.pop(id(request), None)
            if drawn is not None:
                self._inflight[id(request)] = [drawn, time.perf_counter(), -1.0]
                while len(self._inflight) > _MAX_PENDING:
                    self._inflight.popitem(last=False)
        return drawn

    def _encoded(self, request: Any, seconds: float) -> None:
        with self._lock:
            entry = self._inflight.get(id(request))
            if entry is not None:
                entry[2] = seconds

    def _output(self, jpeg: bytes) -> None:
        """A JPEG from the encoder: encoders give them back in the order they were handed the frames."""
        with self._lock:
            if not self._inflight:
                return  # an encode from before a stop
            _, (drawn, handed, encode_s) = self._inflight.popitem(last=False)
        try:
            self._on_jpeg(jpeg, drawn + (encode_s if encode_s >= 0 else time.perf_counter() - handed))
        except Exception as exc:
            self._failed(exc)

    def describe(self) -> dict[str, Any]:
        """What the stream info records: encoder, size, and what its time counts."""
        return {"encoder": self.name, "size": list(self.size), "encode_timed": self.encode_timed}
