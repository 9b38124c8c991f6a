"""SSD anchor boxes: generated as the TF Object Detection API does, or taken from a model.

``ssd_anchors`` reproduces ``create_ssd_anchors`` + ``MultipleGridAnchorGenerator`` of the TF Object
Detection API (research/object_detection/anchor_generators/multiple_grid_anchor_generator.py and
grid_anchor_generator.py), the generator behind ``ssd_anchor_generator`` in SSD pipeline configs:

- layer scales ``s_i = min + (max - min) * i / (L - 1)`` for ``i < L``, and ``s_L = 1``;
- layer 0 with ``reduce_lowest``: three anchors (0.1, 1), (s_0, 2), (s_0, 0.5) as (scale, aspect ratio);
  every other layer: (s_i, a) for each aspect ratio, then (sqrt(s_i * s_{i+1}), interpolated) when the
  interpolated aspect ratio is > 0;
- anchor ``h = s / sqrt(a) * base_h``, ``w = s * sqrt(a) * base_w`` with base (1, 1) scaled by
  ``min(H, W) / H`` and ``min(H, W) / W`` (square anchors stay square on a non-square input);
- centres ``((i + 0.5) / fh, (j + 0.5) / fw)``; order: layer, then grid row, then column, then the
  anchors of the cell; not clipped (the exported TFLite SSD MobileNet anchors reach h = 1.65).

Anchors are float32 [N, 4] (ycenter, xcenter, h, w), normalized to the model input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accel.core.errors import ConfigError, ModelError
from accel.model.info import ModelInfo

__all__ = ["AnchorOptions", "anchor_counts", "corners_to_centers", "derive_feature_maps", "ssd_anchors",
           "ssd_raw_anchors"]

_STRIDES = (16, 32, 64, 128, 256, 512)  # SSD on MobileNet: the six layers the box predictors read
_SSD300 = (19, 10, 5, 3, 2, 1)  # the published SSD 300 layout (ceil(300 / stride) for the strides above)


def _box_specs(layers: int, min_scale: float, max_scale: float, aspect_ratios: Sequence[float],
               reduce_lowest: bool, interpolated: float) -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) of each anchor of a cell, per layer (``create_ssd_anchors``)."""
    if layers == 1:
        scales = [min_scale, 1.0]  # TF divides by (layers - 1): one layer simply takes min_scale
    else:
        scales = [min_scale + (max_scale - min_scale) * i / (layers - 1) for i in range(layers)] + [1.0]
    specs: list[list[tuple[float, float]]] = []
    for layer in range(layers):
        scale, scale_next = scales[layer], scales[layer + 1]
        if layer == 0 and reduce_lowest:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        layer_specs = [(scale, float(a)) for a in aspect_ratios]
        if interpolated > 0.0:
            layer_specs.append((math.sqrt(scale * scale_next), interpolated))
        specs.append(layer_specs)
    return specs


def anchor_counts(layers: int, aspect_ratios: Sequence[float], reduce_lowest: bool,
                  interpolated: float) -> list[int]:
    """Anchors per grid cell of each layer."""
    per_cell = len(aspect_ratios) + (1 if interpolated > 0.0 else 0)
    return [3 if (i == 0 and reduce_lowest) else per_cell for i in range(layers)]


@dataclass(frozen=True)
class AnchorOptions:
    """How an ssd-raw model's anchors are had (``[decode] anchors`` and ``anchor_*``): ``mode`` ``model`` takes
    the model's, ``generate`` generates them with the rest (the SSD anchor generator's own defaults), ``auto``
    takes the model's when it has them. ``feature_maps`` empty: derived from the anchor count."""

    mode: str = "auto"
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    feature_maps: tuple[int, ...] = ()
    reduce_lowest: bool = True
    interpolated: float = 1.0


def ssd_anchors(feature_maps: Sequence[tuple[int, int]], input_size: tuple[int, int],
                options: AnchorOptions = AnchorOptions()) -> np.ndarray:
    """Anchors of the TF Object Detection API's SSD anchor generator for these (height, width) feature maps,
    as float32 [N, 4] (ycenter, xcenter, h, w); see the module docstring for the formulas."""
    in_h, in_w = input_size
    base_h, base_w = min(in_h, in_w) / in_h, min(in_h, in_w) / in_w
    o = options
    specs = _box_specs(len(feature_maps), o.min_scale, o.max_scale, o.aspect_ratios, o.reduce_lowest, o.interpolated)
    out = []
    for (fh, fw), layer_specs in zip(feature_maps, specs, strict=True):
        scale = np.array([s for s, _ in layer_specs])
        root = np.sqrt(np.array([a for _, a in layer_specs]))
        heights, widths = scale / root * base_h, scale * root * base_w
        yc, xc = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        k = len(layer_specs)
        cells = fh * fw
        out.append(np.stack([np.repeat(yc.ravel(), k), np.repeat(xc.ravel(), k),
                             np.tile(heights, cells), np.tile(widths, cells)], axis=1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


def derive_feature_maps(n: int, input_size: tuple[int, int], counts: Sequence[int],
                        given: Sequence[int] = ()) -> list[tuple[int, int]]:
    """Feature map sizes whose anchors add up to ``n``.

    ``given`` (``[decode] anchor_feature_maps``) is used as it is (square maps) and must match ``n``.
    Otherwise the candidates are ``ceil(H / s) x ceil(W / s)`` for strides 16, 32, ..., 512 (SSD on
    MobileNet; for a 300 input that is SSD 300's [19, 10, 5, 3, 2, 1]) and that published layout itself.
    """
    layers = len(counts)

    def total(maps: Sequence[tuple[int, int]]) -> int:
        return sum(h * w * c for (h, w), c in zip(maps, counts, strict=True))

    if given:
        maps = [(int(s), int(s)) for s in given]
        if len(maps) != layers or total(maps) != n:
            got = total(maps) if len(maps) == layers else f"{len(maps)} layers, not {layers}"
            raise ConfigError(f"decode.anchor_feature_maps: {list(given)} gives {got} anchors, the model has {n}; "
                              "fix the sizes or set anchor_feature_maps = [] to derive them")
        return maps
    h, w = input_size
    candidates = [[(math.ceil(h / s), math.ceil(w / s)) for s in _STRIDES[:layers]],
                  [(s, s) for s in _SSD300[:layers]]]
    for maps in candidates:
        if len(maps) == layers and total(maps) == n:
            return maps
    tried = ", ".join(f"{[m[0] for m in c]} -> {total(c)}" for c in candidates if len(c) == layers)
    raise ModelError(f"cannot derive anchor feature maps for {n} anchors on a {h}x{w} input (tried {tried or 'none'}"
                     "); set [decode] anchor_feature_maps (e.g. [19, 10, 5, 3, 2, 1]) or use the model's anchors")


def corners_to_centers(anchors: np.ndarray) -> tuple[np.ndarray, str]:
    """A model's own [N, 4] anchor tensor -> ((ycenter, xcenter, h, w) float32, coding).

    Two layouts exist. TF's post-process op and Object Detection API store (ycenter, xcenter, h, w); the
    STM32 model zoo outputs corner boxes (x1, y1, x2, y2). Corner boxes have column 2 > column 0 and
    column 3 > column 1 in every row; centre/size anchors of a multi-scale grid cannot: a small anchor
    centred in the bottom cells has h < ycenter. For corners, x is the coordinate whose centre travels
    further along the anchor list (grids are laid out row-major, x fastest: the x centre sweeps the width
    once per grid row, the y centre the height once per grid), which quantization noise cannot overturn.
    The coding returned is the one each convention pairs with its anchors: ``yxhw`` (centre/size) or
    ``xyxy`` / ``yxyx`` (corner offsets, see ``kernels.decode``).
    """
    a = np.asarray(anchors, np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or not ((a[:, 2] > a[:, 0]).all() and (a[:, 3] > a[:, 1]).all()):
        return a.astype(np.float32), "yxhw"
    c0, c1 = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    x_first = np.abs(np.diff(c0)).sum() >= np.abs(np.diff(c1)).sum()
    (x1, y1, x2, y2) = (a[:, 0], a[:, 1], a[:, 2], a[:, 3]) if x_first else (a[:, 1], a[:, 0], a[:, 3], a[:, 2])
    centers = np.stack([(y1 + y2) / 2, (x1 + x2) / 2, y2 - y1, x2 - x1], axis=1)
    return centers.astype(np.float32), "xyxy" if x_first else "yxyx"


def ssd_raw_anchors(model: ModelInfo, options: AnchorOptions) -> np.ndarray | None:
    """The anchors [N, 4] (ycenter, xcenter, h, w) an ssd-raw model decodes with, by ``[decode] anchors``:
    ``model`` takes the model's (``ModelError`` when it has none), ``generate`` always generates them from
    the ``anchor_*`` keys (``ssd_anchors``, feature maps from ``derive_feature_maps`` when
    ``anchor_feature_maps`` is empty), ``auto`` takes the model's when it has them, else generates. None
    means the model's ``anchors`` output, read at run time (its values could not be read from the file)."""
    mode = options.mode
    from_model = model.decode_hints.get("anchors")
    in_model = from_model is not None or "anchors" in model.roles
    if mode == "model" and not in_model:
        raise ModelError(f"{model.path.name}: [decode] anchors = \"model\" but the model has no anchor tensor; "
                         "set anchors = \"generate\" (with the anchor_* keys) or \"auto\"")
    if mode != "generate" and in_model:
        return from_model
    n = int(model.outputs[model.roles["encodings"]].shape[-2])
    given = list(options.feature_maps)
    counts = anchor_counts(len(given) or 6, options.aspect_ratios, options.reduce_lowest, options.interpolated)
    return ssd_anchors(derive_feature_maps(n, model.input_size, counts, given), model.input_size, options)
