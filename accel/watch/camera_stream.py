"""The stream encoded by Picamera2 itself from the camera's main stream, while the lores stream feeds the model.

With the picamera2 source the ISP gives two streams of one picture: lores, sized near the model's input,
which the detector reads, and main, at the stream's size, which Picamera2's encoder turns into JPEG: its
hardware MJPEG encoder (``MJPEGEncoder`` on V4L2) where the board has one (a Pi 4), else its
``JpegEncoder`` (libjpeg-turbo through simplejpeg, in Picamera2's own threads; a Pi 5 has no video
encoder, and there Picamera2's ``MJPEGEncoder`` is libav's software one, which encodes in the camera's
thread, so it is not used). Nothing is converted or scaled on the CPU. The caption and the detections of
the newest finished frame are drawn onto the main buffer, in place, in Picamera2's ``pre_callback``
(``MappedArray``), for the frames that are encoded only; so the boxes are the newest answers over a
picture taken after the frame they answer, later by about the detector's end-to-end latency, as in any
live overlay.

At most ``fps`` frames a second reach the encoder (Picamera2 offers every request to every running
encoder; the gate lets one through when it is due, a quarter of an interval early allowed for the
camera's jitter), and none while two are still being encoded. The encoder runs only while somebody
watches (``start``/``stop``); ``close`` stops it for good before the camera closes.

Picamera2 calls ``pre_callback`` and the encoders with its camera lock held, and its encoders give their
JPEGs back from threads of their own, which ``stop_encoder`` joins: so the callbacks here only update a
few fields under a lock of their own that nothing holds while calling into Picamera2, and ``on_jpeg``
must not block (the worker queues the JPEG for its own thread to send).

What it costs is measured per stream frame: the drawing (CPU, in the camera's thread) plus, for
``JpegEncoder``, the encoding in its thread; for the hardware encoder the time from handing the frame over
to its JPEG coming back (``encode_timed`` says which: "cpu" or "hardware latency").

Picamera2 is imported only here (``modules`` lets tests pass stand-ins with its API).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accel.core.detections import Classification, Detections
from accel.core.errors import SourceError

__all__ = ["CameraStream", "StreamHooks", "quality_level"]

Result = Detections | Classification
_MAX_PENDING = 16  # drawn requests no encoder took (the encoder stopped meanwhile): the oldest dropped
_IN_FLIGHT = 2  # frames handed to the encoder whose JPEG has not come back: no more are drawn until one does
_EARLY = 0.25  # of an interval: a request this early still goes (a 30 fps camera's jitter at 15 fps)


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


def _is_v4l2(encoder: Any) -> bool:
    """Whether Picamera2's ``MJPEGEncoder`` is its V4L2 (hardware) one, not libav's software one that
    current Picamera2 puts under that name on a board without the hardware."""
    return any(cls.__name__ == "V4L2Encoder" for cls in type(encoder).__mro__)


@dataclass(frozen=True)
class StreamHooks:
    """What a ``CameraStream`` calls: ``overlay()`` gives what to draw on the next frame (answers, caption);
    each JPEG goes to ``on_jpeg(jpeg, seconds)`` (what drawing and encoding it took; it must not block);
    ``on_error(exc)`` hears of a failure in Picamera2's threads (once; in that thread, so it must not block
    either)."""

    overlay: Callable[[], tuple[Result | None, str]]
    on_jpeg: Callable[[bytes, float], None]
    on_error: Callable[[Exception], None] | None = None


class CameraStream:
    """Picamera2's encoder over ``camera``'s main stream, at JPEG ``quality`` and at most ``fps`` frames a
    second, calling its ``hooks``."""

    def __init__(self, camera: Any, quality: int, fps: float, hooks: StreamHooks, *,
                 modules: tuple[Any, Any, Any] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        overlay, on_jpeg, on_error = hooks.overlay, hooks.on_jpeg, hooks.on_error
        import cv2

        from accel.watch.render import draw_cv2

        self._cv2, self._draw_cv2 = cv2, draw_cv2
        self._picamera2, encoders, outputs = modules or _modules()
        self._encoders, self._q = encoders, quality
        self.note = ""
        self._cam, self._overlay, self._on_jpeg, self._clock = camera, overlay, on_jpeg, clock
        self._on_error = on_error
        self.error: Exception | None = None
        self._interval = 1.0 / fps
        self._due = 0.0
        self._lock = threading.Lock()  # the fields below; never held while calling Picamera2
        self._life = threading.Lock()  # start, stop, close: one at a time
        self._pending: collections.OrderedDict[int, float] = collections.OrderedDict()  # id(request) -> draw s
        # id(request) -> [draw s, when handed to the encoder, encode s on the CPU or -1], in the order handed
        self._inflight: collections.OrderedDict[int, list[float]] = collections.OrderedDict()
        main = camera.stream_configuration("main")
        self.size = (int(main["size"][0]), int(main["size"][1]))
        self.running = self.closed = False
        self._encoder = self._pick()
        self.hardware = _is_v4l2(self._encoder)
        stream = self

        class _Output(outputs.Output):  # type: ignore[misc, name-defined]
            def outputframe(self, frame: Any, *args: Any, **kwargs: Any) -> None:
                stream._output(bytes(frame))

        self._output_obj = _Output()

    @property
    def name(self) -> str:
        return "picamera2 MJPEGEncoder (hardware)" if self.hardware else "picamera2 JpegEncoder"

    @property
    def encode_timed(self) -> str:
        """What the draw+encode time counts besides the drawing."""
        return "hardware latency" if self.hardware else "cpu"

    def _pick(self) -> Any:
        """The hardware MJPEG encoder where the board has one, else JpegEncoder."""
        if getattr(self._encoders, "_hw_encoder_available", True):
            try:
                hardware = self._gated(self._encoders.MJPEGEncoder)()
            except RuntimeError:  # "Hardware MJPEG not available on this platform" (older Picamera2)
                pass
            else:
                if _is_v4l2(hardware):
                    return hardware
        return self._jpeg_encoder()

    def _jpeg_encoder(self) -> Any:
        return self._gated(self._encoders.JpegEncoder, jpeg=True)(q=self._q)

    def _gated(self, base: type, *, jpeg: bool = False) -> type:
        """``base`` (a Picamera2 encoder class) taking only the requests the gate let through; for
        ``JpegEncoder`` its encoding timed and its ``q`` kept (older Picamera2 passes a default quality)."""
        stream = self

        class Gated(base):  # type: ignore[misc, valid-type]
            def encode(self, name: Any, request: Any) -> None:
                if stream._took(request):
                    super().encode(name, request)

            if jpeg:
                def _setup(self, quality: Any) -> None:
                    super()._setup(None)  # keeps the q it was made with

                def encode_func(self, request: Any, name: Any) -> Any:
                    t0 = time.perf_counter()
                    try:
                        out = super().encode_func(request, name)
                    except Exception as exc:  # its output thread would die of it without a word
                        stream._failed(exc)
                        raise
                    stream._encoded(request, time.perf_counter() - t0)
                    return out

        return Gated

    def start(self) -> None:
        """Draw and encode from the next request on (idempotent; nothing once closed or failed)."""
        with self._life:
            if self.running or self.closed or self.error is not None:
                return
            with self._lock:
                self._due = 0.0
            self._cam.pre_callback = self._draw
            try:
                self._cam.start_encoder(self._encoder, self._output_obj, name="main", quality=self._quality())
            except Exception as exc:  # V4L2 opens the device only now: busy, or a size the codec refuses
                if not self.hardware:
                    self._cam.pre_callback = None
                    raise
                self._software(exc)
                self._cam.start_encoder(self._encoder, self._output_obj, name="main", quality=None)
            self.running = True

    def _quality(self) -> Any:
        """The quality level a bitrate-driven (hardware) encoder is started with; JpegEncoder has its q."""
        return getattr(self._encoders.Quality, quality_level(self._q)) if self.hardware else None

    def _software(self, why: Exception) -> None:
        """Picamera2's JpegEncoder instead of a hardware encoder that would not start."""
        with contextlib.suppress(Exception):
            self._encoder.stop()  # Picamera2 may have marked it running before its device failed
        self._encoder, self.hardware = self._jpeg_encoder(), False
        self.note = f"the hardware MJPEG encoder would not start ({type(why).__name__}: {why}): JpegEncoder instead"

    def stop(self) -> None:
        """Stop the encoder and the drawing (idempotent); the camera goes on for the detector. Picamera2
        joins its encoder's threads here, which hand back what they were encoding first."""
        with self._life:
            if not self.running:
                return
            self.running = False
            self._cam.pre_callback = None
            self._cam.stop_encoder(self._encoder)
            with self._lock:
                self._pending.clear()
                self._inflight.clear()

    def close(self) -> None:
        """Stop for good: the camera is about to close."""
        with self._life:
            self.closed = True
        self.stop()

    def _failed(self, exc: Exception) -> None:
        """What Picamera2's threads would otherwise swallow or die of: kept, the drawing stopped, and told."""
        with self._lock:
            first, self.error = self.error is None, self.error or exc
        if first:
            self._cam.pre_callback = None
            if self._on_error is not None:
                self._on_error(exc)

    def _draw(self, request: Any) -> None:
        try:
            self._draw_on(request)
        except Exception as exc:  # a bug in drawing, or a buffer that cannot be mapped
            self._failed(exc)

    def _draw_on(self, request: Any) -> None:
        """Picamera2's ``pre_callback`` (in its camera thread): a request the gate lets through gets the
        overlay drawn on its main buffer."""
        now = self._clock()
        with self._lock:
            if not self.running or self.error is not None or len(self._inflight) >= _IN_FLIGHT \
                    or now < self._due - _EARLY * self._interval:
                return
            # on the grid of due times while on time (jitter does not slow it), from now when late
            self._due = self._due + self._interval if now < self._due + self._interval else now + self._interval
        t0 = time.perf_counter()
        result, caption = self._overlay()
        with self._picamera2.MappedArray(request, "main") as mapped:
            self._draw_cv2(self._cv2, mapped.array, result, caption)
        with self._lock:
            self._pending[id(request)] = time.perf_counter() - t0
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)

    def _took(self, request: Any) -> bool:
        """Whether the gate let ``request`` through (once; it is handed to the encoder now)."""
        with self._lock:
            drawn = self._pending.pop(id(request), None)
            if drawn is None:
                return False
            self._inflight[id(request)] = [drawn, time.perf_counter(), -1.0]
            return True

    def _encoded(self, request: Any, seconds: float) -> None:
        with self._lock:
            entry = self._inflight.get(id(request))
            if entry is not None:
                entry[2] = seconds

    def _output(self, jpeg: bytes) -> None:
        """A JPEG from the encoder's thread: encoders give them back in the order they were handed the frames."""
        with self._lock:
            if not self._inflight:
                return  # an encode from before a stop
            _, (drawn, handed, encode_s) = self._inflight.popitem(last=False)
        try:
            self._on_jpeg(jpeg, drawn + (encode_s if encode_s >= 0 else time.perf_counter() - handed))
        except Exception as exc:
            self._failed(exc)

    @property
    def in_flight(self) -> int:
        """Frames handed to the encoder whose JPEG has not come back yet."""
        with self._lock:
            return len(self._inflight)

    def describe(self) -> dict[str, Any]:
        """What the stream info records: encoder, size, what its time counts, and why it is not the one
        first chosen (``note``, when so)."""
        info = {"encoder": self.name, "size": list(self.size), "encode_timed": self.encode_timed}
        return {**info, "note": self.note} if self.note else info
