"""Synthetic camera: deterministic scenes of leaves, as a robot looking for a leaf would see them.

Why: the default comparison needs no hardware and no data set. Every synthetic frame carries exact ground
truth, so each way of running a detector can be scored for accuracy, and frames come in the camera's own
pixel formats (I420 with a padded row stride, like a Pi 4 lores stream, by default), so preprocessing
kernels are exercised on the layouts they meet on a Pi.

A scene is drawn from ``np.random.SeedSequence([seed, index])``: frame ``index`` is identical for the same
seed whatever order frames are read in, and reading one is cheap (a few milliseconds; no caching). It has:

- a background: a smooth two-colour gradient, a cloudy noise texture, a plank floor, or a flat colour;
- 0-6 distractors that are *not* leaves: discs and ellipses, rotated rectangles, stripes, some in leaf
  greens/yellows/browns so that colour alone does not find a leaf;
- 1-4 leaves that do not overlap: an almond outline with a pointed tip, a shaded blade, a midrib and side
  veins, a short stem; green, yellow or brown; any rotation; 8-40% of the frame's shorter side long;
- sensor-like grain, and sometimes a mild blur and a brightness change.

Ground truth: for each leaf the tight axis-aligned box of its rasterised mask (blade and stem), normalized
xyxy with pixel edges (a leaf covering columns 10..19 of 100 has ``x0 = 0.10, x1 = 0.20``), class 0
(``LABELS[0] == "leaf"``).
"""

from __future__ import annotations

import colorsys
import functools
import math
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from accel.core.errors import SourceError
from accel.core.frames import Box, Frame, PixelFormat

__all__ = ["DEFAULT_SIZE", "LABELS", "Scene", "SyntheticSource", "encode_rgb", "render_scene"]

DEFAULT_SIZE: tuple[int, int] = (640, 480)
LABELS: tuple[str, ...] = ("leaf",)
_PACKED_BPP = {
    PixelFormat.RGB: 3, PixelFormat.RGB888: 3, PixelFormat.BGR888: 3,
    PixelFormat.XRGB8888: 4, PixelFormat.XBGR8888: 4,
}
_GRAIN_MARGIN = 64
# (hue range in degrees, saturation range, value range) of green, yellow and brown leaves
_LEAF_HSV = (((75, 140), (0.45, 0.9), (0.3, 0.85)), ((45, 62), (0.55, 0.95), (0.65, 0.95)),
             ((18, 38), (0.45, 0.8), (0.25, 0.6)))


def default_stride(width: int, fmt: PixelFormat) -> int:
    """Row stride in bytes: packed formats are unpadded; YUV rows are padded to a multiple of 64 bytes,
    as libcamera pads a lores stream."""
    if fmt in _PACKED_BPP:
        return width * _PACKED_BPP[fmt]
    return -(-width // 64) * 64


def bgr_frame(bgr: np.ndarray, fmt: PixelFormat, stride: int | None, start: float, index: int) -> Frame:
    """An OpenCV image (B,G,R bytes, i.e. picamera2's RGB888) as a Frame of ``fmt``; ``start`` is the
    ``perf_counter`` time the capture began."""
    height, width = bgr.shape[:2]
    if fmt is PixelFormat.RGB888:
        data, row = bgr, width * 3
    else:
        data, row = encode_rgb(bgr[..., ::-1], fmt, stride)
    return Frame(data, width, height, fmt, row, timestamp=time.monotonic(),
                 capture_s=time.perf_counter() - start, index=index)


def encode_rgb(rgb: np.ndarray, fmt: PixelFormat, stride: int | None = None) -> tuple[np.ndarray, int]:
    """Lay out an (H, W, 3) uint8 RGB image as a camera buffer of format ``fmt``; returns ``(data, stride)``.

    Packed formats give (H, W, bpp) without padding, or (H, stride) with zero padding when ``stride`` is
    larger. YUV420/NV12 (BT.601 limited range, from ``accel.kernels.numpy_ref``) give (H * 3 // 2, stride).
    """
    height, width = rgb.shape[:2]
    stride = default_stride(width, fmt) if stride is None else stride
    if fmt in _PACKED_BPP:
        bpp = _PACKED_BPP[fmt]
        if stride < width * bpp:
            raise SourceError(f"stride {stride} is shorter than a {fmt.value} row of {width} pixels")
        if fmt is PixelFormat.RGB888:
            packed = rgb[..., ::-1]
        elif fmt in (PixelFormat.XRGB8888, PixelFormat.XBGR8888):
            packed = np.empty((height, width, 4), np.uint8)
            packed[..., :3] = rgb[..., ::-1] if fmt is PixelFormat.XRGB8888 else rgb
            packed[..., 3] = 255
        else:
            packed = rgb
        if stride == width * bpp:
            return np.ascontiguousarray(packed), stride
        padded = np.zeros((height, stride), np.uint8)
        padded[:, : width * bpp] = packed.reshape(height, width * bpp)
        return padded, stride
    if width % 2 or height % 2 or stride % 2 or stride < width:
        raise SourceError(f"{fmt.value} needs an even width, height and stride >= width; got {width}x{height} "
                          f"stride {stride}")
    from accel.kernels.numpy_ref import rgb_to_i420, rgb_to_nv12

    convert = rgb_to_i420 if fmt is PixelFormat.YUV420 else rgb_to_nv12
    return convert(rgb, stride=stride), stride


@dataclass(frozen=True, eq=False)
class Scene:
    """One rendered scene: ``rgb`` (H, W, 3) uint8, the leaves' ``boxes`` and their full-frame boolean
    ``masks`` (same order; a mask is exactly the pixels painted with that leaf)."""

    rgb: np.ndarray
    boxes: tuple[Box, ...]
    masks: tuple[np.ndarray, ...]


def _colour(rng: np.random.Generator, hues: tuple[float, float], sats: tuple[float, float],
            vals: tuple[float, float]) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(*hues) / 360.0, rng.uniform(*sats), rng.uniform(*vals))
    return round(r * 255), round(g * 255), round(b * 255)


def _leaf_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _colour(rng, *_LEAF_HSV[int(rng.choice(3, p=(0.6, 0.2, 0.2)))])


def _any_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _colour(rng, (0, 360), (0.0, 0.9), (0.15, 0.95))


def _shade(colour: tuple[int, int, int], factor: float, towards: int = 0) -> tuple[int, int, int]:
    """``colour`` blended by ``factor`` (0..1) towards grey level ``towards``."""
    return tuple(round(c + (towards - c) * factor) for c in colour)  # type: ignore[return-value]


@functools.lru_cache(maxsize=16)
def _grain(width: int, height: int, level: int) -> Image.Image:
    """Fixed sensor-like noise around 128 (strength ``level`` of 4), one image per size and level:
    choosing one per frame costs one add instead of drawing fresh noise."""
    noise = np.random.default_rng([0x5EED, level]).normal(128.0, 3.0 * level, (height, width, 3))
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))


def _upscale(small: np.ndarray, width: int, height: int, filt: Image.Resampling) -> Image.Image:
    """A smooth low-resolution image at full size: smooth to a quarter size, replicate 4x4 (cheap)."""
    quarter = Image.fromarray(small).resize((-(-width // 4), -(-height // 4)), filt)
    return quarter.resize((width, height), Image.Resampling.NEAREST)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    kind = rng.choice(4, p=(0.3, 0.25, 0.3, 0.15))
    if kind == 0:  # two-colour gradient in any direction
        c0, c1 = np.array(_any_colour(rng), np.float32), np.array(_any_colour(rng), np.float32)
        angle = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:1:9j, 0:1:9j]
        t = xs * math.cos(angle) + ys * math.sin(angle)
        t = (t - t.min()) / (t.max() - t.min())
        return _upscale((c0 + t[..., None] * (c1 - c0)).astype(np.uint8), width, height,
                        Image.Resampling.BILINEAR)
    if kind == 1:  # cloudy texture: coarse and fine blotches, mostly in brightness, around one colour
        base = np.array(_colour(rng, (0, 360), (0.0, 0.6), (0.25, 0.85)), np.float32)
        coarse = np.asarray(Image.fromarray(rng.normal(128, 40, (4, 5)).clip(0, 255).astype(np.uint8))
                            .resize((20, 16), Image.Resampling.BICUBIC), np.float32)[..., None] - 128
        small = base + coarse + rng.normal(0, 14, (16, 20, 1)) + rng.normal(0, 6, (16, 20, 3))
        return _upscale(small.clip(0, 255).astype(np.uint8), width, height, Image.Resampling.BICUBIC)
    if kind == 2:  # plank floor: plank tones, a fine grain across each plank, dark seams
        base = np.array(_colour(rng, (20, 45), (0.2, 0.7), (0.35, 0.9)), np.float32)
        vertical = bool(rng.integers(2))
        across = width if vertical else height
        plank = max(4.0, rng.uniform(0.08, 0.3) * across)
        v = np.arange(across, dtype=np.float32)
        k = (v // plank).astype(np.int64)
        tone = rng.uniform(0.75, 1.15, k.max() + 1)[k] * (1 + 0.07 * np.sin(v * rng.uniform(0.3, 1.2)))
        tone[(v % plank) < rng.uniform(1.0, 3.5)] = 0.45
        profile = (tone[:, None] * base).clip(0, 255).astype(np.uint8)
        line = Image.fromarray(profile[None, :, :] if vertical else profile[:, None, :])
        return line.resize((width, height), Image.Resampling.NEAREST)  # repeat the profile
    return Image.new("RGB", (width, height), _any_colour(rng))


def _rotate(points: np.ndarray, angle: float, cx: float, cy: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]]) + (cx, cy)


def _flat(points: np.ndarray) -> list[float]:
    return points.ravel().tolist()  # ImageDraw takes [x0, y0, x1, y1, ...]


def _distractors(rng: np.random.Generator, image: Image.Image) -> None:
    draw = ImageDraw.Draw(image)
    width, height = image.size
    short = min(width, height)
    for _ in range(int(rng.integers(0, 7))):
        colour = _leaf_colour(rng) if rng.random() < 0.5 else _any_colour(rng)
        cx, cy, angle = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, math.pi)
        shape = rng.integers(3)
        if shape == 0:  # disc or ellipse: leaf-sized, leaf-coloured, but no tip, vein or stem
            rx = rng.uniform(0.03, 0.2) * short
            a = np.linspace(0, 2 * math.pi, 32, endpoint=False)
            ellipse = np.stack([rx * np.cos(a), rx * rng.uniform(0.4, 1.0) * np.sin(a)], 1)
            draw.polygon(_flat(_rotate(ellipse, angle, cx, cy)), fill=colour)
        elif shape == 1:  # rotated rectangle
            hw, hh = rng.uniform(0.03, 0.2, 2) * short
            corners = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
            draw.polygon(_flat(_rotate(corners, angle, cx, cy)), fill=colour)
        else:  # stripe: a cable, a floor line, a stick
            half = rng.uniform(0.3, 1.0) * math.hypot(width, height) / 2
            line = _rotate(np.array([[-half, 0.0], [half, 0.0]]), angle, cx, cy)
            draw.line(_flat(line), fill=colour, width=int(rng.integers(2, 16)))


def _leaf(rng: np.random.Generator, image: Image.Image, taken: np.ndarray) -> tuple[Box, np.ndarray] | None:
    """Paint one leaf where it overlaps no earlier leaf (``taken``); its box and full-frame mask, or None
    when no free place was found."""
    width, height = image.size
    total = rng.uniform(0.08, 0.4) * min(width, height)  # stem end to tip
    stem = total * rng.uniform(0.08, 0.18)
    blade = total - stem
    half_width = blade * rng.uniform(0.15, 0.3)
    p = math.log(0.5) / math.log(rng.uniform(0.35, 0.55))  # widest at that fraction of the blade
    sharp, bend = rng.uniform(0.8, 1.3), rng.uniform(-0.12, 0.12) * blade
    # leaf coordinates: the blade along +x from its base to the tip, centred on the origin with the stem
    t = np.linspace(0.0, 1.0, 24)
    midrib = np.stack([t * blade + stem - total / 2, bend * t * t], 1)
    side = np.stack([0 * t, half_width * np.sin(np.pi * t**p) ** sharp], 1)
    outline = np.concatenate([midrib + side, (midrib - side)[::-1]])
    shaded = np.concatenate([midrib, (midrib - side)[::-1]])
    base = midrib[0]
    stem_line = np.array([base, base + (-stem / 2, bend * 0.05), base + (-stem, bend * 0.12)])
    veins = [np.array([midrib[i], midrib[i] + (0.7 * side[i, 1], sign * 0.8 * side[i, 1])])
             for i in (5, 9, 13, 17) for sign in (1, -1)]
    stem_w = max(1, round(blade * 0.03))
    reach = float(np.hypot(*np.concatenate([outline, stem_line]).T).max()) + stem_w + 1
    if 2 * reach >= min(width, height):
        return None
    colour = _leaf_colour(rng)
    rib = _shade(colour, rng.uniform(0.2, 0.4), 255 if rng.random() < 0.6 else 0)
    for _ in range(12):
        angle = rng.uniform(0, 2 * math.pi)
        cx, cy = rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x1, y1 = min(width, math.ceil(cx + reach) + 1), min(height, math.ceil(cy + reach) + 1)

        def place(points: np.ndarray, angle: float = angle, cx: float = cx - x0, cy: float = cy - y0) -> list[float]:
            return _flat(_rotate(points, angle, cx, cy))  # in patch coordinates

        mask_img = Image.new("L", (x1 - x0, y1 - y0), 0)
        mask_draw = ImageDraw.Draw(mask_img)
        mask_draw.polygon(place(outline), fill=255)
        mask_draw.line(place(stem_line), fill=255, width=stem_w)
        mask = np.asarray(mask_img) > 0
        if not mask.any() or taken[y0:y1, x0:x1][mask].any():
            continue
        paint = Image.new("RGB", mask_img.size, colour)
        draw = ImageDraw.Draw(paint)
        draw.polygon(place(shaded), fill=_shade(colour, rng.uniform(0.1, 0.25)))
        for vein in veins:
            draw.line(place(vein), fill=rib, width=max(1, stem_w // 2))
        draw.line(place(midrib[:-2]), fill=rib, width=max(1, stem_w * 2 // 3))
        draw.line(place(stem_line), fill=_shade(_shade(colour, 0.3, 0), 0.3), width=stem_w)
        image.paste(paint, (x0, y0), mask_img)  # exactly the mask's pixels change
        taken[y0:y1, x0:x1] |= mask
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = Box(float(x0 + cols[0]) / width, float(y0 + rows[0]) / height,
                  float(x0 + cols[-1] + 1) / width, float(y0 + rows[-1] + 1) / height, 0)
        full = np.zeros((height, width), bool)
        full[y0:y1, x0:x1] = mask
        return box, full
    return None


def render_scene(index: int, seed: int = 0, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> Scene:
    """Render scene ``index`` of ``seed`` at ``width`` x ``height`` (see the module docstring)."""
    if index < 0:
        raise SourceError(f"synthetic scene index must be >= 0, got {index}")
    rng = np.random.default_rng(np.random.SeedSequence([seed % 2**64, index]))
    image = _background(rng, width, height)
    _distractors(rng, image)
    taken = np.zeros((height, width), bool)
    leaves = [leaf for _ in range(int(rng.integers(1, 5))) if (leaf := _leaf(rng, image, taken))]
    image = ImageChops.add(image, _grain(width, height, int(rng.integers(1, 5))), offset=-128)
    if rng.random() < 0.2:  # mild defocus: half resolution and back
        image = image.reduce(2).resize((width, height), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        gain = rng.uniform(0.75, 1.25)
        image = image.point(np.clip(np.arange(256) * gain, 0, 255).round().astype(np.uint8).tolist() * 3)
    return Scene(np.asarray(image), tuple(b for b, _ in leaves), tuple(m for _, m in leaves))


class SyntheticSource:
    """An endless synthetic camera: frame ``i`` is ``render_scene(i, seed)`` laid out in ``format``.

    ``format`` defaults to YUV420 (I420, what a Pi 4 lores stream gives) with ``stride`` defaulting to the
    width rounded up to a multiple of 64; packed formats default to unpadded rows. Frames carry the
    leaves' boxes in ``Frame.truth``. ``read`` never ends; ``frame(i)`` renders any frame directly.
    """

    name = "synthetic"

    def __init__(self, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1],
                 format: PixelFormat | None = None, seed: int = 0, stride: int | None = None) -> None:
        if width < 32 or height < 32:
            raise SourceError(f"synthetic: frames must be at least 32x32, got {width}x{height}")
        self.width, self.height, self.seed = width, height, seed
        self.format = format or PixelFormat.YUV420
        self.stride = default_stride(width, self.format) if stride is None else stride
        self._check_layout()
        self._next = 0
        self._closed = False

    def _check_layout(self) -> None:
        bpp = _PACKED_BPP.get(self.format)
        if bpp is not None and self.stride < self.width * bpp:
            raise SourceError(f"synthetic: stride {self.stride} < {self.width} pixels x {bpp} bytes")
        if bpp is None and (self.width % 2 or self.height % 2 or self.stride % 2 or self.stride < self.width):
            raise SourceError(f"synthetic: {self.format.value} needs an even width and height and an even "
                              f"stride >= width; got {self.width}x{self.height}, stride {self.stride}")

    def render_scene(self, index: int) -> Scene:
        """Scene ``index`` as RGB with the leaves' boxes and masks."""
        return render_scene(index, self.seed, self.width, self.height)

    def render_rgb(self, index: int) -> tuple[np.ndarray, tuple[Box, ...]]:
        """Scene ``index`` as an (H, W, 3) uint8 RGB array and the leaves' boxes."""
        scene = self.render_scene(index)
        return scene.rgb, scene.boxes

    def frame(self, index: int) -> Frame:
        """Frame ``index`` in this source's format, timed and time-stamped."""
        start = time.perf_counter()
        rgb, boxes = self.render_rgb(index)
        data, stride = encode_rgb(rgb, self.format, self.stride)
        return Frame(data, self.width, self.height, self.format, stride, timestamp=time.monotonic(),
                     capture_s=time.perf_counter() - start, index=index, truth=boxes)

    def read(self) -> Frame:
        """The next frame (0, 1, 2, ...); never ends."""
        if self._closed:
            raise SourceError("synthetic source is closed")
        frame = self.frame(self._next)
        self._next += 1
        return frame

    def close(self) -> None:
        """Stop reading (idempotent)."""
        self._closed = True

    def describe(self) -> dict[str, Any]:
        """What a result records about this source."""
        return {"kind": "synthetic", "target": f"{self.width}x{self.height}", "width": self.width,
                "height": self.height, "format": self.format.value, "stride": self.stride, "seed": self.seed,
                "labels": list(LABELS), "scenes": "leaves among distractors (accel.sources.synthetic)"}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
