"""Frames as sources deliver them: raw pixels in a camera pixel format, with a row stride."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class PixelFormat(enum.Enum):
    """Pixel layouts a source can deliver. Names follow libcamera/picamera2.

    Byte order in memory (picamera2 convention, see shared/FACTS.md):
    - ``RGB888``: B,G,R per pixel (picamera2's "RGB888" is BGR in memory).
    - ``BGR888``: R,G,B per pixel.
    - ``XRGB8888``: B,G,R,A per pixel.
    - ``XBGR8888``: R,G,B,A per pixel.
    - ``YUV420``: I420 planar: Y (stride x h), then U and V ((stride/2) x (h/2) each).
    - ``NV12``: Y (stride x h), then interleaved U,V (stride x h/2).
    - ``RGB``: plain R,G,B per pixel (what Pillow and most files give).
    """

    RGB = "RGB"
    RGB888 = "RGB888"
    BGR888 = "BGR888"
    XRGB8888 = "XRGB8888"
    XBGR8888 = "XBGR8888"
    YUV420 = "YUV420"
    NV12 = "NV12"

    @classmethod
    def parse(cls, text: str) -> PixelFormat:
        """Return the format named ``text`` (case-insensitive; ``I420`` is an alias of ``YUV420``)."""
        key = text.strip().upper()
        if key == "I420":
            key = "YUV420"
        for member in cls:
            if member.value == key:
                return member
        valid = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown pixel format {text!r}; valid: {valid}")


@dataclass(frozen=True)
class Box:
    """A ground-truth box: normalized xyxy (0..1 of the frame's width and height) and a class id."""

    x0: float
    y0: float
    x1: float
    y1: float
    class_id: int = 0


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured frame.

    ``data`` is the raw buffer as the source delivered it:
    - packed formats (RGB, RGB888, BGR888, XRGB8888, XBGR8888): uint8 array (height, stride) of bytes, or
      (height, width, channels) when there is no padding;
    - planar YUV (YUV420, NV12): uint8 array (height * 3 // 2, stride).
    ``stride`` is the row length in bytes (>= width * bytes per pixel). ``timestamp`` is
    ``time.monotonic()`` seconds at capture; ``capture_s`` how long the capture took.
    """

    data: np.ndarray
    width: int
    height: int
    format: PixelFormat
    stride: int
    timestamp: float = 0.0
    capture_s: float = 0.0
    index: int = 0
    truth: tuple[Box, ...] = field(default_factory=tuple)
