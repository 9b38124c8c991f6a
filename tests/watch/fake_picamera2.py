"""A stand-in for the parts of Picamera2 that ``accel watch`` streams through, with Picamera2's API and
behaviour as its sources have them (picamera2 0.3: ``picamera2.py``, ``encoders/``, ``outputs/``):

- ``Picamera2.start_encoder(encoder, output, name=, quality=)`` sets ``encoder.output`` (which takes only
  ``Output`` instances) and its name, then ``encoder.start(quality)`` and, under the camera lock, adds it;
  ``stop_encoder(encoder)`` stops it (joining its threads) and then, under the camera lock, removes it.
- The camera's event loop, with the camera lock held, calls ``pre_callback(request)`` for each completed
  request, then ``encoder.encode(encoder.name, request)`` for every running encoder; here that happens in
  ``capture_request`` before the request is handed out, as a batch of one.
- Encoders give their JPEGs back from a thread of their own, in order, and ``stop`` joins that thread
  once it has output what was queued (MultiEncoder's output thread, V4L2Encoder's poll thread); the
  ``Output.outputframe`` they call takes (frame, keyframe, timestamp, packet, audio).
- ``MJPEGEncoder`` is the V4L2 encoder (a ``V4L2Encoder``); without the hardware (a Pi 5) current
  Picamera2 puts libav's software ``LibavMjpegEncoder`` under that name (``_hw_encoder_available`` False),
  older Picamera2 raises ``RuntimeError("Hardware MJPEG not available on this platform")``.
- ``JpegEncoder(q=)`` encodes ``request.make_array(name)`` with colour space "RGBX" for ``XBGR8888`` (its
  ``FORMAT_TABLE``) in ``encode_func(request, name)``; ``_setup(quality)`` keeps a ``q`` given unless a
  quality is passed.
- ``MappedArray(request, "main").array``: the stream's buffer as (h, w, 4) for the 32-bit formats, row
  padding sliced off, writable. Buffers in ``XBGR8888`` are R,G,B,X bytes (FACTS.md: ``XRGB8888`` is
  B,G,R,A in memory).

Encoding is done with Pillow, so the JPEG a test decodes is what was in the main buffer when it was encoded.
"""

from __future__ import annotations

import enum
import io
import queue
import sys
import threading
import time
import types
from typing import Any

import numpy as np
import pytest
from PIL import Image

MAIN_GREY = 90  # the main stream's picture: flat grey, so what is drawn on it stands out


class Quality(enum.Enum):
    VERY_LOW = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    VERY_HIGH = 4


class Output:
    def __init__(self, pts: Any = None) -> None:
        self.recording = False

    def start(self) -> None:
        self.recording = True

    def stop(self) -> None:
        self.recording = False

    def outputframe(self, frame: Any, keyframe: bool = True, timestamp: Any = None, packet: Any = None,
                    audio: bool = False) -> None:
        pass


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


class Encoder:
    def __init__(self) -> None:
        self._output: list[Output] = []
        self.name: str | None = None
        self.running = False
        self.started_with: Any = "not started"

    @property
    def output(self) -> Any:
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value: Any) -> None:
        if not isinstance(value, Output):
            raise RuntimeError("Must pass Output")
        self._output = [value]

    def start(self, quality: Any = None) -> None:
        if self.running:
            raise RuntimeError("Encoder already running")
        self._setup(quality)
        self.started_with = quality
        self.running = True
        for out in self._output:
            out.start()
        self._start()

    def stop(self) -> None:
        if not self.running:
            raise RuntimeError("Encoder already stopped")
        self.running = False
        self._stop()
        for out in self._output:
            out.stop()

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass

    def _setup(self, quality: Any) -> None:
        pass

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: Any = None, packet: Any = None,
                    audio: bool = False) -> None:
        for out in self._output:
            out.outputframe(frame, keyframe, timestamp, packet, audio)


class _Threaded(Encoder):
    """Frames queued by ``encode`` (in the camera's thread) and encoded and output in order by a thread of
    the encoder's own, which ``stop`` joins after it has output everything queued (as MultiEncoder's output
    thread and V4L2Encoder's poll thread do)."""

    def _start(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def encode(self, name: str, request: Any) -> None:
        self._queue.put(self.encode_func(request, name) if self.encode_in_camera_thread else (request, name))

    encode_in_camera_thread = False

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            self.outputframe(item if isinstance(item, bytes) else self.encode_func(*item), True, 0)

    def encode_func(self, request: Any, name: str) -> bytes:
        raise NotImplementedError


class V4L2Encoder(_Threaded):
    """The hardware encoder: the buffer is copied to the device in the camera's thread (here: encoded),
    the JPEG comes back on its poll thread."""

    encode_in_camera_thread = True
    fail_start: Exception | None = None  # what opening the device raises (it is opened when the encoder starts)

    def __init__(self, bitrate: int | None = None) -> None:
        super().__init__()
        self.bitrate = bitrate

    def _start(self) -> None:
        if V4L2Encoder.fail_start is not None:
            raise V4L2Encoder.fail_start
        super()._start()

    def _setup(self, quality: Any) -> None:
        if quality is not None or self.bitrate is None:
            table = {Quality.VERY_LOW: 16, Quality.LOW: 20, Quality.MEDIUM: 30, Quality.HIGH: 40, Quality.VERY_HIGH: 50}
            self.bitrate = table[Quality.MEDIUM if quality is None else quality] * 1_000_000

    def encode_func(self, request: Any, name: str) -> bytes:
        return _jpeg(request.make_array(name)[..., :3], 85)


class MJPEGEncoder(V4L2Encoder):
    def __init__(self, bitrate: int | None = None) -> None:
        if not _HARDWARE[0]:
            raise RuntimeError("Hardware MJPEG not available on this platform")
        super().__init__(bitrate)


class LibavMjpegEncoder(Encoder):
    """libav's software MJPEG: what current Picamera2 names ``MJPEGEncoder`` without the hardware."""

    def encode(self, name: str, request: Any) -> None:
        self.outputframe(_jpeg(request.make_array(name)[..., :3], 85))


class JpegEncoder(_Threaded):
    FORMAT_TABLE = {"XBGR8888": "RGBX", "XRGB8888": "BGRX", "BGR888": "RGB", "RGB888": "BGR"}

    def __init__(self, num_threads: int = 4, q: int | None = None) -> None:
        super().__init__()
        self.q = q

    def _setup(self, quality: Any) -> None:
        if quality is not None or self.q is None:
            table = {Quality.VERY_LOW: 25, Quality.LOW: 35, Quality.MEDIUM: 50, Quality.HIGH: 65, Quality.VERY_HIGH: 80}
            self.q = table[Quality.MEDIUM if quality is None else quality]

    def encode_func(self, request: Any, name: str) -> bytes:
        assert self.FORMAT_TABLE[request.config[name]["format"]] == "RGBX"
        return _jpeg(request.make_array(name)[..., :3], int(self.q or 50))


_HARDWARE = [True]


class Request:
    """A completed request with a lores buffer (I420, flat grey) and a main one (XBGR8888, flat grey)."""

    def __init__(self, config: dict[str, Any], n: int) -> None:
        self.config = config
        mw, mh = config["main"]["size"]
        self.padded = np.full((mh, config["main"]["stride"]), MAIN_GREY, np.uint8)  # rows of stride bytes
        self.main = self.padded[:, : mw * 4].reshape(mh, mw, 4)  # a view, as MappedArray maps it
        lw, lh = config["lores"]["size"]
        self.lores = np.full(config["lores"]["stride"] * lh * 3 // 2, 128, np.uint8)
        self.metadata = {"SensorTimestamp": 0, "FrameDuration": 33_333}
        self.released = 0

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main"
        return self.main.copy()

    def make_buffer(self, name: str) -> np.ndarray:
        assert name == "lores"
        return self.lores.copy()

    def get_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)

    def release(self) -> None:
        self.released += 1


class MappedArray:
    def __init__(self, request: Request, stream: str) -> None:
        assert stream == "main"
        self.array = request.main

    def __enter__(self) -> MappedArray:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class Picamera2:
    """The camera: ``configure`` as Picamera2 sizes streams (strides rounded up: lores to 64 bytes, main to
    1 KiB so that its rows are padded), requests
    made on demand, each run through ``pre_callback`` and the running encoders first."""

    made: list[Picamera2] = []
    frame_s = 0.0  # a sensor's frame time: capture_request waits it (0: at once)

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.camera_properties = {"Model": "imx708"}
        self.pre_callback: Any = None
        self.encoders: list[Encoder] = []
        self.config: dict[str, Any] = {}
        self.frames = 0
        self.started = False
        self.closed = False
        self.lock = threading.Lock()  # held by the event loop while it runs pre_callback and the encoders
        Picamera2.made.append(self)

    def create_preview_configuration(self, main: dict[str, Any], lores: dict[str, Any],
                                     buffer_count: int = 4) -> dict[str, Any]:
        return {"main": {"format": "XBGR8888", **main}, "lores": dict(lores), "buffer_count": buffer_count}

    def configure(self, config: dict[str, Any]) -> None:
        (mw, mh), (lw, lh) = config["main"]["size"], config["lores"]["size"]
        if lw > mw or lh > mh:
            raise RuntimeError("lores stream dimensions may not exceed main stream")
        self.config = {"main": {**config["main"], "stride": -(-mw * 4 // 1024) * 1024},  # padded rows
                       "lores": {**config["lores"], "stride": -(-lw // 64) * 64}}
        self.buffer_count = config["buffer_count"]

    def stream_configuration(self, name: str) -> dict[str, Any]:
        return dict(self.config[name])

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if self.encoders:
            raise AssertionError("the camera was closed with an encoder running")
        self.closed = True

    def start_encoder(self, encoder: Encoder, output: Output, pts: Any = None, quality: Any = None,
                      name: str | None = None) -> None:
        encoder.output = output
        if name not in self.config:
            raise RuntimeError(f"Encode stream {name} was not defined")
        encoder.name = name
        encoder.start(quality=quality)
        with self.lock:
            self.encoders.append(encoder)

    def stop_encoder(self, encoders: Any = None) -> None:
        remove = [encoders] if encoders is not None else list(self.encoders)
        for encoder in remove:
            encoder.stop()
        with self.lock:
            for encoder in remove:
                self.encoders.remove(encoder)

    def capture_request(self) -> Request:
        if self.frame_s:
            time.sleep(self.frame_s)
        request = Request(self.config, self.frames)
        self.frames += 1
        with self.lock:
            if self.pre_callback:
                self.pre_callback(request)
            for encoder in self.encoders:
                encoder.encode(encoder.name, request)
        return request


def modules(hardware: bool = True, alias: bool = True) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """``picamera2``, ``picamera2.encoders`` and ``picamera2.outputs`` as modules of the stand-in: without
    ``hardware``, ``MJPEGEncoder`` is libav's software one (``alias``, as current Picamera2 has it) or
    raises (older Picamera2)."""
    _HARDWARE[0] = hardware
    Picamera2.made = []
    top = types.ModuleType("picamera2")
    top.Picamera2 = Picamera2  # type: ignore[attr-defined]
    top.MappedArray = MappedArray  # type: ignore[attr-defined]
    encoders = types.ModuleType("picamera2.encoders")
    for cls in (Quality, Encoder, MJPEGEncoder, JpegEncoder, LibavMjpegEncoder):
        setattr(encoders, cls.__name__, cls)
    encoders._hw_encoder_available = hardware  # type: ignore[attr-defined]
    if not hardware and alias:
        encoders.MJPEGEncoder = LibavMjpegEncoder  # type: ignore[attr-defined]
    outputs = types.ModuleType("picamera2.outputs")
    outputs.Output = Output  # type: ignore[attr-defined]
    top.encoders, top.outputs = encoders, outputs  # type: ignore[attr-defined]
    return top, encoders, outputs


def install(monkeypatch: pytest.MonkeyPatch, hardware: bool = True) -> tuple[types.ModuleType, ...]:
    """The stand-in as the ``picamera2`` package for this test."""
    mods = modules(hardware)
    for mod in mods:
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return mods


#: ``picamera2/__init__.py`` of a package that is this stand-in, for an ``accel watch`` in a subprocess
#: (``PYTHONPATH`` the package's folder): a camera at 30 fps with the hardware MJPEG encoder.
PACKAGE = """
import sys
sys.path.insert(0, {here!r})
import fake_picamera2 as _fake
_top, encoders, outputs = _fake.modules(hardware=True)
sys.modules["picamera2.encoders"], sys.modules["picamera2.outputs"] = encoders, outputs
Picamera2, MappedArray = _fake.Picamera2, _fake.MappedArray
Picamera2.frame_s = 1 / 30
"""
