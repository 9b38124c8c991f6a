"""accel.model.costs: MACs and parameters from the flatbuffer, against hand-computed formulas and published figures.

The expected values come from the layer formulas written out here and from the papers' / model cards' figures,
never from ``model_costs`` itself. Models are converted from Keras once per session (TensorFlow needed; the
tests skip without it, CI installs it).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accel.core.errors import ModelError
from accel.model import load_model, model_costs

H = W = 16  # tiny model input


def _convert(model: Any, precision: str = "fp32") -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        rng = np.random.default_rng(0)
        shape = [1, *model.inputs[0].shape[1:]]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(2))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # int8 with float I/O: "Statistics for quantized inputs were expected"
        return bytes(converter.convert())


@pytest.fixture(scope="session")
def keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pytest.importorskip("tensorflow", reason="converting Keras models needs TensorFlow (pip install 'accel[build]')")
    import keras

    return keras


@pytest.fixture(scope="session")
def tiny(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Conv2D(8, 3x3, stride 2) -> DepthwiseConv2D(3x3) -> Flatten -> Dense(10), in three precisions."""
    from keras import layers

    keras.utils.set_random_seed(0)
    image = keras.Input((H, W, 3), batch_size=1)
    x = layers.Conv2D(8, 3, 2, "same", bias_initializer="random_normal")(image)
    x = layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_normal")(x)
    out = layers.Dense(10, bias_initializer="random_normal")(layers.Flatten()(x))
    model = keras.Model(image, out)
    folder = tmp_path_factory.mktemp("costs")
    paths = {}
    for precision in ("fp32", "fp16", "int8"):
        paths[precision] = folder / f"tiny_{precision}.tflite"
        paths[precision].write_bytes(_convert(model, precision))
    return paths


# Hand-computed from the layer formulas: output 8x8x8 after the stride-2 conv.
TINY_MACS = {"CONV_2D": 8 * 8 * 8 * (3 * 3 * 3), "DEPTHWISE_CONV_2D": 8 * 8 * 8 * (3 * 3),
             "FULLY_CONNECTED": 1 * 10 * (8 * 8 * 8)}
TINY_PARAMS = (3 * 3 * 3 * 8 + 8) + (3 * 3 * 8 + 8) + (8 * 8 * 8 * 10 + 10)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tiny_model_macs_and_params_by_formula(tiny: dict[str, Path], precision: str) -> None:
    costs = model_costs(tiny[precision])
    assert costs.macs_by_op == TINY_MACS
    assert costs.macs == sum(TINY_MACS.values())
    assert costs.flops == 2 * costs.macs
    assert costs.params == TINY_PARAMS  # fp16 weights behind DEQUANTIZE and int8 weights count once
    assert costs.uncounted == {}


def test_tiny_model_reads_bytes_as_well_as_paths(tiny: dict[str, Path]) -> None:
    assert model_costs(tiny["fp32"].read_bytes()) == model_costs(tiny["fp32"])


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_params_constant_follows_accel_model(tiny: dict[str, Path], precision: str) -> None:
    assert model_costs(tiny[precision]).params_constant == load_model_params(tiny[precision])


def load_model_params(path: Path) -> int:
    """accel.model's count; load_model wants an image input, which the tiny model has."""
    try:
        return load_model(path, family="classifier").params
    except ModelError as exc:  # pragma: no cover - a family check, not the count, refused the file
        pytest.skip(f"accel.model refuses the tiny model: {exc}")


def test_more_mac_ops_by_formula(keras: Any) -> None:
    """Grouped conv, transposed conv and a matmul of two activations (BATCH_MATMUL)."""
    from keras import layers, ops

    image = keras.Input((H, W, 4), batch_size=1)
    grouped = layers.Conv2D(8, 3, padding="same", groups=2, use_bias=False)(image)  # 16x16x8, 2 in per group
    up = layers.Conv2DTranspose(6, 2, strides=2, use_bias=False)(grouped)  # 32x32x6
    a = layers.Reshape((H * W, 8))(grouped)
    gram = ops.matmul(ops.transpose(a, (0, 2, 1)), a)  # [1, 8, 8], K = 256
    model = keras.Model(image, [up, gram])
    costs = model_costs(_convert(model))
    grouped_macs = H * W * 8 * (3 * 3 * 4 // 2)
    transpose_macs = H * W * 8 * (2 * 2 * 6)  # in_h * in_w * in_c * kh * kw * out_c
    matmul_macs = 8 * 8 * H * W
    assert costs.macs == grouped_macs + transpose_macs + matmul_macs
    assert costs.macs_by_op.get("TRANSPOSE_CONV") == transpose_macs
    assert costs.macs_by_op.get("BATCH_MATMUL") == matmul_macs


# Published: MobileNet v1 paper table 7 / TF-Slim model card (0.25/128: 0.47 M, 14 M; 1.0/224: 4.2 M, 569 M);
# MobileNet v2 paper table / TF-Slim card (1.0/224: 3.47 M, 300 M).
PUBLISHED = [
    pytest.param(lambda k: k.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3), weights=None),
                 0.47e6, 14e6, id="mobilenet_v1_0.25_128"),
    pytest.param(lambda k: k.applications.MobileNet(alpha=1.0, input_shape=(224, 224, 3), weights=None),
                 4.2e6, 569e6, id="mobilenet_v1_1.0_224"),
    pytest.param(lambda k: k.applications.MobileNetV2(alpha=1.0, input_shape=(224, 224, 3), weights=None),
                 3.47e6, 300e6, id="mobilenet_v2_1.0_224"),
]


@pytest.fixture(scope="session")
def converted(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any, str], Path]:
    folder = tmp_path_factory.mktemp("published")
    cache: dict[str, Path] = {}

    def get(factory: Any, key: str) -> Path:
        if key not in cache:
            cache[key] = folder / f"{key}.tflite"
            cache[key].write_bytes(_convert(factory(keras)))
        return cache[key]

    return get


@pytest.mark.parametrize(("factory", "params", "macs"), PUBLISHED)
def test_published_mobilenets(converted: Callable[[Any, str], Path], request: pytest.FixtureRequest,
                              factory: Any, params: float, macs: float) -> None:
    costs = model_costs(converted(factory, request.node.callspec.id))
    assert costs.params == pytest.approx(params, rel=0.03)
    assert costs.macs == pytest.approx(macs, rel=0.05)


# Third-party trained models in ../shared, against Ultralytics' published figures (at 640; FLOPs scale with
# the input area): YOLOv5n 1.9 M params, 4.5 GFLOPs; YOLO11n 2.6 M, 6.5 GFLOPs. Full-integer files.
SHARED = [
    pytest.param("yolov5n-int8.tflite", 640, 1.9e6, 4.5e9, id="yolov5n-int8-640"),
    pytest.param("yolo11n_full_integer_quant_416.tflite", 416, 2.6e6, 6.5e9, id="yolo11n-int8-416"),
]


@pytest.mark.shared
@pytest.mark.parametrize(("name", "size", "params", "gflops_640"), SHARED)
def test_shared_yolo_int8_models(shared_dir: Path, name: str, size: int, params: float, gflops_640: float) -> None:
    costs = model_costs(shared_dir / "models" / name)
    assert costs.params == pytest.approx(params, rel=0.05)
    assert costs.flops == pytest.approx(gflops_640 * (size / 640) ** 2, rel=0.05)


@pytest.mark.shared
def test_shared_ssd_lists_the_postprocess_op_as_uncounted(shared_dir: Path) -> None:
    path = shared_dir / "models" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite"
    costs = model_costs(path)
    assert costs.uncounted == {"TFLite_Detection_PostProcess": 1}
    assert costs.params_constant == load_model(path).params
    # the anchors (1917 x 4, uint8) are a constant but not a learned weight
    assert costs.params_constant - costs.params == 1917 * 4


@pytest.mark.parametrize("data", [b"", b"not a model at all", b"\x00\x00\x00\x00TFL2rest"], ids=["empty", "text", "id"])
def test_not_a_model_is_a_model_error(data: bytes) -> None:
    with pytest.raises(ModelError, match="not a TFLite model"):
        model_costs(data)


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model"):
        model_costs(tmp_path / "absent.tflite")


def test_truncated_model_is_a_model_error(tiny: dict[str, Path]) -> None:
    data = tiny["fp32"].read_bytes()
    with pytest.raises(ModelError):
        model_costs(data[: len(data) // 3])
