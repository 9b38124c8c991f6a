"""The stream's frames: a source frame (any pixel format and stride) converted to RGB, scaled to the stream
size, its detections drawn (boxes, labels, scores) and JPEG-encoded with the fastest encoder installed:
libjpeg-turbo through simplejpeg, else OpenCV's ``cv2.imencode``, else Pillow. Drawing uses OpenCV when it
is installed, Pillow otherwise. Everything is imported when a ``Renderer`` is built."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from accel.core.detections import Classification, Detections
from accel.core.errors import ConfigError
from accel.core.frames import Frame

__all__ = ["ENCODERS", "PALETTE", "Encoder", "Renderer", "draw_cv2", "pick_encoder"]

ENCODERS = ("simplejpeg", "opencv", "pillow")  # fastest first
_CAPTION_H = 20  # the caption bar along the top of every stream frame
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 255, 255)]


@dataclass(frozen=True)
class Encoder:
    """A JPEG encoder: ``encode(rgb, quality) -> bytes`` for a C-contiguous (H, W, 3) uint8 RGB array."""

    name: str
    encode: Callable[[np.ndarray, int], bytes]


def _simplejpeg() -> Encoder:
    import simplejpeg

    return Encoder("simplejpeg", lambda rgb, q: bytes(simplejpeg.encode_jpeg(rgb, quality=q, colorspace="RGB",
                                                                         colorsubsampling="420")))


def _opencv() -> Encoder:
    import cv2

    def encode(rgb: np.ndarray, quality: int) -> bytes:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("cv2.imencode could not encode the frame")
        return bytes(buf)

    return Encoder("opencv", encode)


def _pillow() -> Encoder:
    from PIL import Image

    def encode(rgb: np.ndarray, quality: int) -> bytes:
        out = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(out, format="JPEG", quality=quality)
        return out.getvalue()

    return Encoder("pillow", encode)


_FACTORIES = {"simplejpeg": _simplejpeg, "opencv": _opencv, "pillow": _pillow}


def pick_encoder(name: str = "auto") -> Encoder:
    """The encoder ``name`` ("auto": the first of ``ENCODERS`` that imports). ``ConfigError`` for an unknown
    name or one that is not installed, with how to install it."""
    if name == "auto":
        for candidate in ENCODERS:
            try:
                return _FACTORIES[candidate]()
            except ImportError:
                continue
        raise ConfigError("no JPEG encoder: install simplejpeg, opencv-python-headless or pillow")
    if name not in _FACTORIES:
        raise ConfigError(f"unknown JPEG encoder {name!r}; known: auto, {', '.join(ENCODERS)}")
    try:
        return _FACTORIES[name]()
    except ImportError as exc:
        package = {"simplejpeg": "simplejpeg", "opencv": "opencv-python-headless", "pillow": "pillow"}[name]
        raise ConfigError(f"JPEG encoder {name!r} is not installed ({exc}): pip install {package}") from None


def _label(result: Detections | Classification, i: int) -> str:
    name = result.labels[i] if result.labels else str(int(result.class_ids[i]))
    return f"{name} {float(result.scores[i]):.2f}"


def _boxes(result: Detections, w: int, h: int) -> list[tuple[int, int, int, int, tuple[int, int, int], str]]:
    """Each detection as pixel corners on a ``w`` x ``h`` image, its class's colour and its "label score"."""
    out = []
    for i in range(len(result)):
        x0, y0, x1, y1 = (float(v) for v in result.boxes[i])
        colour = PALETTE[int(result.class_ids[i]) % len(PALETTE)]
        out.append((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h), colour, _label(result, i)))
    return out


def draw_cv2(cv2: Any, image: np.ndarray, result: Detections | Classification | None, caption: str) -> None:
    """Draw ``result`` and ``caption`` onto ``image`` in place with OpenCV: an (H, W, 3) array in R,G,B order,
    or (H, W, 4) in R,G,B,X order (a camera buffer mapped as it is, the fourth byte set to 255)."""
    def c(rgb: tuple[int, int, int]) -> tuple[int, ...]:
        return rgb if image.shape[2] == 3 else (*rgb, 255)

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    if isinstance(result, Detections):
        for x0, y0, x1, y1, colour, text in _boxes(result, image.shape[1], image.shape[0]):
            cv2.rectangle(image, (x0, y0), (x1, y1), c(colour), 2)
            (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
            top = y0 - th - 4 if y0 - th - 4 >= _CAPTION_H else max(y0, _CAPTION_H)  # inside near the top
            cv2.rectangle(image, (x0, top), (x0 + tw + 4, top + th + 4), c(colour), -1)
            cv2.putText(image, text, (x0 + 2, top + th + 1), font, scale, c((255, 255, 255)), 1, cv2.LINE_AA)
    elif isinstance(result, Classification):
        for i in range(len(result)):
            cv2.putText(image, _label(result, i), (6, 40 + 18 * i), font, 0.55, c((255, 255, 0)), 1, cv2.LINE_AA)
    cv2.rectangle(image, (0, 0), (image.shape[1], _CAPTION_H), c((0, 0, 0)), -1)
    cv2.putText(image, caption, (6, 14), font, scale, c((255, 255, 255)), 1, cv2.LINE_AA)


class Renderer:
    """Frame + answers -> JPEG bytes at ``size`` (width, height)."""

    def __init__(self, size: tuple[int, int], quality: int = 80, encoder: str = "auto") -> None:
        self.size, self.quality = size, quality
        self.encoder = pick_encoder(encoder)
        try:
            import cv2
        except ImportError:
            self._cv2: Any = None
        else:
            self._cv2 = cv2
        if self._cv2 is not None:
            from accel.kernels.opencv_ref import OpenCvKernels

            self._to_rgb: Callable[[Frame], np.ndarray] = OpenCvKernels().to_rgb
        else:
            from accel.kernels.numpy_ref import to_rgb

            self._to_rgb = to_rgb

    def render(self, frame: Frame, result: Detections | Classification | None, caption: str) -> bytes:
        """The annotated frame as JPEG: boxes and "label score" of detections (a classifier's top classes
        as lines of text), and ``caption`` along the top."""
        rgb = self._scaled(self._to_rgb(frame), frame)
        if self._cv2 is not None:
            draw_cv2(self._cv2, rgb, result, caption)
        else:
            rgb = self._draw_pillow(rgb, result, caption)
        return self.encoder.encode(np.ascontiguousarray(rgb), self.quality)

    def _scaled(self, rgb: np.ndarray, frame: Frame) -> np.ndarray:
        w, h = self.size
        if rgb.shape[1] == w and rgb.shape[0] == h:  # the drawing must not reach the source's buffer
            return np.array(rgb) if np.shares_memory(rgb, frame.data) else rgb
        if self._cv2 is not None:
            shrink = w < rgb.shape[1]
            return np.asarray(self._cv2.resize(rgb, (w, h), interpolation=self._cv2.INTER_AREA if shrink
                                               else self._cv2.INTER_LINEAR))
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR)).copy()

    def _draw_pillow(self, rgb: np.ndarray, result: Detections | Classification | None, caption: str) -> np.ndarray:
        from PIL import Image, ImageDraw

        image = Image.fromarray(rgb, "RGB")
        draw = ImageDraw.Draw(image)
        if isinstance(result, Detections):
            for x0, y0, x1, y1, colour, text in _boxes(result, image.width, image.height):
                draw.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=colour, width=2)
                top = y0 - 13 if y0 - 13 >= _CAPTION_H else max(y0, _CAPTION_H)
                draw.rectangle((x0, top, x0 + 6 * len(text) + 4, top + 13), fill=colour)
                draw.text((x0 + 2, top + 1), text, fill=(255, 255, 255))
        elif isinstance(result, Classification):
            for i in range(len(result)):
                draw.text((6, 30 + 14 * i), _label(result, i), fill=(255, 255, 0))
        draw.rectangle((0, 0, image.width, _CAPTION_H), fill=(0, 0, 0))
        draw.text((6, 4), caption, fill=(255, 255, 255))
        return np.asarray(image)
