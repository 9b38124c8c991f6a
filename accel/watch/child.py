"""The watch worker process, ``python -m accel.watch.child FD``: FD is its end of a socket pair to the parent
(a ``multiprocessing.connection.Connection``).

Parent to worker: ``(sys.path, plugins registered by hand)``, then the ``Watched`` job, then any number of
``("viewers", n)`` and one ``("stop",)``. Worker to parent: ``("started",)`` once the imports are done,
``("ready", info)`` after the first inference and the warm-up, ``("stats", figures)`` twice a second,
``("frame", jpeg, meta)`` at most ``stream.fps`` times a second while n > 0, ``("failed", message,
traceback or None)`` when the variant cannot run, and ``("stopped",)`` at the end. The worker stops when
told to or when the parent's end closes (the parent died): it is never left running on its own. A thread
of its own that raises (drawing and encoding the stream, the figures) stops the whole worker as failed,
naming the error: it never goes on detecting with a stream that stopped.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from accel.core.errors import AccelError, SourceError
from accel.watch.detector import Detector, Latest, Watched
from accel.watch.render import Renderer
from accel.watch.window import Window

__all__ = ["main"]

_STATS_S = 0.5


class _Worker:
    def __init__(self, conn: Connection, job: Watched) -> None:
        self.conn, self.job = conn, job
        self._send_lock = threading.Lock()
        self.failed = False
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.viewers = 0
        self.fps = 0.0  # the detector's, as last reported: the stream frames' caption
        self.window = Window()
        self.latest = Latest()
        self.renderer: Renderer | None = None
        self.camera: Any = None  # a CameraStream when Picamera2 encodes the stream
        self._jpeg: tuple[bytes, dict[str, Any]] | None = None  # its newest JPEG, not sent yet
        self._jpeg_lock = threading.Lock()
        self.detector = Detector(job, self.window, self.latest, self._emit)

    def send(self, *msg: Any) -> None:
        try:
            with self._send_lock:
                self.conn.send(msg)
        except (OSError, EOFError):  # the parent is gone: stop
            self.stop.set()

    def _emit(self, kind: str, data: Any) -> None:
        if kind == "closing":  # the source closes next: Picamera2's encoder stops first, for good
            if self.camera is not None:
                self.camera.close()
            return
        if kind == "ready":
            data = {**data, "stream": self._stream()}
        self.send(kind, data)

    def _stream(self) -> dict[str, Any]:
        """Make the stream's encoder once the source is open: Picamera2's over the camera's main stream
        (``--stream-encoder auto`` falls back to the CPU's when Picamera2's encoders or OpenCV cannot be
        imported), else a ``Renderer`` of the frames the detector saw. What it is, for the stream info."""
        stream, source = self.job.stream, self.detector.source
        settings = self.job.settings
        kind = settings.live_source.kind if settings.live_source is not None else ""
        fallback = ""
        if stream.from_camera(kind):
            from accel.watch.camera_stream import CameraStream, StreamHooks

            try:  # the encode thread reports an error by waking this one
                hooks = StreamHooks(self._overlay, self._camera_jpeg, on_error=lambda exc: self.wake.set())
                self.camera = CameraStream(source.camera, stream.quality, stream.fps, hooks)
                return self._camera_info()
            except Exception as exc:  # no encoders (an old picamera2), no OpenCV to draw with, a camera that says no
                why = f"{exc}" if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
                if isinstance(exc, ImportError) and exc.name == "cv2":
                    why += " (OpenCV draws the detections: sudo apt install python3-opencv)"
                if stream.encoder == "picamera2":
                    raise SourceError(f"--stream-encoder picamera2: {why}") from None
                fallback = f"Picamera2's encoder cannot be used ({why}): encoded on the CPU"
        encoder = "auto" if stream.encoder in ("auto", "picamera2") else stream.encoder
        self.renderer = Renderer(stream.frame_size(source.width, source.height), stream.quality, encoder)
        info: dict[str, Any] = {"encoder": self.renderer.encoder.name, "size": list(self.renderer.size),
                                "fps_limit": stream.fps}
        return {**info, "note": fallback} if fallback else info

    def _camera_info(self) -> dict[str, Any]:
        return {**self.camera.describe(), "fps_limit": self.job.stream.fps}

    def _caption(self, result: Any) -> str:
        return f"{self.job.label}  frame {self.window.total}  {self.fps:.1f} FPS  {len(result)} detections"

    def _overlay(self) -> tuple[Any, str]:
        """What Picamera2's stream draws on its next frame: the newest answers and the caption."""
        result = self.latest.result
        return result, self._caption(result) if result is not None else self.job.label

    def _details(self, result: Any) -> dict[str, Any]:
        """What goes with a stream frame: the frame count and its detections."""
        return {"frame": self.window.total, "detections": len(result) if result is not None else 0}

    def _camera_jpeg(self, jpeg: bytes, seconds: float) -> None:
        """A JPEG from Picamera2's encoder thread: counted, and left for the encode thread to send (a send can
        block on a busy parent, and the camera's requests wait for that thread); a newer one replaces it."""
        self.window.add_encode(time.monotonic(), seconds, len(jpeg))
        with self._jpeg_lock:  # not the send lock: a send may be blocked
            self._jpeg = (jpeg, self._details(self.latest.result))
        self.wake.set()

    def _camera(self, camera: Any) -> None:
        """The encode thread's work when Picamera2 encodes: run its encoder while watched, send its JPEGs, and
        fail the variant (here, not in Picamera2's thread) when drawing or encoding failed there."""
        if camera.error is not None:
            raise camera.error
        if self.viewers > 0:
            camera.start()
        else:
            camera.stop()
        self.wake.wait(0.25)
        self.wake.clear()
        with self._jpeg_lock:
            ready, self._jpeg = self._jpeg, None
        if ready is not None:
            self.send("frame", *ready)

    def listen(self) -> None:
        try:
            while not self.stop.is_set():
                msg = self.conn.recv()
                if msg[0] == "viewers":
                    self.viewers = int(msg[1])
                    self.wake.set()
                elif msg[0] == "stop":
                    self.stop.set()
        except (OSError, EOFError):
            self.stop.set()
        self.wake.set()

    def encode(self) -> None:
        """Draw and encode the newest frame at most ``stream.fps`` times a second while anyone watches."""
        interval = 1.0 / self.job.stream.fps
        seq, due = 0, 0.0
        while not self.stop.is_set():
            if self.camera is not None:  # Picamera2 draws and encodes in its own threads, only while watched
                self._camera(self.camera)
                continue
            renderer = self.renderer
            if self.viewers <= 0 or renderer is None:
                self.wake.wait(0.25)
                self.wake.clear()
                continue
            wait = due - time.monotonic()
            if wait > 0:
                self.stop.wait(wait)
                continue
            got = self.latest.wait(seq, 0.25)
            if got is None:
                continue
            seq, frame, result = got
            due = time.monotonic() + interval
            t0 = time.perf_counter()
            jpeg = renderer.render(frame, result, self._caption(result))
            self.window.add_encode(time.monotonic(), time.perf_counter() - t0, len(jpeg))
            self.send("frame", jpeg, self._details(result))

    def report(self) -> None:
        while not self.stop.wait(_STATS_S):
            figures = self.window.summary()
            self.fps = figures["fps"]
            figures["drops"] = self.detector.drops()
            if self.camera is not None:  # what encodes can change once it starts (a hardware encoder that failed)
                figures["stream"] = self._camera_info()
            result = self.latest.result
            if result is not None:
                names = result.labels or tuple(str(int(c)) for c in result.class_ids)
                figures["detections"]["top"] = [{"label": names[i], "score": round(float(result.scores[i]), 3)}
                                                for i in range(min(5, len(result)))]
            self.send("stats", figures)

    def _guarded(self, work: Callable[[], None], what: str) -> Callable[[], None]:
        """``work`` for a thread: what it raises fails the variant (once) and stops the worker."""
        def run() -> None:
            try:
                work()
            except Exception as exc:  # a bug in drawing, encoding or an encoder's library
                self._fail(f"{what}: {type(exc).__name__}: {exc}", traceback.format_exc())
        return run

    def _fail(self, message: str, trace: str | None) -> None:
        """Say the variant failed (the first failure only: what came after it is its consequence) and stop."""
        with self._send_lock:
            first, self.failed = not self.failed, True
        if first:
            self.send("failed", message, trace)
        self.stop.set()
        self.wake.set()

    def run(self) -> None:
        threads = [threading.Thread(target=self._guarded(t, what), name=n, daemon=True)
                   for t, n, what in ((self.listen, "listen", "the worker's connection"),
                                      (self.encode, "encode", "draw+encode"), (self.report, "report", "figures"))]
        for t in threads:
            t.start()
        try:
            self.detector.run(self.stop)
        except AccelError as exc:
            self._fail(str(exc), None)
        except Exception as exc:  # a plugin's bug: the page says what it was, the log keeps the traceback
            self._fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            self.stop.set()
            self.wake.set()
            for t in threads[1:]:
                t.join(timeout=5)
            self.send("stopped")


def main(argv: list[str]) -> int:
    """Run the job the parent sends on the connection whose descriptor is ``argv[1]``."""
    from accel.run.worker import register_plugins  # delegates registered by hand in the parent, again here

    conn = Connection(int(argv[1]))
    try:
        sys_path, plugins = conn.recv()
        sys.path[:0] = [p for p in sys_path if p not in sys.path]
        register_plugins(plugins)
        job = conn.recv()
        conn.send(("started",))
    except (OSError, EOFError):
        return 0
    try:
        _Worker(conn, job).run()
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
