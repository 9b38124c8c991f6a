"""Frame sources: where the frames of a comparison come from.

A source is named by a short text (``--source`` on the command line, ``source`` in accel.toml):

    synthetic            deterministic leaf scenes, 640x480 I420 (no hardware needed; the default)
    synthetic:320x240    the same at another size
    image:PATH           a picture, or a folder of pictures (sorted by name), looping
    video:PATH           a video file through OpenCV, looping
    v4l2:0               a USB/V4L2 camera (/dev/video0) through OpenCV
    picamera2            the Raspberry Pi camera (camera 0) through Picamera2's lores stream
    picamera2:1          the second Raspberry Pi camera

``parse_source`` turns the text into ``(kind, target)``; a ``SourceSpec`` adds the requested size, pixel
format, seed, looping and, for live runs, a rate; ``open_source`` opens it. With a rate, synthetic scenes,
pictures and videos deliver frames from their own thread at that rate, keeping only the newest few, as a
camera does (``accel.sources.paced``); the cameras pace themselves. Optional dependencies (OpenCV,
picamera2) are imported only by the source that needs them. ``capture`` reads frames once for replay:
every variant then sees the identical frames.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from accel.core.errors import SourceError
from accel.core.frames import Frame, PixelFormat

__all__ = ["KINDS", "MAX_PIXELS", "SELF_PACED", "SIZE", "Source", "SourceSpec", "capture", "check_source",
           "import_cv2", "open_source", "own_rate", "pacing", "parse_source"]

KINDS: tuple[str, ...] = ("synthetic", "image", "video", "v4l2", "picamera2")
_EXAMPLES = '"synthetic", "synthetic:640x480", "image:photos/", "video:clip.mp4", "v4l2:0", "picamera2"'
SIZE = re.compile(r"^(\d+)[xX](\d+)$")  # WIDTHxHEIGHT
#: The most pixels a frame or picture may have by default (``[pipeline] max_pixels``): a 48 MP photo fits; a
#: decompression bomb, or synthetic scenes of 100000x100000 (about 15 GB a frame), do not.
MAX_PIXELS = 50_000_000


def _unknown_kind(kind: str, text: str) -> SourceError:
    return SourceError(
        f"unknown source kind {kind!r} in {text!r}: expected one of {', '.join(KINDS)}, e.g. {_EXAMPLES}"
    )


def parse_source(text: str) -> tuple[str, str]:
    """Split a source text into ``(kind, target)``.

    ``target`` is a path for ``image``/``video``, a device number for ``v4l2`` (``/dev/videoN`` is accepted
    and becomes ``N``; empty means ``0``) and ``picamera2`` (empty means camera 0), and ``""`` or
    ``"WxH"`` for ``synthetic``. Raises ``SourceError`` naming the valid kinds for an unknown kind or a
    malformed target.
    """
    stripped = text.strip()
    kind, _, target = stripped.partition(":")
    kind = kind.strip().lower()
    target = target.strip()
    if kind not in KINDS:
        raise _unknown_kind(kind, text)
    if kind in ("image", "video") and not target:
        raise SourceError(f"source {text!r}: {kind} needs a path, e.g. \"{kind}:path/to/file\"")
    if kind == "v4l2":
        target = target.removeprefix("/dev/video") or "0"
    if kind in ("v4l2", "picamera2") and target and not target.isdigit():
        raise SourceError(f"source {text!r}: expected a camera number after '{kind}:', e.g. \"{kind}:0\"")
    if kind == "synthetic" and target and not SIZE.match(target):
        raise SourceError(f"source {text!r}: expected a size WIDTHxHEIGHT after 'synthetic:', e.g. 640x480")
    return kind, target


@dataclass(frozen=True)
class SourceSpec:
    """What to open: ``kind`` and ``target`` as ``parse_source`` gives them, plus capture options.

    ``width``/``height``: requested frame size (``None``: the source's native size; for ``synthetic`` a
    ``WxH`` target is used when they are not given). ``format``: requested pixel format (``None``: the
    source's natural one: I420 for synthetic and picamera2, RGB for images, B,G,R bytes for video and
    V4L2). ``seed``: synthetic scenes. ``loop``: image and video sources start again when exhausted.
    ``main_size``, ``streamed``: picamera2 only, the size asked for the camera's main stream beside the
    lores one read (``None``: Picamera2Source's default), and whether it is streamed (``accel watch``).
    """

    kind: str = "synthetic"
    target: str = ""
    width: int | None = None
    height: int | None = None
    format: PixelFormat | None = None
    seed: int = 0
    loop: bool = True
    fps: float | None = None
    buffer_count: int = 4
    max_pixels: int = MAX_PIXELS
    main_size: tuple[int, int] | None = None
    streamed: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise _unknown_kind(self.kind, f"{self.kind}:{self.target}")
        fps = self.fps
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                or not math.isfinite(fps) or fps < 0):
            raise SourceError(f"source {self.kind}: fps must be a number >= 0 (0: the source's own rate) "
                              f"or None (unpaced), got {fps!r}")
        count = self.buffer_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SourceError(f"source {self.kind}: buffer_count must be a whole number >= 1, got {count!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SourceError(f"source {self.kind}: {name} must be a whole number >= 1, got {value!r}")
        main = self.main_size
        if main is not None and (not isinstance(main, tuple) or len(main) != 2
                                 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in main)):
            raise SourceError(f"source {self.kind}: main_size must be two whole numbers >= 1, got {main!r}")
        w, h = self.size()
        if w is not None and h is not None and w * h > self.max_pixels:
            raise SourceError(f"source {self.kind}: {w}x{h} is {w * h:,} pixels, over the {self.max_pixels:,} a "
                              "frame may have (pipeline.max_pixels); raise [pipeline] max_pixels in accel.toml to "
                              "allow it")

    @classmethod
    def from_text(cls, text: str, **options: Any) -> SourceSpec:
        """``SourceSpec(*parse_source(text), **options)``."""
        kind, target = parse_source(text)
        return cls(kind, target, **options)

    def size(self, default: tuple[int, int] | None = None) -> tuple[int | None, int | None]:
        """The requested ``(width, height)``, from the fields or a ``WxH`` target, else ``default``."""
        if self.width is not None or self.height is not None:
            return self.width, self.height
        match = SIZE.match(self.target) if self.kind == "synthetic" else None
        if match:
            return int(match.group(1)), int(match.group(2))
        return default if default is not None else (None, None)


@runtime_checkable
class Source(Protocol):
    """A frame source. ``read`` returns the next frame; sources are context managers and ``close`` is
    idempotent. ``describe`` returns what a result records about the source (kind, target, size, format,
    stride, and for cameras the model)."""

    name: str
    format: PixelFormat
    width: int
    height: int

    def read(self) -> Frame:
        """The next frame. Raises ``SourceError`` when the source is exhausted (not looping) or fails."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


#: Sources that deliver at their sensor's own rate: never wrapped in a ``PacedSource``.
SELF_PACED: tuple[str, ...] = ("v4l2", "picamera2")


def open_source(spec: SourceSpec) -> Source:
    """Open the source ``spec`` names, paced and started when ``spec.fps`` is set and the kind is not a
    camera (``SELF_PACED``). Raises ``SourceError`` (with the fix) when it cannot be opened, including when
    its optional dependency (OpenCV, picamera2) is not installed, or when ``fps`` is 0 for a video file
    that does not say its own rate."""
    source = _open_unpaced(spec)
    if spec.fps is None or spec.kind in SELF_PACED:
        return source
    from accel.sources.paced import PacedSource

    try:
        fps = spec.fps or own_rate(source)
    except SourceError:
        source.close()
        raise
    return PacedSource(source, fps, spec.buffer_count).start()


def pacing(spec: SourceSpec) -> dict[str, Any]:
    """What a result records about how ``spec`` is paced: ``paced`` and, when it is, ``fps`` (0 resolved
    to the source's own rate: a video file is opened to read it, so a file that does not say fails here,
    before any variant runs) and ``buffer_count``."""
    if spec.fps is None or spec.kind in SELF_PACED:
        return {"paced": False}
    fps = spec.fps
    if not fps:
        with _open_unpaced(spec) as source:
            fps = own_rate(source)
    return {"paced": True, "fps": fps, "buffer_count": spec.buffer_count}


def check_source(spec: SourceSpec) -> None:
    """``SourceError`` now, in the caller, for a source that cannot be read: a picture or video file is opened
    (its first frame read) and closed again, as a replay capture would open it, and its rate checked when it
    is paced at its own (``pacing``); a V4L2 camera's device must exist. A camera is not opened: it serves one
    process at a time, and the one that reads it opens it."""
    if spec.kind in ("image", "video"):
        with _open_unpaced(spec) as source:
            if spec.fps == 0:
                own_rate(source)
    elif spec.kind == "v4l2":
        from accel.sources.camera import check_v4l2_device

        check_v4l2_device(int(spec.target or 0))


def own_rate(source: Source) -> float:
    """The rate a source delivers at when none is asked for: a video file's own (OpenCV's
    ``CAP_PROP_FPS``), ``DEFAULT_FPS`` for synthetic scenes and pictures. ``SourceError`` when a video file
    does not say its rate."""
    from accel.sources.paced import DEFAULT_FPS

    native = getattr(source, "native_fps", None)
    if native is None:
        return DEFAULT_FPS
    if not (math.isfinite(native) and native > 0):
        raise SourceError(f"{source.name} source {source.describe().get('target', '')}: the file does not say "
                          f"its frame rate (OpenCV reads {native!r} fps); give one with --source-fps or "
                          "[pipeline] source_fps")
    return float(native)


def _open_unpaced(spec: SourceSpec) -> Source:
    if spec.kind == "synthetic":
        from accel.sources.synthetic import DEFAULT_SIZE, SyntheticSource

        width, height = spec.size(DEFAULT_SIZE)
        return SyntheticSource(
            width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1], format=spec.format, seed=spec.seed
        )
    if spec.kind == "image":
        from accel.sources.files import ImageSource

        return ImageSource(spec.target, spec.width, spec.height, loop=spec.loop, format=spec.format,
                           max_pixels=spec.max_pixels)
    if spec.kind == "video":
        from accel.sources.files import VideoSource

        return VideoSource(spec.target, spec.width, spec.height, loop=spec.loop, format=spec.format)
    if spec.kind == "v4l2":
        from accel.sources.camera import V4l2Source

        return V4l2Source(int(spec.target or 0), spec.width, spec.height, format=spec.format)
    from accel.sources.camera import MainStream, Picamera2Source

    size = (spec.width, spec.height) if spec.width and spec.height else None
    return Picamera2Source(int(spec.target or 0), size, format=spec.format,
                           main=MainStream(spec.main_size, spec.streamed))


def import_cv2(what: str) -> Any:
    """OpenCV, or a ``SourceError`` saying how to install it; imported only by the sources that use it."""
    try:
        import cv2
    except ImportError as exc:
        raise SourceError(
            f"{what} needs OpenCV, which is not installed ({exc}): pip install 'accel[video]'"
        ) from exc
    return cv2


def capture(source: Source, n: int, *, timer: Callable[[], float] = time.perf_counter,
            clock: Callable[[], float] = time.monotonic) -> list[Frame]:
    """Read ``n`` frames for replay.

    Each read is timed with ``timer``; the time goes into ``Frame.capture_s`` unless the source set it,
    and ``Frame.timestamp`` is stamped with ``clock()`` (monotonic seconds) after the read unless the
    source set it. Tests pass a manual clock as both.
    """
    if n < 0:
        raise ValueError(f"capture: n must be >= 0, got {n}")
    frames: list[Frame] = []
    for _ in range(n):
        start = timer()
        frame = source.read()
        elapsed = timer() - start
        now = clock()
        if not frame.capture_s or not frame.timestamp:
            frame = dataclasses.replace(
                frame, capture_s=frame.capture_s or elapsed, timestamp=frame.timestamp or now
            )
        frames.append(frame)
    return frames
