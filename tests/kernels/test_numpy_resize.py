"""Resize and letterbox of the numpy reference, against Pillow and hand-computed geometry."""

from __future__ import annotations

import numpy as np
import PIL
import pytest
from PIL import Image

from accel.kernels import Geometry
from accel.kernels.numpy_ref import letterbox, letterbox_placement, resize_bilinear

# (id, seed, in_h, in_w, out_h, out_w): up/down, odd sizes, 1-pixel sources and targets, one-axis passes, and
# both sides of Pillow's pass-order switch (vertical first when 2 * (W - w) < H - h).
RESIZE_CASES = [
    ("identity_23x37", 1, 23, 37, 23, 37),
    ("up_9x13_to_224", 2, 9, 13, 224, 224),
    ("up_odd_17x31_to_29x61", 3, 17, 31, 29, 61),
    ("down_480x640_to_300", 4, 480, 640, 300, 300),
    ("down_480x640_to_320x240", 5, 480, 640, 240, 320),
    ("down_odd_31x17_to_11x13", 6, 31, 17, 11, 13),
    ("down_big_factor_97x89_to_5x3", 7, 97, 89, 5, 3),
    ("from_1x1_to_5x7", 8, 1, 1, 5, 7),
    ("to_1x1_from_9x7", 9, 9, 7, 1, 1),
    ("column_40x1_to_224", 10, 40, 1, 224, 224),
    ("row_1x50_to_224", 11, 1, 50, 224, 224),
    ("vertical_only_500x224", 12, 500, 224, 224, 224),
    ("horizontal_only_224x500", 13, 224, 500, 224, 224),
    ("tall_shrink_vertical_first_300x100_to_50x90", 14, 300, 100, 50, 90),
    ("pass_order_tie_60x60_to_40x50", 15, 60, 60, 40, 50),
    ("pass_order_just_past_60x60_to_39x50", 16, 60, 60, 39, 50),
    ("shrink_height_grow_width_50x24_to_6x63", 17, 50, 24, 6, 63),
    ("grow_height_shrink_width_24x50_to_63x6", 18, 24, 50, 63, 6),
]


def pillow_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((out_w, out_h), Image.Resampling.BILINEAR))


@pytest.mark.parametrize(
    ("seed", "in_h", "in_w", "out_h", "out_w"),
    [c[1:] for c in RESIZE_CASES],
    ids=[c[0] for c in RESIZE_CASES],
)
def test_resize_matches_pillow_bilinear(seed: int, in_h: int, in_w: int, out_h: int, out_w: int) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (in_h, in_w, 3), dtype=np.uint8)  # noise: worst case
    out = resize_bilinear(img, out_h, out_w)
    assert out.shape == (out_h, out_w, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - pillow_resize(img, out_h, out_w)).max() <= 1


def test_resize_matches_pillow_on_random_sizes() -> None:
    rng = np.random.default_rng(99)
    worst = 0
    for _ in range(60):
        in_h, in_w, out_h, out_w = (int(v) for v in rng.integers(1, 70, 4))
        img = rng.integers(0, 256, (in_h, in_w, 3), dtype=np.uint8)
        diff = np.abs(resize_bilinear(img, out_h, out_w).astype(int) - pillow_resize(img, out_h, out_w))
        worst = max(worst, int(diff.max()))
    assert worst <= 1


@pytest.mark.skipif(
    not PIL.__version__.startswith("13."),
    reason=f"bit-exactness was verified on Pillow 13, not {PIL.__version__}",
)
@pytest.mark.parametrize(
    ("seed", "in_h", "in_w", "out_h", "out_w"),
    [c[1:] for c in RESIZE_CASES],
    ids=[c[0] for c in RESIZE_CASES],
)
def test_resize_is_bit_exact_with_pillow_13(seed: int, in_h: int, in_w: int, out_h: int, out_w: int) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (in_h, in_w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(img, out_h, out_w), pillow_resize(img, out_h, out_w))


def test_resize_does_not_alias_its_input() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    out = resize_bilinear(img, 4, 4)
    out[0, 0, 0] = 9
    assert img[0, 0, 0] == 0


# --- letterbox -------------------------------------------------------------------------------------------
# (id, src_h, src_w, height, width, (content_h, content_w, top, left), Geometry), all worked by hand:
LETTERBOX_CASES = [
    # scale = min(320/480, 320/640) = 0.5 -> 320 x 240, pad 80 split 40/40; offset_y = 40/320, scale_y = 240/320
    ("landscape_640x480_in_320", 480, 640, 320, 320, (240, 320, 40, 0), Geometry(1.0, 0.75, 0.0, 0.125)),
    # scale = min(300/640, 300/480) = 0.46875 -> 225 x 300, pad 75 split 37/38
    ("portrait_480x640_in_300", 640, 480, 300, 300, (300, 225, 0, 37), Geometry(0.75, 1.0, 37 / 300, 0.0)),
    # same aspect ratio, upscale: fills the input, identity geometry
    ("square_up_300_in_320", 300, 300, 320, 320, (320, 320, 0, 0), Geometry()),
    # scale = min(64/100, 64/33) = 0.64 -> 33 * 0.64 = 21.12 -> 21 wide, pad 43 split 21/22
    ("odd_33x100_in_64", 100, 33, 64, 64, (64, 21, 0, 21), Geometry(21 / 64, 1.0, 21 / 64, 0.0)),
    # scale = 0.05 -> 1 * 0.05 rounds to 0 -> at least 1 row, pad 9 split 4/5
    ("one_row_200x1_in_10", 1, 200, 10, 10, (1, 10, 4, 0), Geometry(1.0, 0.1, 0.0, 0.4)),
    # non-square target: min(300/720, 400/1280) = 0.3125 -> 400 x 225, pad 75 split 37/38
    ("hd_1280x720_in_400x300", 720, 1280, 300, 400, (225, 400, 37, 0), Geometry(1.0, 0.75, 0.0, 37 / 300)),
]


@pytest.mark.parametrize(
    ("src_h", "src_w", "height", "width", "placement", "geometry"),
    [c[1:] for c in LETTERBOX_CASES],
    ids=[c[0] for c in LETTERBOX_CASES],
)
def test_letterbox_geometry(
    src_h: int,
    src_w: int,
    height: int,
    width: int,
    placement: tuple[int, int, int, int],
    geometry: Geometry,
) -> None:
    assert letterbox_placement(src_h, src_w, height, width) == placement
    img = np.full((src_h, src_w, 3), 200, np.uint8)
    out, got = letterbox(img, height, width, fill=114)
    assert out.shape == (height, width, 3)
    assert got.scale_x == pytest.approx(geometry.scale_x) and got.scale_y == pytest.approx(geometry.scale_y)
    assert got.offset_x == pytest.approx(geometry.offset_x) and got.offset_y == pytest.approx(
        geometry.offset_y
    )
    content_h, content_w, top, left = placement
    inside = np.zeros((height, width), bool)
    inside[top : top + content_h, left : left + content_w] = True
    assert (out[inside] == 200).all()  # a flat image stays flat through the resize
    assert (out[~inside] == 114).all()


@pytest.mark.parametrize("fill", [0, 114, 255], ids=lambda f: f"fill{f}")
def test_letterbox_content_is_pillow_resize_and_border_is_fill(fill: int) -> None:
    img = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out, _ = letterbox(img, 320, 320, fill=fill)
    assert np.abs(out[40:280].astype(int) - pillow_resize(img, 240, 320)).max() <= 1
    assert (out[:40] == fill).all() and (out[280:] == fill).all()


@pytest.mark.parametrize(
    ("model_point", "frame_point"),
    [
        ((0.5, 0.5), (0.5, 0.5)),
        ((0.0, 0.125), (0.0, 0.0)),
        ((1.0, 0.875), (1.0, 1.0)),
        ((0.25, 0.3125), (0.25, 0.25)),
    ],
    ids=["centre", "top-left-of-content", "bottom-right-of-content", "quarter"],
)
def test_letterbox_point_mapping(model_point: tuple[float, float], frame_point: tuple[float, float]) -> None:
    # 640x480 into 320x320: content rows 40..280 of 320. Model y = 0.3125 is row 100 = content row 60 of 240.
    _, g = letterbox(np.zeros((480, 640, 3), np.uint8), 320, 320, fill=0)
    mx, my = model_point
    assert ((mx - g.offset_x) / g.scale_x, (my - g.offset_y) / g.scale_y) == pytest.approx(frame_point)


def test_letterbox_geometry_locates_a_drawn_box() -> None:
    # A white rectangle in a portrait frame must map back to where it was drawn (within a model pixel).
    img = np.zeros((640, 480, 3), np.uint8)
    img[160:480, 120:240] = 255  # frame box x 0.25..0.5, y 0.25..0.75
    out, g = letterbox(img, 300, 300, fill=0)
    rows, cols = np.nonzero(out[..., 0] > 127)
    x0, x1 = cols.min() / 300, (cols.max() + 1) / 300
    y0, y1 = rows.min() / 300, (rows.max() + 1) / 300
    frame_box = [(x - g.offset_x) / g.scale_x for x in (x0, x1)] + [
        (y - g.offset_y) / g.scale_y for y in (y0, y1)
    ]
    assert frame_box == pytest.approx([0.25, 0.5, 0.25, 0.75], abs=1.5 / 225)  # x0, x1, y0, y1
