"""EfficientDet-Lite0 (320x320): the closest twin buildable in plain Keras of the automl / Model Maker model.

What is the same as automl's ``efficientdet-lite0`` config: EfficientNet-Lite0 backbone (EfficientNet-B0's
MBConv stages without squeeze-excitation, ReLU6, SAME padding), features P3-P5 from its stride 8/16/32
stages, P6 = 1x1 conv + BN + 3x3/2 max-pool of P5 and P7 = max-pool of P6; a BiFPN of 3 cells, 64 channels,
"sum" fusion, each node ReLU6 -> separable 3x3 conv -> BN, 1x1 conv + BN resampling of backbone features in
the first cell, nearest upsampling and 3x3/2 max-pool downsampling; class and box nets of 3 separable convs
(64, BN, ReLU6) whose convolutions are shared across levels (BatchNorm per level) and a separable prediction
conv: 9 anchors per cell (3 octave scales x aspect ratios 1, 2, 0.5, anchor scale 3), 90 classes without a
background column, 19206 anchors. uint8 input normalised inside ((x - 127) / 128); scores through a sigmoid;
anchors from automl's ``anchors.Anchors``; post-process options as automl's TFLite export (scales 1.0,
25 detections).

What differs: untrained weights; tensor names and metadata; the post-process score threshold is 1e-8
(automl derives its own from the NMS config). As in the real TFLite file, BatchNorm is folded by the
converter, so the head convs shared across levels appear once per level in the file (BN differs per level).

Size: the issue gives 3.2 M parameters; automl's README lists 4.3 M for efficientdet-lite0 (a count of its
Keras variables, not of the file). This twin's file holds 3.32 M weights (``accel.model.costs``: 13.7 MB fp32,
4.2 MB int8), in line with the ~13 MB float32 and 4.4 MB int8 EfficientDet-Lite0 files Google publishes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accel.zoo.layers import he_depthwise

NUM_CLASSES = 90
CHANNELS, CELLS, HEAD_REPEATS = 64, 3, 3
LEVELS = (3, 4, 5, 6, 7)
ASPECT_RATIOS = (1.0, 2.0, 0.5)
NUM_SCALES, ANCHOR_SCALE = 3, 3.0
# EfficientNet-Lite0 MBConv stages: (expansion, kernel, first stride, output channels, repeats).
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
           (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
_FEATURE_STAGES = {2: 3, 4: 4, 6: 5}  # stage index -> pyramid level of its output
# BiFPN nodes (automl fpn_configs.bifpn_config): (level, inputs as offsets into [P3..P7, new nodes...]).
_NODES = ((6, (3, 4)), (5, (2, 5)), (4, (1, 6)), (3, (0, 7)), (4, (1, 7, 8)), (5, (2, 6, 9)), (6, (3, 5, 10)),
          (7, (4, 11)))
POSTPROCESS_OPTIONS: dict[str, Any] = {
    "max_detections": 25, "max_classes_per_detection": 1, "detections_per_class": 100, "use_regular_nms": False,
    "nms_score_threshold": 1e-8, "nms_iou_threshold": 0.5, "num_classes": NUM_CLASSES,
    "y_scale": 1.0, "x_scale": 1.0, "h_scale": 1.0, "w_scale": 1.0,
}
OUTPUT_ORDER = ("scores", "boxes", "count", "classes")  # Model Maker's TF2 export order


def _sizes(image: int) -> dict[int, int]:
    size, sizes = image, {}
    for level in range(1, max(LEVELS) + 1):
        size = (size - 1) // 2 + 1
        sizes[level] = size
    return sizes


def anchors(variant: str = "320") -> np.ndarray:
    """Anchors [19206, 4] (ycenter, xcenter, h, w; normalized), automl's order: level, row, column, anchor."""
    image = int(variant)
    sizes = _sizes(image)
    rows = []
    for level in LEVELS:
        stride = image / sizes[level]
        centers = np.arange(stride / 2, image, stride)
        for y in centers:
            for x in centers:
                for octave in range(NUM_SCALES):
                    base = ANCHOR_SCALE * stride * 2 ** (octave / NUM_SCALES)
                    for ratio in ASPECT_RATIOS:
                        w, h = base * np.sqrt(ratio), base / np.sqrt(ratio)
                        rows.append((y / image, x / image, h / image, w / image))
    return np.asarray(rows, dtype=np.float32)


class _Blocks:
    """The network's building blocks over one Keras: batch norm (+ ReLU6), conv, separable conv."""

    def __init__(self, keras: Any) -> None:
        from keras import layers

        self.keras, self.layers, self._uid = keras, layers, iter(range(10_000))

    def bn(self, x: Any, act: bool) -> Any:
        x = self.layers.BatchNormalization(name=f"bn_{next(self._uid)}")(x)
        return self.layers.ReLU(6.0)(x) if act else x

    def conv(self, x: Any, filters: int, act: bool, kernel: int = 1, stride: int = 1) -> Any:
        return self.bn(self.layers.Conv2D(filters, kernel, stride, "same", use_bias=False,
                                          kernel_initializer="he_normal")(x), act)

    def separable(self, filters: int, bias_init: Any = "zeros", pointwise_init: Any = "he_normal") -> Any:
        return self.layers.SeparableConv2D(filters, 3, padding="same", depthwise_initializer=he_depthwise(self.keras),
                                           pointwise_initializer=pointwise_init, bias_initializer=bias_init)


def _backbone(b: _Blocks, x: Any) -> list[Any]:
    """EfficientNet-Lite0's stages, then P6 and P7: the feature maps of ``LEVELS``."""
    layers = b.layers
    x = b.conv(x, 32, True, 3, 2)
    channels, feats = 32, {}
    for s, (expansion, kernel, stride, filters, repeats) in enumerate(_STAGES):
        for r in range(repeats):
            step = stride if r == 0 else 1
            h = b.conv(x, channels * expansion, True) if expansion != 1 else x
            h = layers.DepthwiseConv2D(kernel, step, "same", use_bias=False,
                                       depthwise_initializer=he_depthwise(b.keras, kernel))(h)
            h = b.conv(b.bn(h, True), filters, False)
            x = layers.Add()([x, h]) if step == 1 and channels == filters else h
            channels = filters
        if s in _FEATURE_STAGES:
            feats[_FEATURE_STAGES[s]] = x
    feats[6] = layers.MaxPooling2D(3, 2, "same")(b.conv(feats[5], CHANNELS, False))
    feats[7] = layers.MaxPooling2D(3, 2, "same")(feats[6])
    return [feats[level] for level in LEVELS]


def _bifpn(b: _Blocks, nodes: list[Any], sizes: dict[int, int]) -> list[Any]:
    """``CELLS`` BiFPN cells over the feature maps; their outputs P3..P7."""
    layers = b.layers
    for _ in range(CELLS):
        new: list[Any] = []
        for level, offsets in _NODES:
            inputs = []
            for offset in offsets:
                f = (nodes + new)[offset]
                if f.shape[-1] != CHANNELS:
                    f = b.conv(f, CHANNELS, False)
                if f.shape[1] > sizes[level]:
                    f = layers.MaxPooling2D(3, 2, "same")(f)
                elif f.shape[1] < sizes[level]:
                    f = layers.Resizing(sizes[level], sizes[level], interpolation="nearest")(f)
                inputs.append(f)
            fused = layers.ReLU(6.0)(layers.Add()(inputs))
            new.append(b.bn(b.separable(CHANNELS)(fused), False))
        nodes = new[-5:]  # the cell's outputs P3..P7 are its last five nodes
    return nodes


def _heads(b: _Blocks, nodes: list[Any]) -> dict[str, Any]:
    """The box and class heads, shared over the levels: box encodings and class logits, concatenated."""
    keras, layers = b.keras, b.layers
    a = NUM_SCALES * len(ASPECT_RATIOS)
    prior = keras.initializers.Constant(-float(np.log((1 - 0.01) / 0.01)))
    outputs = {}
    for key, width, init in (("box_encodings", 4, "zeros"), ("class_logits", NUM_CLASSES, prior)):
        convs = [b.separable(CHANNELS) for _ in range(HEAD_REPEATS)]
        # Small prediction weights keep the untrained outputs in a trained model's range (logits around the
        # prior, box deltas ~ +-1): with He init the sigmoid saturates and every score ties at 1.0.
        predict = b.separable(a * width, init, keras.initializers.RandomNormal(stddev=0.03))
        levels = []
        for f in nodes:
            for c in convs:
                f = b.bn(c(f), True)
            levels.append(layers.Reshape((-1, width))(predict(f)))
        outputs[key] = layers.Concatenate(axis=1, name=key)(levels)
    return outputs


def build_network(variant: str, seed: int, *, uint8_input: bool = True) -> Any:
    """Keras EfficientDet-Lite0: image -> box_encodings [1, 19206, 4], class_predictions [1, 19206, 90]."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    image_size = int(variant)
    b = _Blocks(keras)
    dtype = "uint8" if uint8_input else "float32"
    image = keras.Input((image_size, image_size, 3), batch_size=1, dtype=dtype, name="images")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, dtype="float32")(image)
    outputs = _heads(b, _bifpn(b, _backbone(b, x), _sizes(image_size)))
    scores = layers.Activation("sigmoid", name="class_predictions")(outputs["class_logits"])
    return keras.Model(image, {"box_encodings": outputs["box_encodings"], "class_predictions": scores})
