"""Stream frames: every installed encoder gives a JPEG Pillow decodes to the picture, and the boxes land where
the normalized coordinates say, from any pixel format and row stride, with OpenCV's drawing or Pillow's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from accel.core.detections import Classification, Detections
from accel.core.errors import ConfigError
from accel.core.frames import Frame, PixelFormat
from accel.kernels.colour import rgb_to_i420
from accel.watch.render import ENCODERS, PALETTE, Renderer, pick_encoder

GREY = 128


def _decode(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG"
        return np.asarray(im.convert("RGB")).astype(int)


def _grey_frame(fmt: PixelFormat, width: int = 320, height: int = 240, pad: int = 64) -> Frame:
    rgb = np.full((height, width, 3), GREY, np.uint8)
    if fmt is PixelFormat.YUV420:
        return Frame(rgb_to_i420(rgb, width + pad), width, height, fmt, width + pad)
    data = np.zeros((height, width * 3 + pad), np.uint8)
    data[:, :width * 3] = rgb.reshape(height, -1)
    return Frame(data, width, height, fmt, width * 3 + pad)


def _installed(name: str) -> str:
    try:
        pick_encoder(name)
    except ConfigError as exc:
        pytest.skip(str(exc))
    return name


@pytest.mark.parametrize("name", ENCODERS)
def test_each_encoder_gives_the_picture(name: str) -> None:
    encoder = pick_encoder(_installed(name))
    y, x = np.mgrid[0:120, 0:160]
    rgb = np.stack([x * 255 // 159, y * 255 // 119, np.full_like(x, 60)], axis=-1).astype(np.uint8)
    decoded = _decode(encoder.encode(np.ascontiguousarray(rgb), 90))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded - rgb.astype(int)).mean() < 3, "a smooth gradient survives JPEG at quality 90"


def test_auto_picks_the_fastest_installed() -> None:
    try:
        import simplejpeg  # noqa: F401
    except ImportError:
        assert pick_encoder().name == "opencv"
    else:
        assert pick_encoder().name == "simplejpeg"


def test_unknown_encoder() -> None:
    with pytest.raises(ConfigError, match="unknown JPEG encoder 'gif'; known: auto, simplejpeg"):
        pick_encoder("gif")


@pytest.mark.parametrize("drawing", ["opencv", "pillow"])
@pytest.mark.parametrize("fmt", [PixelFormat.YUV420, PixelFormat.RGB888, PixelFormat.BGR888])
def test_boxes_land_where_the_detections_say(drawing: str, fmt: PixelFormat) -> None:
    renderer = Renderer((640, 480), quality=95)
    if drawing == "pillow":
        renderer._cv2 = None  # the fallback when OpenCV is not installed
    dets = Detections(np.array([[0.25, 0.5, 0.75, 0.875]], np.float32), np.array([2], np.int32),
                      np.array([0.9], np.float32), ("leaf",))
    out = _decode(renderer.render(_grey_frame(fmt), dets, "caption"))
    assert out.shape == (480, 640, 3)
    colour = np.array(PALETTE[2])

    def off(column: np.ndarray) -> float:  # how far a line of pixels is from the box colour
        return float(np.abs(column.mean(axis=0) - colour).max())

    left = [off(out[300:400, x]) for x in range(156, 165)]  # x = 0.25 * 640 = 160, a 2-pixel line
    bottom = [off(out[y, 200:400]) for y in range(416, 425)]  # y = 0.875 * 480 = 420
    assert min(left) < 40 and min(bottom) < 40, (left, bottom)  # 4:2:0 chroma blurs a 2-pixel line a little
    assert off(out[300:400, 150]) > 60 and off(out[300:400, 170]) > 60 and off(out[410, 200:400]) > 60
    assert np.abs(out[300:400, 300:400] - GREY).max() < 12, "inside the box the frame is untouched"
    assert out[2:18, 200:600].mean() < 40, "the caption bar along the top"


def test_a_classifier_gets_its_classes_as_text() -> None:
    renderer = Renderer((320, 240))
    top = Classification(np.array([3, 1], np.int32), np.array([0.8, 0.1], np.float32), ("cat", "dog"))
    plain = _decode(renderer.render(_grey_frame(PixelFormat.RGB888), None, ""))
    labelled = _decode(renderer.render(_grey_frame(PixelFormat.RGB888), top, ""))
    assert np.abs(labelled[25:80, :120] - plain[25:80, :120]).max() > 60  # text drawn at the top left


def test_the_source_frame_is_not_drawn_on() -> None:
    frame = _grey_frame(PixelFormat.BGR888, pad=0)
    frame = Frame(frame.data.reshape(240, 320, 3), 320, 240, PixelFormat.BGR888, 960)
    before = frame.data.copy()
    dets = Detections(np.array([[0.1, 0.1, 0.9, 0.9]], np.float32), np.array([0], np.int32),
                      np.array([0.5], np.float32))
    Renderer((320, 240)).render(frame, dets, "caption")
    assert np.array_equal(frame.data, before)


@pytest.mark.parametrize("fmt", [PixelFormat.RGB, PixelFormat.BGR888, PixelFormat.RGB888, PixelFormat.YUV420])
def test_drawing_never_reaches_the_source_frame(fmt: PixelFormat) -> None:
    """At the frame's own size the picture may be the frame's memory (plain RGB): what is drawn goes on a copy."""
    frame = _grey_frame(fmt, pad=0)
    before = frame.data.copy()
    boxes = Detections(np.array([[0.1, 0.1, 0.9, 0.9]], np.float32), np.array([0], np.int32),
                       np.array([0.9], np.float32), ("thing",))
    Renderer((320, 240), encoder="pillow").render(frame, boxes, "caption")
    assert np.array_equal(frame.data, before)
