"""SSDLite MobileNetV2 300x300: the TF Object Detection API's ``ssdlite_mobilenet_v2_coco``, rebuilt in Keras.

As its pipeline config describes it: a MobileNetV2 (depth 1.0, SAME padding, no explicit pads) feature
extractor taking ``layer_15/expansion_output`` (19x19x576) and ``layer_19`` (10x10x1280), then four extra
layers (1x1 conv to half depth, 3x3 depthwise stride 2, 1x1 conv to 512, 256, 256, 128) for the 5x5, 3x3,
2x2 and 1x1 maps; every conv with BatchNorm and ReLU6. The SSDLite box predictor puts a 3x3 depthwise conv
(BN, ReLU6) and a 1x1 conv on each of the six maps, separately for box encodings (4 per anchor) and class
scores (91 per anchor: background + 90 COCO ids), 3 anchors per cell on the first map and 6 elsewhere: 1917
anchors. Scores go through a sigmoid in the graph, as the TFLite export does. Anchors come from the API's SSD
anchor generator (``multiple_grid_anchor_generator.create_ssd_anchors``: 6 layers, scales 0.2-0.95, aspect
ratios 1, 2, 0.5, 3, 1/3 and an interpolated scale; ``reduce_boxes_in_lowest_layer``).
Published: 4.3 M parameters, 0.8 G MAdds (MobileNetV2 paper, table 6).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accel.zoo.layers import he_depthwise

FEATURE_MAPS = (19, 10, 5, 3, 2, 1)
NUM_CLASSES = 90  # COCO ids; the class head adds a background column 0
EXTRA_DEPTHS = (512, 256, 256, 128)
ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 0.3333)
MIN_SCALE, MAX_SCALE = 0.2, 0.95
# MobileNetV2 inverted residual blocks after the stem: (expansion, output channels, repeats, first stride).
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
POSTPROCESS_OPTIONS: dict[str, Any] = {  # export_tflite_ssd_graph's defaults with the config's thresholds
    "max_detections": 10, "max_classes_per_detection": 1, "detections_per_class": 100, "use_regular_nms": False,
    "nms_score_threshold": 1e-8, "nms_iou_threshold": 0.6, "num_classes": NUM_CLASSES,
    "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0,
}
OUTPUT_ORDER = ("boxes", "classes", "scores", "count")  # TF1 export order: the op's slot order


def _box_specs() -> list[list[tuple[float, float]]]:
    """(scale, aspect ratio) of each anchor of a cell, per feature map (create_ssd_anchors)."""
    n = len(FEATURE_MAPS)
    scales = [MIN_SCALE + (MAX_SCALE - MIN_SCALE) * i / (n - 1) for i in range(n)] + [1.0]
    specs = []
    for layer in range(n):
        if layer == 0:  # reduce_boxes_in_lowest_layer
            specs.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
        else:
            layer_specs = [(scales[layer], ratio) for ratio in ASPECT_RATIOS]
            layer_specs.append((float(np.sqrt(scales[layer] * scales[layer + 1])), 1.0))
            specs.append(layer_specs)
    return specs


def anchors(variant: str = "300") -> np.ndarray:
    """Anchors [1917, 4] (ycenter, xcenter, h, w; normalized) in the heads' output order (row, column, anchor)."""
    rows = []
    for size, specs in zip(FEATURE_MAPS, _box_specs(), strict=True):
        for i in range(size):
            for j in range(size):
                for scale, ratio in specs:
                    root = float(np.sqrt(ratio))
                    rows.append(((i + 0.5) / size, (j + 0.5) / size, scale / root, scale * root))
    return np.asarray(rows, dtype=np.float32)


class _Blocks:
    """The network's building blocks over one Keras, named as the TF Object Detection API names them."""

    def __init__(self, keras: Any) -> None:
        from keras import layers

        self.keras, self.layers = keras, layers

    def bn_relu6(self, x: Any, name: str) -> Any:
        x = self.layers.BatchNormalization(name=f"{name}_bn")(x)
        return self.layers.ReLU(6.0, name=f"{name}_relu6")(x)

    def conv(self, x: Any, filters: int, name: str, kernel: int = 1, stride: int = 1) -> Any:
        x = self.layers.Conv2D(filters, kernel, stride, "same", use_bias=False, kernel_initializer="he_normal",
                               name=name)(x)
        return self.bn_relu6(x, name)

    def dw(self, x: Any, name: str, stride: int = 1) -> Any:
        x = self.layers.DepthwiseConv2D(3, stride, "same", use_bias=False,
                                        depthwise_initializer=he_depthwise(self.keras), name=name)(x)
        return self.bn_relu6(x, name)


def _features(b: _Blocks, image: Any) -> list[Any]:
    """MobileNetV2's inverted residual blocks and the extra layers: the six feature maps of ``FEATURE_MAPS``."""
    layers, count = b.layers, iter(range(1000))
    x = b.conv(image, 32, "layer_1", 3, 2)
    features = []
    channels = 32
    for expansion, filters, repeats, first_stride in _BLOCKS:
        for r in range(repeats):
            name = f"layer_{next(count) + 2}"
            stride = first_stride if r == 0 else 1
            h = x
            if expansion != 1:
                h = b.conv(h, channels * expansion, f"{name}_expand")
                if name == "layer_15":
                    features.append(h)  # layer_15/expansion_output: 19x19x576
            h = b.dw(h, f"{name}_depthwise", stride)
            h = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_project")(h)
            h = layers.BatchNormalization(name=f"{name}_project_bn")(h)
            x = layers.Add(name=f"{name}_add")([x, h]) if stride == 1 and channels == filters else h
            channels = filters
    x = b.conv(x, 1280, "layer_19")
    features.append(x)
    for k, depth in enumerate(EXTRA_DEPTHS):
        name = f"layer_19_2_{k + 2}"
        x = b.conv(x, depth // 2, f"{name}_1x1")
        x = b.dw(x, f"{name}_depthwise", 2)
        x = b.conv(x, depth, f"{name}_3x3")
        features.append(x)
    if tuple(int(f.shape[1]) for f in features) != FEATURE_MAPS:
        raise ValueError(f"feature maps {[f.shape for f in features]}, expected {FEATURE_MAPS}")
    return features


def build_network(variant: str, seed: int, *, uint8_input: bool = False) -> Any:
    """Keras SSDLite: float image in [-1, 1] -> box_encodings [1, 1917, 4], class_predictions [1, 1917, 91]."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    size = int(variant)
    b = _Blocks(keras)
    image = keras.Input((size, size, 3), batch_size=1, name="normalized_input_image_tensor")
    boxes: list[Any] = []
    scores: list[Any] = []
    for k, (feature, specs) in enumerate(zip(_features(b, image), _box_specs(), strict=True)):
        a = len(specs)
        # The API's config initialises convs with a truncated normal of stddev 0.03: kept for the predictors so
        # untrained scores stay off the sigmoid's rails (with He init most scores tie at 1.0).
        for outputs, width, store in (("BoxEncodingPredictor", 4, boxes), ("ClassPredictor", NUM_CLASSES + 1, scores)):
            h = b.dw(feature, f"BoxPredictor_{k}_{outputs}_depthwise")
            init = keras.initializers.TruncatedNormal(stddev=0.03)  # one instance per layer: else equal weights
            h = layers.Conv2D(a * width, 1, kernel_initializer=init, name=f"BoxPredictor_{k}_{outputs}")(h)
            store.append(layers.Reshape((-1, width), name=f"BoxPredictor_{k}_{outputs}_flat")(h))
    box_encodings = layers.Concatenate(axis=1, name="box_encodings")(boxes)
    logits = layers.Concatenate(axis=1, name="class_logits")(scores)
    class_predictions = layers.Activation("sigmoid", name="class_predictions")(logits)
    return keras.Model(image, {"box_encodings": box_encodings, "class_predictions": class_predictions})
