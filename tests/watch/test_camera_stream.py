"""The stream encoded by Picamera2 from the camera's main stream (``accel.watch.camera_stream``), driven
through a stand-in with Picamera2's API (``fake_picamera2``): the encoder it picks, the rate gate, what is
drawn (checked by decoding the JPEG with Pillow), what its time counts, start/stop, and a failure in
Picamera2's thread; then the watch worker in this process on the picamera2 source, end to end."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_picamera2 import MAIN_GREY, PACKAGE, Picamera2, V4L2Encoder, install, modules
from PIL import Image
from watch_helpers import MjpegReader, WatchProcess, wait_until

from accel.core.detections import Detections
from accel.core.errors import ConfigError, SourceError
from accel.delegates import Variant
from accel.model import load_model
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.sources import SourceSpec, open_source
from accel.sources.camera import main_stream_size
from accel.watch.camera_stream import CameraStream, StreamHooks, quality_level
from accel.watch.detector import Watched
from accel.watch.options import StreamOptions
from accel.watch.render import PALETTE


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _camera(main: tuple[int, int] = (320, 240)) -> Picamera2:
    cam = Picamera2(0)
    cam.configure(cam.create_preview_configuration(main={"size": main}, lores={"size": (160, 120), "format": "YUV420"}))
    return cam


def _box() -> Detections:
    """One detection of class 3 over the middle of the picture (x 0.25..0.75, y 0.5..0.9)."""
    return Detections(np.array([[0.25, 0.5, 0.75, 0.9]], np.float32), np.array([3], np.int32),
                      np.array([0.8], np.float32), ("a", "b", "c", "dog"))


def _stream(cam: Picamera2, hardware: bool = True, fps: float = 15.0, clock: Any = None,
            overlay: Any = None, alias: bool = True, **kw: Any) -> tuple[CameraStream, list[tuple[bytes, float]]]:
    got: list[tuple[bytes, float]] = []
    hooks = StreamHooks(overlay or (lambda: (_box(), "caption")), lambda j, s: got.append((j, s)), **kw)
    stream = CameraStream(cam, 80, fps, hooks, modules=modules(hardware, alias), clock=clock or Clock())
    return stream, got


def _decoded(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)


def _frame(cam: Picamera2, stream: CameraStream) -> None:
    """One request through the camera, then until the encoder's thread gave back what it was handed."""
    cam.capture_request()
    wait_until(lambda: stream.in_flight == 0, what="the encoder's JPEG")


def test_the_hardware_encoder_is_used_where_the_board_has_one() -> None:
    cam = _camera()
    stream, _ = _stream(cam, hardware=True)
    stream.start()
    (encoder,) = cam.encoders
    assert stream.name == "picamera2 MJPEGEncoder (hardware)" and stream.encode_timed == "hardware latency"
    assert encoder.name == "main" and encoder.started_with.name == "HIGH"  # --jpeg-quality 80
    assert cam.pre_callback is not None
    assert stream.describe() == {"encoder": "picamera2 MJPEGEncoder (hardware)", "size": [320, 240],
                                 "encode_timed": "hardware latency"}
    stream.stop()


@pytest.mark.parametrize("alias", [True, False], ids=["libav-as-MJPEGEncoder", "MJPEGEncoder-raises"])
def test_without_hardware_jpeg_encoder_runs_at_the_jpeg_quality_asked(alias: bool) -> None:
    """A Pi 5: current Picamera2's MJPEGEncoder is libav's software one (which would encode in the camera's
    thread), older Picamera2's raises; either way JpegEncoder encodes, at the quality asked."""
    cam = _camera()
    stream, got = _stream(cam, hardware=False, alias=alias)
    stream.start()
    (encoder,) = cam.encoders
    assert type(encoder).__mro__[1].__name__ == "JpegEncoder"
    assert stream.name == "picamera2 JpegEncoder" and stream.encode_timed == "cpu"
    assert encoder.q == 80 and encoder.started_with is None
    _frame(cam, stream)
    (jpeg, seconds), = got
    assert jpeg[:2] == b"\xff\xd8" and seconds > 0
    stream.stop()


def test_an_older_picamera2s_default_quality_does_not_override_the_jpeg_quality() -> None:
    class OldPicamera2(Picamera2):
        def start_encoder(self, encoder: Any, output: Any, pts: Any = None, quality: Any = None,
                          name: str | None = None) -> None:
            super().start_encoder(encoder, output, pts, quality or modules()[1].Quality.MEDIUM, name)

    cam = OldPicamera2(0)
    cam.configure(cam.create_preview_configuration(main={"size": (320, 240)},
                                                   lores={"size": (160, 120), "format": "YUV420"}))
    stream, _ = _stream(cam, hardware=False)
    stream.start()
    assert cam.encoders[0].q == 80  # not MEDIUM's 50
    stream.stop()


@pytest.mark.parametrize("quality,level", [(1, "VERY_LOW"), (29, "VERY_LOW"), (30, "LOW"), (60, "MEDIUM"),
                                           (80, "HIGH"), (85, "VERY_HIGH"), (100, "VERY_HIGH")])
def test_jpeg_quality_maps_to_picamera2_quality_levels(quality: int, level: str) -> None:
    assert quality_level(quality) == level


@pytest.mark.parametrize(("camera_fps", "jitter_ms", "expected"), [(30, 0.0, 30), (30, 3.0, 30), (25, 2.0, 30),
                                                                   (10, 0.0, 20)])
def test_at_most_fps_frames_reach_the_encoder(camera_fps: int, jitter_ms: float, expected: int) -> None:
    """Two seconds of a camera at ``camera_fps`` with its frames ``jitter_ms`` early or late, the stream at
    15 FPS: 30 frames encoded (jitter does not slow it), or every frame of a camera slower than that."""
    cam, clock = _camera(), Clock()
    stream, got = _stream(cam, fps=15.0, clock=clock)
    stream.start()
    rng = np.random.default_rng(0)
    for i in range(2 * camera_fps):
        clock.t = 100.0 + i / camera_fps + rng.uniform(-jitter_ms, jitter_ms) / 1e3
        _frame(cam, stream)
    stream.stop()
    assert len(got) == expected


def test_no_frame_is_drawn_while_two_are_still_being_encoded() -> None:
    """An encoder that stalls holds at most two frames; the camera's requests go on undrawn meanwhile."""
    cam, clock = _camera(), Clock()
    stream, got = _stream(cam, hardware=False, fps=1000.0, clock=clock)
    release = threading.Event()
    stream.start()
    encoder = cam.encoders[0]
    real = type(encoder).__mro__[1].encode_func  # the stand-in's JpegEncoder.encode_func

    def stalled(self: Any, request: Any, name: str) -> bytes:
        release.wait(30)
        return real(self, request, name)

    type(encoder).__mro__[1].encode_func = stalled
    try:
        requests = []
        for _ in range(6):
            clock.t += 0.1
            requests.append(cam.capture_request())
        assert stream.in_flight == 2 and [r.main.max() > MAIN_GREY for r in requests].count(True) == 2
    finally:
        type(encoder).__mro__[1].encode_func = real
        release.set()
    stream.stop()
    assert len(got) == 2


def test_stop_returns_while_the_encoder_still_hands_back_frames() -> None:
    """Picamera2's stop_encoder joins the encoder's thread, which outputs what it was handed first, while
    the camera's thread runs the callbacks under the camera lock: stop must not hold what they wait on."""
    cam, clock = _camera(), Clock()
    stream, got = _stream(cam, hardware=False, fps=1000.0, clock=clock)
    stream.start()
    encoder = cam.encoders[0]
    real, release = type(encoder).__mro__[1].encode_func, threading.Event()

    def stalled(self: Any, request: Any, name: str) -> bytes:  # until stop is inside stop_encoder
        release.wait(30)
        return real(self, request, name)

    def stop_encoder(encoders: Any = None) -> None:
        release.set()
        Picamera2.stop_encoder(cam, encoders)

    type(encoder).__mro__[1].encode_func = stalled
    cam.stop_encoder = stop_encoder  # type: ignore[method-assign]
    try:
        for _ in range(2):
            clock.t += 0.1
            cam.capture_request()
        stopper = threading.Thread(target=stream.stop, daemon=True)
        stopper.start()
        stopper.join(30)
    finally:
        type(encoder).__mro__[1].encode_func = real
        release.set()
    assert not stopper.is_alive(), "stop() deadlocked"
    assert len(got) == 2 and cam.encoders == []


def test_the_detections_and_caption_are_drawn_on_the_main_stream_in_its_colours() -> None:
    """Decoded with Pillow: the box's edge is the class's palette colour, its inside the camera's picture,
    the caption bar along the top is black; the row padding is not drawn on."""
    cam = _camera((320, 240))
    stream, got = _stream(cam)
    stream.start()
    cam.capture_request()
    wait_until(lambda: len(got) == 1, what="the JPEG")
    stream.stop()
    rgb = _decoded(got[0][0])
    colour = np.array(PALETTE[3])
    x0, y1 = round(0.25 * 320), round(0.9 * 240)
    left_edge = rgb[170:200, x0]  # below the label, on the box's left side
    assert np.abs(left_edge - colour).max() <= 40, left_edge[:3]
    assert np.abs(rgb[y1, 120:200] - colour).max() <= 40  # the bottom edge
    assert np.abs(rgb[175:205, 130:190] - MAIN_GREY).max() <= 12  # inside the box: the picture as it was
    assert rgb[2:16, 250:300].max() <= 30  # the caption bar, right of its text


def test_stop_stops_the_encoder_and_the_drawing_and_start_again_works() -> None:
    cam, clock = _camera(), Clock()
    stream, got = _stream(cam, clock=clock)
    stream.start()
    _frame(cam, stream)
    stream.stop()
    assert cam.encoders == [] and cam.pre_callback is None
    clock.t += 1
    request = cam.capture_request()
    assert len(got) == 1 and request.padded.max() == MAIN_GREY  # nothing drawn, nothing encoded
    stream.stop()  # idempotent
    stream.start()
    _frame(cam, stream)
    assert len(got) == 2
    stream.close()
    stream.start()  # closed: the camera is about to close, nothing starts again
    assert cam.encoders == [] and cam.pre_callback is None


def test_a_hardware_encoder_that_will_not_start_gives_way_to_jpeg_encoder() -> None:
    """V4L2 opens its device only when the encoder starts: busy, or a size the codec refuses."""
    cam = _camera()
    stream, got = _stream(cam, hardware=True)
    V4L2Encoder.fail_start = OSError(16, "Device or resource busy")
    try:
        stream.start()
    finally:
        V4L2Encoder.fail_start = None
    (encoder,) = cam.encoders
    assert type(encoder).__mro__[1].__name__ == "JpegEncoder" and encoder.q == 80
    assert stream.describe() == {"encoder": "picamera2 JpegEncoder", "size": [320, 240], "encode_timed": "cpu",
                                 "note": "the hardware MJPEG encoder would not start (OSError: [Errno 16] Device "
                                         "or resource busy): JpegEncoder instead"}
    _frame(cam, stream)
    assert len(got) == 1
    stream.stop()


def test_a_drawing_failure_in_picamera2s_thread_is_reported_once_and_drawing_stops() -> None:
    cam, clock = _camera(), Clock()
    errors: list[Exception] = []

    def broken() -> tuple[Any, str]:
        raise ValueError("bad overlay")

    stream, got = _stream(cam, overlay=broken, on_error=errors.append, clock=clock)
    stream.start()
    cam.capture_request()
    clock.t += 1
    cam.capture_request()
    assert [str(e) for e in errors] == ["bad overlay"] and cam.pre_callback is None and got == []
    stream.stop()


def test_the_picamera2_source_configures_the_main_stream_at_the_size_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    with open_source(SourceSpec("picamera2", width=160, height=120, main_size=(480, 360))) as source:
        main = source.camera.stream_configuration("main")
        assert main["size"] == (480, 360) and main["format"] == "XBGR8888"
        assert (source.width, source.height) == (160, 120)
    with open_source(SourceSpec("picamera2", width=800, height=600, main_size=(320, 240), streamed=True)) as source:
        assert source.camera.stream_configuration("main")["size"] == (800, 600)  # never smaller than lores
        assert source.camera.buffer_count == 6  # two requests in the encoder, one with the detector
    with open_source(SourceSpec("picamera2", width=160, height=120)) as source:  # compare's: nothing streamed
        assert source.camera.stream_configuration("main")["size"] == (640, 480) and source.camera.buffer_count == 4


@pytest.mark.parametrize(("lores", "asked", "main"), [
    ((160, 120), None, (640, 480)), ((800, 600), None, (800, 600)), ((416, 416), None, (640, 480)),
    ((160, 120), (320, 240), (320, 240)), ((800, 600), (320, 240), (800, 600)),
    ((416, 416), (640, 360), (740, 416)),  # 416/360 = 1.156: 739.6 up to even 740, 416
    ((640, 480), (640, 360), (854, 480)),  # 480/360 = 1.333: 853.3 up to even 854
    ((642, 480), (641, 480), (642, 480)),  # an odd side asked is rounded as lores is, not scaled for it
])
def test_the_main_stream_fits_lores_and_keeps_the_aspect_asked(lores: tuple[int, int], asked: Any,
                                                              main: tuple[int, int]) -> None:
    assert main_stream_size(lores, asked) == main


@pytest.mark.parametrize(("size", "lores", "main"), [
    ("auto", (641, 480), (642, 480)), ("auto", (None, None), (640, 480)), ("native", (416, 416), (416, 416)),
    ("native", (None, None), (640, 480)), ("320x240", (160, 120), (320, 240)),
])
def test_the_watch_asks_the_main_stream_its_stream_size(monkeypatch: pytest.MonkeyPatch, size: str,
                                                        lores: tuple[Any, Any], main: tuple[int, int]) -> None:
    """What the detector opens: the camera's main stream at the stream size, streamed (6 buffers)."""
    from accel.watch.detector import Detector

    install(monkeypatch)
    spec = SourceSpec("picamera2", width=lores[0], height=lores[1])
    job = Watched(Job(None, Variant("null"), "numpy", Settings()), StreamOptions(size=size))  # type: ignore[arg-type]
    with open_source(Detector(job, None, None, None)._spec(spec)) as source:  # type: ignore[arg-type]
        assert source.camera.stream_configuration("main")["size"] == main and source.camera.buffer_count == 6


def test_a_bad_main_size_is_one_source_error() -> None:
    with pytest.raises(SourceError, match="main_size must be two whole numbers"):
        SourceSpec("picamera2", main_size=(0, 240))


def test_stream_encoder_picamera2_needs_the_picamera2_source() -> None:
    assert StreamOptions().from_camera("picamera2") and not StreamOptions().from_camera("synthetic")
    assert not StreamOptions(encoder="simplejpeg").from_camera("picamera2")
    with pytest.raises(ConfigError, match="needs --source picamera2"):
        StreamOptions(encoder="picamera2").from_camera("synthetic")
    with pytest.raises(ConfigError, match="--stream-encoder: expected one of auto, picamera2"):
        StreamOptions(encoder="x264")


def _run_worker(job: Watched, viewers: int = 1, frames: int = 3) -> list[tuple[Any, ...]]:
    """The watch worker in this process on a socket pair until it sent ``frames`` stream frames (or failed)."""
    from accel.watch import child

    ours, theirs = socket.socketpair()
    parent, conn = Connection(ours.detach()), Connection(theirs.detach())
    worker = threading.Thread(target=child._Worker(conn, job).run, daemon=True)
    worker.start()
    parent.send(("viewers", viewers))
    said: list[tuple[Any, ...]] = []
    try:
        def enough() -> bool:
            while parent.poll(0):
                said.append(parent.recv())
            return sum(m[0] == "frame" for m in said) >= frames or any(m[0] in ("failed", "stopped") for m in said)

        wait_until(enough, timeout=60, what="stream frames from the worker")
        parent.send(("stop",))
        wait_until(lambda: not worker.is_alive() or worker.join(0.1), timeout=30, what="the worker to stop")
    finally:
        parent.close()
        conn.close()
    return said


@pytest.mark.parametrize("hardware", [True, False])
def test_the_worker_streams_the_camera_main_stream_through_picamera2(monkeypatch: pytest.MonkeyPatch,
                                                                     tiny_classifier: Any, hardware: bool) -> None:
    """The detector reads lores, Picamera2's encoder streams main at the stream size; the stream info says
    which encoder, and the camera is closed with its encoder stopped (the stand-in checks)."""
    install(monkeypatch, hardware=hardware)
    settings = Settings(warmup=1, timeout_s=10.0, live_source=SourceSpec("picamera2", width=160, height=120))
    job = Watched(Job(load_model(tiny_classifier[0]), Variant("null"), "numpy", settings),
                  StreamOptions(fps=30, size="320x240"))
    said = _run_worker(job)
    kinds = [m[0] for m in said]
    assert "failed" not in kinds, said
    ready = next(m[1] for m in said if m[0] == "ready")
    assert ready["stream"]["encoder"] == ("picamera2 MJPEGEncoder (hardware)" if hardware else "picamera2 JpegEncoder")
    assert ready["stream"]["size"] == [320, 240] and ready["source"]["width"] == 160
    jpeg = next(m[1] for m in said if m[0] == "frame")
    assert Image.open(io.BytesIO(jpeg)).size == (320, 240)
    (cam,) = Picamera2.made
    assert cam.closed and cam.encoders == []


@pytest.mark.parametrize("asked", ["auto", "picamera2"])
@pytest.mark.parametrize(("failure", "why"), [
    (SourceError("picamera2's encoders cannot be imported (No module named 'picamera2.encoders')"),
     "picamera2's encoders cannot be imported"),
    (RuntimeError("camera says no"), "RuntimeError: camera says no"),
], ids=["old-picamera2", "camera-refuses"])
def test_without_picamera2s_encoders_auto_encodes_on_the_cpu_and_picamera2_fails(
        monkeypatch: pytest.MonkeyPatch, tiny_classifier: Any, asked: str, failure: Exception, why: str) -> None:
    install(monkeypatch)

    def old_picamera2() -> Any:
        raise failure

    monkeypatch.setattr("accel.watch.camera_stream._modules", old_picamera2)
    settings = Settings(warmup=1, timeout_s=10.0, live_source=SourceSpec("picamera2", width=160, height=120))
    job = Watched(Job(load_model(tiny_classifier[0]), Variant("null"), "numpy", settings),
                  StreamOptions(fps=30, encoder=asked))
    said = _run_worker(job, frames=1)
    if asked == "picamera2":
        (failed,) = [m for m in said if m[0] == "failed"]
        assert failed[1].startswith(f"--stream-encoder picamera2: {why}"), failed
        return
    ready = next(m[1] for m in said if m[0] == "ready")
    assert not ready["stream"]["encoder"].startswith("picamera2")
    assert ready["stream"]["note"].startswith(f"Picamera2's encoder cannot be used ({why}")
    assert any(m[0] == "frame" for m in said)


def test_accel_watch_streams_the_camera_main_stream_from_the_command_line(tmp_path: Path) -> None:
    """``accel watch --source picamera2`` in a subprocess with the stand-in as its picamera2 package: the
    detector reads lores, the stream is Picamera2's encoder's, at the stream size, and Ctrl-C is exit 0."""
    site = tmp_path / "site"
    (site / "picamera2").mkdir(parents=True)
    (site / "picamera2" / "__init__.py").write_text(PACKAGE.format(here=str(Path(__file__).parent)))
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    watch = WatchProcess("--port", "0", "--delegates", "null", "--source", "picamera2", "--source-size", "160x120",
                         "--stream-size", "320x240", "--power-meter", "none", cwd=tmp_path, env={"PYTHONPATH": path})
    try:
        url = watch.url()
        port = int(url.rsplit(":", 1)[1].strip("/"))

        def streaming() -> dict[str, Any] | None:
            with urllib.request.urlopen(url + "stats.json", timeout=20) as r:
                stats = json.loads(r.read())
            return stats if stats["status"] == "running" and stats.get("stream", {}).get("encoder") else None

        stats = wait_until(streaming, timeout=60, what="the variant to run")
        assert stats["stream"]["encoder"] == "picamera2 MJPEGEncoder (hardware)"
        assert stats["stream"]["size"] == [320, 240]
        assert stats["ready"]["source"]["kind"] == "picamera2" and stats["ready"]["source"]["width"] == 160
        reader = MjpegReader(port)
        try:
            assert Image.open(io.BytesIO(reader.part())).size == (320, 240)
        finally:
            reader.close()
    finally:
        code, _, err = watch.interrupt() if watch.proc.poll() is None else (watch.proc.returncode, "", "")
        watch.kill()
    assert code == 0, err


def test_a_drawing_failure_in_picamera2s_thread_fails_the_variant_from_the_workers_thread(
        monkeypatch: pytest.MonkeyPatch, tiny_classifier: Any) -> None:
    """Picamera2's thread only records it; the worker's encode thread fails the variant, naming the error."""
    install(monkeypatch)

    def broken(*args: Any) -> None:
        raise ValueError("cannot draw")

    monkeypatch.setattr("accel.watch.render.draw_cv2", broken)
    settings = Settings(warmup=1, timeout_s=10.0, live_source=SourceSpec("picamera2", width=160, height=120))
    job = Watched(Job(load_model(tiny_classifier[0]), Variant("null"), "numpy", settings), StreamOptions(fps=30))
    said = _run_worker(job)
    (failed,) = [m for m in said if m[0] == "failed"]
    assert failed[1] == "draw+encode: ValueError: cannot draw" and "Traceback" in failed[2]
    assert not any(m[0] == "frame" for m in said)
