"""The synthetic camera: deterministic leaf scenes, exact ground truth, camera pixel layouts."""

from __future__ import annotations

import numpy as np
import pytest

from accel.core.errors import SourceError
from accel.core.frames import PixelFormat
from accel.sources import SourceSpec, open_source
from accel.sources.synthetic import LABELS, SyntheticSource, render_scene

SCENES = range(40)


def _bt601_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited-range luma, straight from the standard's formula."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255


def test_same_seed_and_index_give_identical_bytes_in_any_read_order() -> None:
    forward = SyntheticSource(seed=7)
    frames = [forward.read() for _ in range(6)]
    backward = SyntheticSource(seed=7)
    for index in reversed(range(6)):
        again = backward.frame(index)
        assert again.index == index
        assert again.data.tobytes() == frames[index].data.tobytes()
        assert again.truth == frames[index].truth


def test_different_index_or_seed_gives_a_different_frame() -> None:
    rgb = render_scene(3, seed=1).rgb
    assert not np.array_equal(rgb, render_scene(4, seed=1).rgb)
    assert not np.array_equal(rgb, render_scene(3, seed=2).rgb)


def test_every_scene_has_one_to_four_leaves_with_boxes_inside_the_frame() -> None:
    counts = set()
    for index in SCENES:
        scene = render_scene(index)
        counts.add(len(scene.boxes))
        assert len(scene.masks) == len(scene.boxes)
        for box in scene.boxes:
            assert 0.0 <= box.x0 < box.x1 <= 1.0 and 0.0 <= box.y0 < box.y1 <= 1.0
            assert box.class_id == 0 and LABELS[box.class_id] == "leaf"
    assert counts <= {1, 2, 3, 4} and len(counts) > 1


@pytest.mark.parametrize("index", [0, 5, 11, 23, 38])
def test_box_is_the_tight_box_of_the_leaf_pixels(index: int) -> None:
    scene = render_scene(index)
    height, width = scene.rgb.shape[:2]
    for box, mask in zip(scene.boxes, scene.masks, strict=True):
        x0, x1 = round(box.x0 * width), round(box.x1 * width)
        y0, y1 = round(box.y0 * height), round(box.y1 * height)
        assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()  # first and last columns are leaf
        assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
        assert mask[y0:y1, x0:x1].sum() == mask.sum()  # nothing of the leaf outside the box
        if x0 > 0:
            assert not mask[:, x0 - 1].any()
        if x1 < width:
            assert not mask[:, x1].any()
        if y0 > 0:
            assert not mask[y0 - 1].any()
        if y1 < height:
            assert not mask[y1].any()


@pytest.mark.parametrize("index", [0, 5, 11, 23, 38])
def test_leaf_pixels_are_green_yellow_or_brown(index: int) -> None:
    scene = render_scene(index)
    rgb = scene.rgb.astype(np.int16)
    for mask in scene.masks:
        r, g, b = rgb[mask].T
        assert np.mean(b < np.maximum(r, g)) > 0.9  # hues from brown (~20 deg) to green (~140 deg)


def test_leaves_do_not_overlap() -> None:
    for index in SCENES:
        masks = render_scene(index).masks
        if masks:
            assert int(np.sum(masks, axis=0).max()) == 1


@pytest.mark.parametrize(
    ("width", "height", "stride"), [(640, 480, 640), (320, 240, 320), (300, 200, 320), (100, 64, 128)],
    ids=["640x480", "320x240", "300x200-padded", "100x64-padded"],
)
def test_yuv420_is_i420_with_a_64_byte_stride_and_bt601_luma(width: int, height: int, stride: int) -> None:
    source = SyntheticSource(width, height, seed=3)
    assert source.format is PixelFormat.YUV420
    frame = source.read()
    rgb, _ = source.render_rgb(0)
    assert frame.stride == stride and stride % 64 == 0 and stride >= width
    assert frame.data.shape == (height * 3 // 2, stride) and frame.data.dtype == np.uint8
    luma = frame.data[:height, :width].astype(np.float64)
    assert np.abs(luma - _bt601_luma(rgb)).max() <= 1.0


def test_yuv420_stride_is_configurable() -> None:
    frame = SyntheticSource(320, 240, stride=384).read()
    assert frame.stride == 384 and frame.data.shape == (360, 384)


def test_nv12_has_the_same_luma_plane() -> None:
    source = SyntheticSource(320, 240, format=PixelFormat.NV12, seed=3)
    frame = source.read()
    rgb, _ = source.render_rgb(0)
    assert frame.format is PixelFormat.NV12 and frame.data.shape == (360, 320)
    assert np.abs(frame.data[:240].astype(np.float64) - _bt601_luma(rgb)).max() <= 1.0


@pytest.mark.parametrize(
    ("fmt", "channels"),
    [(PixelFormat.RGB, [0, 1, 2]), (PixelFormat.RGB888, [2, 1, 0]), (PixelFormat.BGR888, [0, 1, 2]),
     (PixelFormat.XRGB8888, [2, 1, 0]), (PixelFormat.XBGR8888, [0, 1, 2])],
    ids=lambda v: v.value if isinstance(v, PixelFormat) else None,
)
def test_packed_formats_hold_the_rgb_render_in_their_byte_order(fmt: PixelFormat, channels: list[int]) -> None:
    source = SyntheticSource(160, 120, format=fmt, seed=9)
    frame = source.frame(2)
    rgb, boxes = source.render_rgb(2)
    bpp = len(channels) + (1 if fmt.value.startswith("X") else 0)
    assert frame.data.shape == (120, 160, bpp) and frame.stride == 160 * bpp
    np.testing.assert_array_equal(frame.data[..., :3], rgb[..., channels])
    if bpp == 4:
        assert (frame.data[..., 3] == 255).all()
    assert frame.truth == boxes


def test_packed_format_with_a_padded_stride() -> None:
    source = SyntheticSource(100, 60, format=PixelFormat.RGB888, stride=320)
    frame = source.read()
    rgb, _ = source.render_rgb(0)
    assert frame.data.shape == (60, 320)
    np.testing.assert_array_equal(frame.data[:, :300].reshape(60, 100, 3), rgb[..., ::-1])


def test_frames_carry_truth_index_and_timing() -> None:
    with SyntheticSource(320, 240) as source:
        frames = [source.read() for _ in range(3)]
        assert [f.index for f in frames] == [0, 1, 2]
        assert frames[1].truth == source.render_rgb(1)[1]
        assert all(f.capture_s > 0 and f.timestamp > 0 for f in frames)
        assert source.describe()["format"] == "YUV420" and source.describe()["stride"] == 320
    with pytest.raises(SourceError, match="closed"):
        source.read()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"width": 16, "height": 16}, "at least"), ({"width": 321, "height": 240}, "even"),
     ({"width": 320, "height": 240, "stride": 300}, "stride"),
     ({"width": 320, "height": 240, "format": PixelFormat.RGB, "stride": 100}, "stride")],
    ids=["tiny", "odd-width-yuv", "short-yuv-stride", "short-rgb-stride"],
)
def test_bad_layouts_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        SyntheticSource(**kwargs)


def test_open_source_gives_a_synthetic_camera_of_the_named_size() -> None:
    source = open_source(SourceSpec.from_text("synthetic:320x240", seed=4))
    assert (source.width, source.height, source.format) == (320, 240, PixelFormat.YUV420)
    default = open_source(SourceSpec())
    assert (default.width, default.height) == (640, 480)
