"""A small SSD-like detector exported the way Keras/TF exports with a dynamic batch leave it: reshape targets
computed at run time (``tf.shape(x)[0]`` -> SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE) and anchors repeated
per batch (-> TILE), int8 inside, uint8 image in, float32 out. Built with TensorFlow (the ``build`` extra).

Outputs, as the converter orders them: class scores [1, N, 2] (softmax), box encodings [1, N, 4] and anchors
[1, N, 4] (ycenter, xcenter, h, w). N = 32*32*3 + 16*16*3 = 3840. Reshape targets name the anchor count
(``[batch, 3072, 4]``), as the STM32 model zoo's SSD exports do, so every shape but the batch is static.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _anchors(size: int, count: int) -> np.ndarray:
    centers = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(centers, centers, indexing="ij")
    scales = np.linspace(0.1, 0.4, count, dtype=np.float32)
    a = np.zeros((1, size, size, count, 4), np.float32)
    a[..., 0], a[..., 1] = yy[..., None], xx[..., None]
    a[..., 2], a[..., 3] = scales, scales * 1.5
    return a


def build_in_child(path: Path, quantize: bool = True, counts: bool = True) -> Path:
    """``build`` in a child process: TensorFlow loaded into pytest's process has crashed PoCL (OpenCL) tests
    that run after it, and the GPU accelerator must not share a process with it either."""
    import subprocess
    import sys

    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import dynamic_batch; " \
           f"dynamic_batch.build(__import__('pathlib').Path({str(path)!r}), quantize={quantize}, counts={counts})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"building {path.name} failed: {proc.stderr[-2000:]}")
    return path


def build(path: Path, seed: int = 0, quantize: bool = True, counts: bool = True) -> Path:
    """The int8 export (uint8 in, float32 out), or with ``quantize=False`` the float32 one. ``counts=False``
    reshapes to ``[batch, -1, 4]`` instead of naming the count: the converter then stores placeholder shapes
    ([1, 1, 4]) for every tensor after the reshape, with -1 in their signatures."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> tf.Variable:
        return tf.Variable(rng.normal(0, 0.3, shape).astype(np.float32))

    stem, down = weights(3, 3, 3, 8), weights(3, 3, 8, 8)
    heads = [(weights(1, 1, 8, 6), weights(1, 1, 8, 12), tf.constant(_anchors(32, 3))),
             (weights(1, 1, 8, 6), weights(1, 1, 8, 12), tf.constant(_anchors(16, 3)))]

    @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32)])
    def detect(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        x = tf.nn.relu(tf.nn.conv2d(image, stem, 2, "SAME"))
        levels = [x, tf.nn.relu(tf.nn.conv2d(x, down, 2, "SAME"))]
        scores, boxes, anchors = [], [], []
        for feature, (s, b, a) in zip(levels, heads, strict=True):
            batch, n = tf.shape(feature)[0], int(a.shape[1] * a.shape[2] * a.shape[3]) if counts else -1
            scores.append(tf.reshape(tf.nn.conv2d(feature, s, 1, "SAME"), [batch, n, 2]))
            boxes.append(tf.reshape(tf.nn.conv2d(feature, b, 1, "SAME"), [batch, n, 4]))
            anchors.append(tf.reshape(tf.tile(a, [batch, 1, 1, 1, 1]), [batch, n, 4]))
        return (tf.nn.softmax(tf.concat(scores, 1)), tf.concat(boxes, 1), tf.concat(anchors, 1))

    def representative():  # noqa: ANN202 - the converter's generator protocol
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([detect.get_concrete_function()], detect)
    if not quantize:
        path.write_bytes(converter.convert())
        return path
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    path.write_bytes(converter.convert())
    return path
