"""The source API: naming a source, its spec, opening it, and capturing frames for replay."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pytest

from accel.core.errors import SourceError
from accel.core.frames import Frame, PixelFormat
from accel.power.fake import ManualClock
from accel.sources import KINDS, Source, SourceSpec, capture, open_source, parse_source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("synthetic", ("synthetic", "")),
        ("synthetic:640x480", ("synthetic", "640x480")),
        ("image:photos/", ("image", "photos/")),
        ("image:/data/a b.jpg", ("image", "/data/a b.jpg")),
        ("video:C:/clips/x.mp4", ("video", "C:/clips/x.mp4")),
        ("v4l2:0", ("v4l2", "0")),
        ("v4l2", ("v4l2", "0")),
        ("v4l2:/dev/video2", ("v4l2", "2")),
        ("picamera2", ("picamera2", "")),
        ("picamera2:1", ("picamera2", "1")),
        ("  PiCamera2:1 ", ("picamera2", "1")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_parse_source(text: str, expected: tuple[str, str]) -> None:
    assert parse_source(text) == expected


def test_an_unknown_kind_lists_the_valid_ones_with_an_example() -> None:
    with pytest.raises(SourceError) as caught:
        parse_source("webcam:0")
    message = str(caught.value)
    assert "'webcam'" in message and all(kind in message for kind in KINDS) and '"picamera2"' in message


@pytest.mark.parametrize(
    ("text", "message"),
    [("image:", "needs a path"), ("video", "needs a path"), ("v4l2:usb", "camera number"),
     ("picamera2:front", "camera number"), ("synthetic:big", "WIDTHxHEIGHT")],
)
def test_malformed_targets(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_source(text)


def test_spec_validates_itself() -> None:
    with pytest.raises(SourceError, match="width must be a whole number >= 1"):
        SourceSpec("synthetic", width=0)
    with pytest.raises(SourceError, match="unknown source kind"):
        SourceSpec("webcam")
    assert SourceSpec.from_text("synthetic:320x240").size() == (320, 240)
    assert SourceSpec("synthetic", "320x240", width=64, height=48).size() == (64, 48)
    assert SourceSpec("image", "x").size((1, 2)) == (1, 2)


def test_open_source_honours_size_format_and_seed() -> None:
    spec = SourceSpec("synthetic", width=64, height=48, format=PixelFormat.RGB, seed=5)
    with open_source(spec) as source:
        assert isinstance(source, Source)
        frame = source.read()
    assert frame.data.shape == (48, 64, 3) and frame.format is PixelFormat.RGB
    assert open_source(spec).read().data.tobytes() == frame.data.tobytes()


class _Untimed:
    """A source that sets neither timestamp nor capture time; each read takes 1/1024 s of a manual clock."""

    name = "untimed"
    format = PixelFormat.RGB
    width = height = 2

    def __init__(self, clock: ManualClock) -> None:
        self.count = 0
        self.clock = clock

    def read(self) -> Frame:
        self.clock.sleep(1 / 1024)
        self.count += 1
        return Frame(np.zeros((2, 2, 3), np.uint8), 2, 2, PixelFormat.RGB, 6, index=self.count)

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"kind": "untimed"}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_capture_times_and_stamps_frames_the_source_did_not() -> None:
    clock = ManualClock(100.0)
    frames = capture(_Untimed(clock), 3, timer=clock, clock=clock)
    assert [f.index for f in frames] == [1, 2, 3]
    assert [f.capture_s for f in frames] == [1 / 1024] * 3  # each read's own duration
    assert [f.timestamp for f in frames] == [100 + k / 1024 for k in (1, 2, 3)]  # stamped after each read


def test_capture_keeps_what_the_source_measured() -> None:
    source = open_source(SourceSpec("synthetic", width=64, height=48))
    reference = source.read()
    frames = capture(source, 2)
    assert [f.index for f in frames] == [1, 2]
    assert all(f.timestamp >= reference.timestamp and f.capture_s > 0 for f in frames)
    assert capture(source, 0) == []
    with pytest.raises(ValueError):
        capture(source, -1)
