"""YOLOv8n re-implemented in Keras, shaped like Ultralytics' TFLite export.

Ultralytics ``yolov8.yaml`` at scale n (depth 0.33, width 0.25): Conv = Conv2D (no bias) + BN + SiLU; C2f
blocks (1x1 conv, split in two, n bottlenecks of two 3x3 convs each appended, concat, 1x1 conv), SPPF (three
chained 5x5 max-pools), a PAN neck (nearest upsampling + concat, stride-2 convs back down), and the
decoupled anchor-free Detect head on P3/P4/P5: per level a box branch (two 3x3 Conv of 64, 1x1 conv to
4 x reg_max = 64) and a class branch (two 3x3 Conv of 80, 1x1 conv to 80). DFL: softmax over the 16 bins of
each side and a fixed 1x1 conv with weights 0..15 (16 parameters, as Ultralytics'); dist2bbox with anchor
points at cell centres. As Ultralytics' TFLite export (``Detect`` with format tflite) boxes are xywh
normalised to [0, 1] (distances x stride / image size), scores are sigmoids, and the output is [1, 84, N]
(N = 8400 at 640, 2100 at 320). Input float32 [1, S, S, 3] RGB in [0, 1]. Padding is TF's SAME rather
than PyTorch's symmetric pad 1 (same shapes and cost; onnx2tf exports add explicit PAD ops instead).
Published (Ultralytics, 640): 3.2 M parameters (3,151,904 fused), 8.7 GFLOPs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REG_MAX = 16
NUM_CLASSES = 80
STRIDES = (8, 16, 32)


def _anchor_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchor points (x, y) normalised to [0, 1] [1, N, 2] and stride / size [1, N, 1], row-major per level."""
    points, scales = [], []
    for stride in STRIDES:
        n = size // stride
        ys, xs = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()], -1) * stride / size)
        scales.append(np.full((n * n, 1), stride / size))
    return (np.concatenate(points)[None].astype(np.float32), np.concatenate(scales)[None].astype(np.float32))


def build_network(variant: str, seed: int, *, uint8_input: bool = False) -> Any:
    """Keras YOLOv8n: image [1, S, S, 3] in [0, 1] -> [1, 84, N]."""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(seed)
    size = int(variant)

    def conv(x: Any, c: int, k: int = 1, s: int = 1) -> Any:
        x = layers.Conv2D(c, k, s, "same", use_bias=False, kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization(epsilon=1e-3, momentum=0.97)(x)
        return layers.Activation("silu")(x)

    def c2f(x: Any, c2: int, n: int, shortcut: bool) -> Any:
        c = c2 // 2
        ys = list(ops.split(conv(x, 2 * c), 2, axis=-1))
        for _ in range(n):
            h = conv(conv(ys[-1], c, 3), c, 3)
            ys.append(layers.Add()([ys[-1], h]) if shortcut else h)
        return conv(layers.Concatenate()(ys), c2)

    def sppf(x: Any, c2: int) -> Any:
        y = [conv(x, int(x.shape[-1]) // 2)]
        for _ in range(3):
            y.append(layers.MaxPooling2D(5, 1, "same")(y[-1]))
        return conv(layers.Concatenate()(y), c2)

    image = keras.Input((size, size, 3), batch_size=1, name="images")
    x = conv(conv(image, 16, 3, 2), 32, 3, 2)
    x = conv(c2f(x, 32, 1, True), 64, 3, 2)
    p3 = c2f(x, 64, 2, True)
    p4 = c2f(conv(p3, 128, 3, 2), 128, 2, True)
    p5 = sppf(c2f(conv(p4, 256, 3, 2), 256, 1, True), 256)
    up = layers.UpSampling2D(2, interpolation="nearest")
    h4 = c2f(layers.Concatenate()([up(p5), p4]), 128, 1, False)
    n3 = c2f(layers.Concatenate()([layers.UpSampling2D(2)(h4), p3]), 64, 1, False)
    n4 = c2f(layers.Concatenate()([conv(n3, 64, 3, 2), h4]), 128, 1, False)
    n5 = c2f(layers.Concatenate()([conv(n4, 128, 3, 2), p5]), 256, 1, False)
    boxes, logits = [], []
    for f in (n3, n4, n5):
        b = layers.Conv2D(4 * REG_MAX, 1)(conv(conv(f, 64, 3), 64, 3))
        c = layers.Conv2D(NUM_CLASSES, 1, bias_initializer=keras.initializers.Constant(-4.6))(
            conv(conv(f, 80, 3), 80, 3))
        boxes.append(layers.Reshape((-1, 4 * REG_MAX))(b))
        logits.append(layers.Reshape((-1, NUM_CLASSES))(c))
    box = layers.Reshape((-1, 4, REG_MAX))(layers.Concatenate(axis=1)(boxes))
    dfl = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="dfl")
    dist = layers.Reshape((-1, 4))(dfl(layers.Softmax(axis=-1)(box)))
    dfl.set_weights([np.arange(REG_MAX, dtype=np.float32).reshape(1, 1, REG_MAX, 1)])
    points, scale = _anchor_grid(size)
    dist = ops.multiply(dist, scale)
    x1y1, x2y2 = ops.subtract(points, dist[..., :2]), ops.add(points, dist[..., 2:])
    xywh = layers.Concatenate(axis=-1)([ops.multiply(ops.add(x1y1, x2y2), 0.5), ops.subtract(x2y2, x1y1)])
    scores = layers.Activation("sigmoid")(layers.Concatenate(axis=1)(logits))
    out = ops.transpose(layers.Concatenate(axis=-1)([xywh, scores]), (0, 2, 1))
    return keras.Model(image, out)
