"""Pictures and videos as frame sources: order, pixels, YOLO sidecars, looping and error messages."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from accel.core.errors import SourceError
from accel.core.frames import Box, PixelFormat
from accel.sources import SourceSpec, open_source
from accel.sources.files import ImageSource, VideoSource, load_yolo_labels


def _picture(seed: int, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """b.png written before a.png, plus a note that is not a picture."""
    Image.fromarray(_picture(2)).save(tmp_path / "b.png")
    Image.fromarray(_picture(1)).save(tmp_path / "a.png")
    (tmp_path / "notes.md").write_text("not a picture")
    return tmp_path


def test_folder_frames_come_in_name_order_with_exact_pixels_and_loop(folder: Path) -> None:
    with ImageSource(folder) as source:
        frames = [source.read() for _ in range(3)]
        assert (source.width, source.height, source.format) == (40, 30, PixelFormat.RGB)
        described = source.describe()
    np.testing.assert_array_equal(frames[0].data, _picture(1))
    np.testing.assert_array_equal(frames[1].data, _picture(2))
    np.testing.assert_array_equal(frames[2].data, _picture(1))  # looped
    assert frames[0].data.shape == (30, 40, 3) and frames[0].stride == 120
    assert [f.index for f in frames] == [0, 1, 2]
    assert described["images"] == 2 and described["skipped"] == 1
    assert described["skipped_examples"] == ["notes.md"]


def test_without_loop_the_end_is_an_error(folder: Path) -> None:
    source = open_source(SourceSpec("image", str(folder), loop=False))
    source.read()
    source.read()
    with pytest.raises(SourceError, match="end of its 2 pictures"):
        source.read()


def test_a_single_file_and_a_requested_size_resized_like_pillow_bilinear(folder: Path) -> None:
    source = ImageSource(folder / "a.png", width=20, height=16)
    frame = source.read()
    expected = np.asarray(Image.fromarray(_picture(1)).resize((20, 16), Image.Resampling.BILINEAR))
    assert (frame.width, frame.height) == (20, 16)
    np.testing.assert_array_equal(frame.data, expected)


def test_width_alone_keeps_the_aspect_ratio(folder: Path) -> None:
    frame = ImageSource(folder, width=20).read()
    assert (frame.width, frame.height) == (20, 15)


def test_other_formats_are_laid_out_on_request(folder: Path) -> None:
    frame = ImageSource(folder / "a.png", format=PixelFormat.RGB888).read()
    np.testing.assert_array_equal(frame.data, _picture(1)[..., ::-1])


def test_yolo_sidecar_becomes_xyxy_boxes(folder: Path) -> None:
    (folder / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n\n3 0.1 0.25 0.2 0.1\n1 0.05 0.95 0.2 0.2\n")
    source = ImageSource(folder)
    first, second = source.read(), source.read()
    expected = [(0, 0.4, 0.3, 0.6, 0.7), (3, 0.0, 0.2, 0.2, 0.3), (1, 0.0, 0.85, 0.15, 1.0)]  # last: clipped
    assert [(b.class_id, b.x0, b.y0, b.x1, b.y1) for b in first.truth] == [pytest.approx(e) for e in expected]
    assert all(isinstance(b, Box) for b in first.truth)
    assert second.truth == ()
    assert source.describe()["skipped"] == 1  # the sidecar is not counted as a stray file


def test_yolo_polygon_line_gives_its_bounding_box(tmp_path: Path) -> None:
    label = tmp_path / "x.txt"
    label.write_text("2 0.1 0.2 0.5 0.1 0.3 0.6\n")
    (box,) = load_yolo_labels(label)
    assert (box.class_id, box.x0, box.y0, box.x1, box.y1) == (2, 0.1, 0.1, 0.5, 0.6)


def test_a_malformed_sidecar_names_the_file_and_line(folder: Path) -> None:
    (folder / "b.txt").write_text("0 0.5 0.5 0.2 0.4\nleaf 0.5 0.5 0.1 0.1\n")
    with pytest.raises(SourceError, match=r"b\.txt:2: expected 'class cx cy w h'"):
        ImageSource(folder)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:5, :5] = 255  # a white corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "turned.png", exif=exif)
    source = ImageSource(tmp_path)
    frame = source.read()
    assert (source.width, source.height) == (20, 30)
    np.testing.assert_array_equal(frame.data, np.rot90(pixels, k=-1))


def test_a_corrupt_picture_among_good_ones_is_skipped(folder: Path) -> None:
    (folder / "c.png").write_bytes(b"\x89PNG not really")
    source = ImageSource(folder)
    assert source.describe()["images"] == 2 and source.describe()["skipped"] == 2


def _unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    locked = tmp_path / "locked"
    locked.mkdir()
    Image.fromarray(_picture(1)).save(locked / "a.png")
    if os.geteuid() == 0:  # root reads any folder: simulate what the kernel says to everyone else

        def denied(path: object) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr("accel.sources.files.os.scandir", denied)
    else:
        locked.chmod(0)
    return locked


@pytest.mark.parametrize(
    ("case", "message"),
    [("missing", "no such file or folder"), ("empty", "no readable picture in the folder (found nothing)"),
     ("text-only", "no readable picture in the folder (found 1 other files (readme.txt))"),
     ("not-a-picture", "not a picture Pillow can read"), ("unreadable", "cannot read the folder")],
)
def test_unusable_paths_are_reported_with_the_path(
    case: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / case
    if case == "empty":
        path.mkdir()
    elif case == "text-only":
        path.mkdir()
        (path / "readme.txt").write_text("hello")
    elif case == "not-a-picture":
        path.write_text("hello")
    elif case == "unreadable":
        path = _unreadable(tmp_path, monkeypatch)
    try:
        with pytest.raises(SourceError) as caught:
            ImageSource(path)
    finally:
        if case == "unreadable":
            path.chmod(0o755)  # let pytest clean up
    assert str(path) in str(caught.value) and message in str(caught.value)


# --- video -----------------------------------------------------------------------------------------------

COLOURS_BGR = [(0, 0, 200), (0, 200, 0), (200, 0, 0), (40, 120, 220), (220, 220, 220)]


@pytest.fixture
def video(make_video: Callable[..., Path]) -> Path:
    return make_video(COLOURS_BGR, 10.0, (64, 48))


def test_video_frames_are_bgr_bytes_and_loop(video: Path) -> None:
    with VideoSource(video) as source:
        frames = [source.read() for _ in range(7)]
        described = source.describe()
    assert frames[0].format is PixelFormat.RGB888 and frames[0].data.shape == (48, 64, 3)
    for frame, colour in zip(frames, COLOURS_BGR, strict=False):
        assert np.abs(frame.data.reshape(-1, 3).mean(0) - colour).max() < 8  # MJPG is lossy
    np.testing.assert_array_equal(frames[5].data, frames[0].data)
    np.testing.assert_array_equal(frames[6].data, frames[1].data)
    assert described["passes"] == 2 and described["native_size"] == [64, 48]


def test_video_without_loop_ends_with_an_error(video: Path) -> None:
    source = VideoSource(video, loop=False)
    for _ in range(5):
        source.read()
    with pytest.raises(SourceError, match="end of the video after 5 frames"):
        source.read()
    source.close()
    source.close()


def test_video_resized_and_as_rgb_on_request(video: Path) -> None:
    frame = VideoSource(video, 32, 24, format=PixelFormat.RGB).read()
    assert frame.data.shape == (24, 32, 3)
    assert np.abs(frame.data.reshape(-1, 3).mean(0) - COLOURS_BGR[0][::-1]).max() < 8


@pytest.mark.parametrize("case", ["missing", "not-a-video", "folder"])
def test_unusable_videos_are_reported_with_the_path(case: str, tmp_path: Path) -> None:
    pytest.importorskip("cv2", reason="OpenCV is the video decoder ('accel[video]')")
    path = tmp_path / "clip.avi"
    if case == "not-a-video":
        path.write_text("hello")
    elif case == "folder":
        path.mkdir()
    with pytest.raises(SourceError, match="video source") as caught:
        VideoSource(path)
    assert str(path) in str(caught.value)
