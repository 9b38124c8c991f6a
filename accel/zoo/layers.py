"""Keras -> TFLite conversion in accel's three precisions, and the helpers every zoo family shares."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from typing import Any

import numpy as np

from accel.core.errors import ModelError

CALIBRATION_IMAGES = 4  # random images for int8 calibration: enough for ranges, cheap on a 2-core CI


def require_tensorflow() -> Any:
    """Import TensorFlow (quietly) or raise the ModelError that says how to get it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ModelError("building models needs TensorFlow: pip install 'accel[build]'") from exc
    return tf


def convert(model: Any, precision: str, *, io_dtype: str | None, input_range: tuple[float, float],
            seed: int) -> bytes:
    """Convert a Keras model. ``fp16``: float16 weights; ``int8``: full integer with ``io_dtype`` I/O,
    calibrated on random images uniform in ``input_range``."""
    tf = require_tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        shape = [1, *model.inputs[0].shape[1:]]
        rng = np.random.default_rng(seed)
        lo, hi = input_range
        images = [rng.uniform(lo, hi, shape).astype(np.float32) for _ in range(CALIBRATION_IMAGES)]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype or "uint8")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected": harmless with int8 I/O
        return bytes(converter.convert())


def edit(data: bytes, description: str, names: dict[str, str] | None = None) -> bytes:
    """Set the model's description and rename the tensors behind signature outputs (key -> new name)."""
    from accel.model import read_model, write_model

    model = read_model(data)
    model.description = description
    for sig in model.signatureDefs or []:
        for entry in sig.outputs or []:
            key = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
            if names and key in names:
                model.subgraphs[sig.subgraphIndex].tensors[entry.tensorIndex].name = names[key]
    return write_model(model)


def he_depthwise(keras: Any, kernel: int = 3) -> Any:
    """He init for a k x k depthwise kernel: Keras' "he_normal" takes fan-in = k*k x channels, but each output
    sees k*k inputs. Untrained nets keep their activations' scale through the ReLUs only with the right fan-in."""
    return keras.initializers.RandomNormal(stddev=float(np.sqrt(2.0 / (kernel * kernel))))


def perturb_untrained(model: Any, seed: int) -> None:
    """Make an untrained Keras model's constants look like a trained one's: seeded BatchNorm statistics, and a
    little noise on every bias.

    Fresh BN layers are identities with zero offsets and fresh biases are all equal (zeros, or a prior): the
    converter merges equal constant tensors into one, so the file would hold fewer parameters than the
    architecture has. Distinct values keep every tensor, as in a trained model.
    """
    rng = np.random.default_rng(seed + 7919)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = tuple(layer.weights[0].shape)
            values = {"gamma": rng.uniform(0.8, 1.2, n), "beta": rng.normal(0.0, 0.05, n),
                      "moving_mean": rng.normal(0.0, 0.05, n), "moving_variance": rng.uniform(0.8, 1.2, n)}
            layer.set_weights([values[_bn_role(v.path)].astype(np.float32) for v in layer.weights])
        elif getattr(layer, "bias", None) is not None and layer.trainable:
            bias = layer.bias
            bias.assign(bias.numpy() + rng.normal(0.0, 0.01, tuple(bias.shape)).astype(np.float32))


def _bn_role(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name if name in ("gamma", "beta", "moving_mean", "moving_variance") else "beta"
