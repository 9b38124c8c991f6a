"""Frames from files: pictures through Pillow (``image:PATH``) and videos through OpenCV (``video:PATH``).

Pictures come as ``PixelFormat.RGB`` (what Pillow gives), videos as ``PixelFormat.RGB888`` (OpenCV's
B,G,R bytes, which is what picamera2 calls RGB888); either can be laid out in another format on request.
A picture may carry ground truth in a YOLO sidecar: ``NAME.txt`` beside ``NAME.jpg``, one object per
line, ``class cx cy w h`` normalized (a longer line with an odd number of fields is a segmentation
polygon ``class x1 y1 x2 y2 ...``, whose bounding box is used).

A picture of more than ``max_pixels`` pixels (``[pipeline] max_pixels``) is refused from its header,
before it is decoded; accel's limit stands in for Pillow's decompression-bomb check (``open_picture``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from accel.core.errors import SourceError
from accel.core.frames import Box, Frame, PixelFormat
from accel.sources import MAX_PIXELS, import_cv2
from accel.sources.synthetic import bgr_frame, default_stride, encode_rgb

__all__ = ["ImageSource", "VideoSource", "load_yolo_labels", "open_picture"]

#: Pillow format names accepted as pictures (MPO: multi-picture JPEGs some cameras write).
IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF"})


def load_yolo_labels(path: Path) -> tuple[Box, ...]:
    """Boxes (normalized xyxy, clipped to 0..1) from a YOLO label file; ``SourceError`` names the line
    that is not ``class cx cy w h`` (an optional sixth field, a confidence, is ignored)."""
    boxes: list[Box] = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the label file: {exc}") from exc
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            values = []
        if len(values) < 5 or values[0] != int(values[0]) or values[0] < 0:
            raise SourceError(f"{path}:{number}: expected 'class cx cy w h' (YOLO, normalized), got {line!r}")
        if len(values) >= 7 and len(values) % 2 == 1:  # segmentation polygon
            xs, ys = values[1::2], values[2::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        else:
            cx, cy, w, h = values[1:5]
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1))
        boxes.append(Box(x0, y0, x1, y1, int(values[0])))
    return tuple(boxes)


def _fit(native: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
    """The output size: as requested, the missing side keeping the aspect ratio, or native."""
    w, h = native
    if width and height:
        return width, height
    if width:
        return width, max(1, round(h * width / w))
    if height:
        return max(1, round(w * height / h)), height
    return w, h


_PILLOW_LIMIT = threading.Lock()  # Image.MAX_IMAGE_PIXELS is Pillow's global: lifted for one open at a time


def open_picture(path: Path, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """``Image.open(path)`` (the header read, nothing decoded) with Pillow's decompression-bomb check lifted;
    ``SourceError`` instead when the picture has more than ``max_pixels`` pixels (None: no limit)."""
    with _PILLOW_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = image.size
    if max_pixels is not None and w * h > max_pixels:
        image.close()
        raise SourceError(f"{path}: {w}x{h} is {w * h:,} pixels, over the {max_pixels:,} a picture may have "
                          "(pipeline.max_pixels); raise [pipeline] max_pixels in accel.toml to read it")
    return image


def _is_picture(path: Path) -> bool:
    """Whether Pillow recognises ``path`` as a picture in one of ``IMAGE_FORMATS`` (reads the header only)."""
    try:
        with open_picture(path, None) as image:
            return image.format in IMAGE_FORMATS
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def _load(path: Path, max_pixels: int) -> Image.Image:
    """The picture as displayed (EXIF orientation applied), in RGB."""
    try:
        with open_picture(path, max_pixels) as opened:
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SourceError(f"{path}: cannot decode the picture: {exc}") from exc


class ImageSource:
    """Pictures from a file or a folder (sorted by name; non-pictures skipped and counted), looping.

    Frames are (H, W, 3) RGB (or ``format`` on request), EXIF orientation applied, resized with Pillow's
    bilinear filter when a size is requested; ``width``/``height`` are those of the first picture.
    """

    name = "image"

    def __init__(self, path: str | os.PathLike[str], width: int | None = None, height: int | None = None,
                 *, loop: bool = True, format: PixelFormat | None = None, max_pixels: int = MAX_PIXELS) -> None:
        self.path = Path(path).expanduser()
        self.loop, self.max_pixels = loop, max_pixels
        self.format = format or PixelFormat.RGB
        self._requested = (width, height)
        self.files, self.skipped = self._list()
        self.truth = {f: load_yolo_labels(f.with_suffix(".txt")) for f in self.files
                      if f.with_suffix(".txt").is_file()}
        self.width, self.height = _fit(_load(self.files[0], max_pixels).size, width, height)
        self.stride = default_stride(self.width, self.format)
        self._pos = 0
        self._closed = False

    def _list(self) -> tuple[list[Path], list[Path]]:
        """The pictures in name order, and the other files."""
        where = f"image source {self.path}"
        if not self.path.exists():
            raise SourceError(f"{where}: no such file or folder")
        if not self.path.is_dir():
            if not _is_picture(self.path):
                problem = "cannot read it (permission denied)" if not os.access(self.path, os.R_OK) else \
                    f"not a picture Pillow can read (expected one of {', '.join(sorted(IMAGE_FORMATS))})"
                raise SourceError(f"{where}: {problem}")
            return [self.path], []
        try:
            entries = sorted(e.name for e in os.scandir(self.path) if e.is_file())
        except OSError as exc:
            raise SourceError(f"{where}: cannot read the folder ({exc.strerror}): check its permissions") from exc
        paths = [self.path / n for n in entries]
        pictures = [p for p in paths if _is_picture(p)]
        stems, chosen = {p.stem for p in pictures}, set(pictures)
        skipped = [p for p in paths if p not in chosen and not (p.suffix == ".txt" and p.stem in stems)]
        if not pictures:
            listed = ", ".join(p.name for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            found = f"{len(skipped)} other files ({listed})" if skipped else "nothing"
            raise SourceError(f"{where}: no readable picture in the folder (found {found}); "
                              f"expected {', '.join(sorted(IMAGE_FORMATS))} files")
        return pictures, skipped

    def read(self) -> Frame:
        """The next picture; after the last one, the first again (``loop``) or ``SourceError``."""
        if self._closed:
            raise SourceError(f"image source {self.path} is closed")
        if self._pos >= len(self.files) and not self.loop:
            raise SourceError(f"image source {self.path}: end of its {len(self.files)} pictures (loop is off)")
        start = time.perf_counter()
        path = self.files[self._pos % len(self.files)]
        image = _load(path, self.max_pixels)
        size = _fit(image.size, *self._requested)
        if size != image.size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        rgb = np.asarray(image)
        data, stride = encode_rgb(rgb, self.format)
        frame = Frame(data, size[0], size[1], self.format, stride, timestamp=time.monotonic(),
                      capture_s=time.perf_counter() - start, index=self._pos, truth=self.truth.get(path, ()))
        self._pos += 1
        return frame

    def close(self) -> None:
        """Stop reading (idempotent)."""
        self._closed = True

    def describe(self) -> dict[str, Any]:
        """What a result records: the path, how many pictures were used, skipped and labelled."""
        return {"kind": "image", "target": str(self.path), "width": self.width, "height": self.height,
                "format": self.format.value, "stride": self.stride, "images": len(self.files),
                "labelled": len(self.truth), "skipped": len(self.skipped),
                "skipped_examples": [p.name for p in self.skipped[:5]], "loop": self.loop,
                "resized": self._requested != (None, None)}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class VideoSource:
    """A video file read with OpenCV, looping by reopening it. Frames are (H, W, 3) ``RGB888`` (B,G,R
    bytes, as OpenCV decodes), resized with ``cv2.INTER_LINEAR`` when a size is requested. ``native_fps``
    is the rate the file says (OpenCV's ``CAP_PROP_FPS``; 0 when it does not say)."""

    name = "video"

    def __init__(self, path: str | os.PathLike[str], width: int | None = None, height: int | None = None,
                 *, loop: bool = True, format: PixelFormat | None = None, max_pixels: int = MAX_PIXELS) -> None:
        self.path = Path(path).expanduser()
        self.loop, self.max_pixels = loop, max_pixels
        self.format = format or PixelFormat.RGB888
        self._cv2 = import_cv2(f"video source {self.path}")
        if not self.path.is_file():
            problem = "is a folder, not a video file" if self.path.is_dir() else "no such file"
            raise SourceError(f"video source {self.path}: {problem}")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"video source {self.path}: cannot read it (permission denied)")
        self._cap = self._open()
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"video source {self.path}: OpenCV opened it but read no frame from it")
        self._pending: np.ndarray | None = first
        self.native_fps = float(self._cap.get(self._cv2.CAP_PROP_FPS))
        self.native = (first.shape[1], first.shape[0])
        self.width, self.height = _fit(self.native, width, height)
        self.stride = default_stride(self.width, self.format)
        self._pos = 0
        self._passes = 1
        self._closed = False

    def _open(self) -> Any:
        cap = self._cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"video source {self.path}: OpenCV cannot open it (not a video, or no codec "
                              f"for it in this OpenCV build)")
        return cap

    def read(self) -> Frame:
        """The next video frame; at the end, frame 0 again (``loop``) or ``SourceError``."""
        if self._closed:
            raise SourceError(f"video source {self.path} is closed")
        start = time.perf_counter()
        bgr, self._pending = self._pending, None
        if bgr is None:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                if not self.loop:
                    raise SourceError(f"video source {self.path}: end of the video after {self._pos} frames "
                                      f"(loop is off)")
                self._cap.release()  # reopening is the seek that works for every container
                self._cap = self._open()
                self._passes += 1
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    raise SourceError(f"video source {self.path}: no frame after reopening it to loop")
        if (self.width, self.height) != (bgr.shape[1], bgr.shape[0]):
            bgr = self._cv2.resize(bgr, (self.width, self.height), interpolation=self._cv2.INTER_LINEAR)
        frame = bgr_frame(bgr, self.format, self.stride, start, self._pos)
        self._pos += 1
        return frame

    def close(self) -> None:
        """Release the file (idempotent)."""
        if not self._closed:
            self._closed = True
            self._cap.release()

    def describe(self) -> dict[str, Any]:
        """What a result records: the path, native and delivered size, fps and frame count from OpenCV."""
        cv2 = self._cv2
        props = {} if self._closed else {
            "fps": float(self._cap.get(cv2.CAP_PROP_FPS)),
            "frame_count": int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)),
        }
        return {"kind": "video", "target": str(self.path), "width": self.width, "height": self.height,
                "native_size": list(self.native), "format": self.format.value, "stride": self.stride,
                "loop": self.loop, "passes": self._passes, **props}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
