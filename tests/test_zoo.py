"""accel.zoo (built models run, and cost what the published ones cost), accel.model.edit (strip and graft
TFLite_Detection_PostProcess) and accel.model.gpu_ops (what the GPU delegate takes).

Zoo models are built once per session (TensorFlow needed: skipped without it, CI installs it); int8 is built
for one classifier and two detectors only, to keep the suite within a few minutes on two cores.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from accel import zoo
from accel.core.errors import ModelError
from accel.model import (
    GPU_OPS,
    Family,
    gpu_support,
    graft_postprocess,
    load_model,
    model_costs,
    read_anchors,
    read_model,
    strip_postprocess,
)

Build = Callable[..., Path]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """``built(name, precision="fp32")``: the zoo model's path, built on first use."""
    pytest.importorskip("tensorflow", reason="building zoo models needs TensorFlow (pip install 'accel[build]')")
    folder = tmp_path_factory.mktemp("zoo")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, precision: str = "fp32") -> Path:
        if (name, precision) not in cache:
            cache[name, precision] = zoo.build(name, precision, folder)
        return cache[name, precision]

    return get


def _run(path: Path, seed: int = 0) -> tuple[dict[str, object], list[np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    rng = np.random.default_rng(seed)
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        image = rng.integers(info.min, info.max, inp["shape"], endpoint=True).astype(inp["dtype"])
    else:
        image = rng.uniform(0.0, 1.0, inp["shape"]).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], image)
    interpreter.invoke()
    return inp, [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


# Anchor counts from the architectures: SSD 19x19x3 + 6 x (10^2 + 5^2 + 3^2 + 2^2 + 1^2);
# EfficientDet 9 x (40^2 + 20^2 + 10^2 + 5^2 + 3^2); YOLOv8 (S/8)^2 + (S/16)^2 + (S/32)^2.
SSD_N, EFFDET_N = 19 * 19 * 3 + 6 * (100 + 25 + 9 + 4 + 1), 9 * (1600 + 400 + 100 + 25 + 9)
IO = {
    "mobilenet_v1_0.25_128": ((1, 128, 128, 3), np.float32, [(1, 1000)]),
    "mobilenet_v1_1.0_224": ((1, 224, 224, 3), np.float32, [(1, 1000)]),
    "mobilenet_v2_1.0_224": ((1, 224, 224, 3), np.float32, [(1, 1000)]),
    "ssdlite_mobilenet_v2_300": ((1, 300, 300, 3), np.float32, [(1, 10, 4), (1, 10), (1, 10), (1,)]),
    "ssdlite_mobilenet_v2_300_nopp": ((1, 300, 300, 3), np.float32, [(1, SSD_N, 4), (1, SSD_N, 91)]),
    "efficientdet_lite0_320": ((1, 320, 320, 3), np.uint8, [(1, 25), (1, 25, 4), (1,), (1, 25)]),
    "efficientdet_lite0_320_nopp": ((1, 320, 320, 3), np.uint8, [(1, EFFDET_N, 4), (1, EFFDET_N, 90)]),
    "yolov8n_320": ((1, 320, 320, 3), np.float32, [(1, 84, 40**2 + 20**2 + 10**2)]),
    "yolov8n_640": ((1, 640, 640, 3), np.float32, [(1, 84, 80**2 + 40**2 + 20**2)]),
}


def test_every_name_has_an_expectation() -> None:
    assert set(zoo.NAMES) == set(IO)


@pytest.mark.parametrize("name", list(IO))
def test_zoo_model_loads_and_runs(built: Build, name: str) -> None:
    inp, outputs = _run(built(name))
    shape, dtype, output_shapes = IO[name]
    assert tuple(inp["shape"]) == shape and inp["dtype"] == dtype
    assert [o.shape for o in outputs] == output_shapes
    assert all(np.isfinite(o).all() for o in outputs)


# Published figures (params, MACs; None where none is published):
# MobileNets: papers / TF-Slim model cards. SSDLite: 4.3 M params (MobileNetV2 paper, table 6); its 0.8 G MAdds
# are at 320x320, so MACs are compared with OpenVINO Open Model Zoo's measurement of the TF OD API model at
# 300x300 (1.525 GFLOPs = 2 x 0.7625 G MACs, 4.475 M params). EfficientDet-Lite0: 3.2 M params (the issue's
# figure; automl's README says 4.3 M counting Keras variables with BatchNorm), no published MACs.
# YOLOv8n: Ultralytics, 3.2 M params, 8.7 GFLOPs at 640 (= 2 x MACs), a quarter at 320.
PUBLISHED = {
    "mobilenet_v1_0.25_128": (0.47e6, 14e6),
    "mobilenet_v1_1.0_224": (4.2e6, 569e6),
    "mobilenet_v2_1.0_224": (3.47e6, 300e6),
    "ssdlite_mobilenet_v2_300": (4.3e6, 1.525e9 / 2),
    "ssdlite_mobilenet_v2_300_nopp": (4.3e6, 1.525e9 / 2),
    "efficientdet_lite0_320": (3.2e6, None),
    "efficientdet_lite0_320_nopp": (3.2e6, None),
    "yolov8n_320": (3.2e6, 8.7e9 / 2 / 4),
    "yolov8n_640": (3.2e6, 8.7e9 / 2),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_zoo_costs_match_published(built: Build, name: str) -> None:
    params, macs = PUBLISHED[name]
    costs = model_costs(built(name))
    assert costs.params == pytest.approx(params, rel=0.05)
    if macs is not None:
        assert costs.macs == pytest.approx(macs, rel=0.05)


def test_ssdlite_params_match_the_measured_tf_model(built: Build) -> None:
    assert model_costs(built("ssdlite_mobilenet_v2_300")).params == pytest.approx(4.475e6, rel=0.01)


def test_yolov8n_params_match_ultralytics_fused_count(built: Build) -> None:
    assert model_costs(built("yolov8n_640")).params == pytest.approx(3_151_904, abs=50)


@pytest.mark.parametrize(("name", "family", "roles"), [
    ("mobilenet_v2_1.0_224", Family.CLASSIFIER, {"logits": 0}),
    ("ssdlite_mobilenet_v2_300", Family.SSD, {"boxes": 0, "classes": 1, "scores": 2, "count": 3}),  # TF1 order
    ("efficientdet_lite0_320", Family.SSD, {"scores": 0, "boxes": 1, "count": 2, "classes": 3}),  # TF2 order
])
def test_accel_model_recognises_zoo_models(built: Build, name: str, family: Family, roles: dict[str, int]) -> None:
    info = load_model(built(name))
    assert info.family is family and info.roles == roles


def test_yolov8n_output_is_normalised_xywh_and_scores(built: Build) -> None:
    _, (out,) = _run(built("yolov8n_320"))
    xy, wh, scores = out[0, :2], out[0, 2:4], out[0, 4:]
    assert (xy > 0).all() and (xy < 1).all() and (wh > 0).all()
    assert (scores > 0).all() and (scores < 1).all()


@pytest.mark.parametrize(("name", "io_dtype"), [
    ("mobilenet_v1_0.25_128", np.uint8), ("ssdlite_mobilenet_v2_300", np.uint8), ("yolov8n_320", np.int8)])
def test_int8_builds_run_with_the_familys_io_type(built: Build, name: str, io_dtype: type) -> None:
    inp, outputs = _run(built(name, "int8"))
    assert inp["dtype"] == io_dtype
    assert [o.shape for o in outputs] == IO[name][2]
    if name.startswith("ssdlite"):  # uint8 box encodings need uint8 anchors, else the op returns zero boxes
        assert np.abs(outputs[0]).max() > 0
    else:
        assert outputs[0].dtype == io_dtype
    fp32, int8 = model_costs(built(name)), model_costs(built(name, "int8"))
    assert int8.macs == fp32.macs and int8.params == pytest.approx(fp32.params, abs=10)


def test_fp16_build_has_float16_weights_counted_once(built: Build) -> None:
    fp32, fp16 = built("mobilenet_v1_0.25_128"), built("mobilenet_v1_0.25_128", "fp16")
    assert "DEQUANTIZE" in load_model(fp16).ops
    assert model_costs(fp16).params == model_costs(fp32).params
    assert fp16.stat().st_size < 0.6 * fp32.stat().st_size
    _run(fp16)


def test_nopp_model_keeps_its_anchors(built: Build) -> None:
    from accel.zoo import ssdlite

    anchors = read_anchors(built("ssdlite_mobilenet_v2_300_nopp").read_bytes())
    np.testing.assert_array_equal(anchors, ssdlite.anchors())


def test_anchor_generators_by_hand() -> None:
    from accel.zoo import efficientdet, ssdlite

    ssd = ssdlite.anchors()
    assert ssd.shape == (SSD_N, 4)
    # first cell of the 19x19 map: (0.1, ratio 1), then (0.2, ratio 2): h = 0.2 / sqrt 2, w = 0.2 * sqrt 2
    np.testing.assert_allclose(ssd[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(ssd[1], [0.5 / 19, 0.5 / 19, 0.2 / 2**0.5, 0.2 * 2**0.5], rtol=1e-6)
    det = efficientdet.anchors()
    assert det.shape == (EFFDET_N, 4)
    # stride 8, octave 0, ratio 1: side 3 x 8 = 24 px at centre (4, 4) of a 320 px image
    np.testing.assert_allclose(det[0], [4 / 320, 4 / 320, 24 / 320, 24 / 320], rtol=1e-6)


def test_unknown_name_or_precision_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="known: mobilenet_v1_0.25_128"):
        zoo.build("resnet50", "fp32", tmp_path)
    with pytest.raises(ModelError, match="valid: fp32, fp16, int8"):
        zoo.build("yolov8n_320", "int4", tmp_path)


def test_without_tensorflow_build_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    with pytest.raises(ModelError, match=r"pip install 'accel\[build\]'"):
        zoo.build("yolov8n_320", "fp32", tmp_path)


# --- tflite_edit on the real TF1 quantized SSD -------------------------------------------------------------


@pytest.fixture(scope="module")
def ssd_model(shared_dir: Path) -> bytes:
    path = shared_dir / "models" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path.read_bytes()


def _invoke(data: bytes, image: np.ndarray, keep: bool = False) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=keep)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    named = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_tensor_details()} if keep else {}
    return outputs, named


@pytest.fixture(scope="module")
def beagles(shared_dir: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(shared_dir / "images" / "beagles.jpg").convert("RGB").resize((300, 300)))[None]


@pytest.mark.shared
@pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve_all_tensors`")
def test_strip_postprocess_exposes_the_raw_outputs(ssd_model: bytes, beagles: np.ndarray) -> None:
    stripped = strip_postprocess(ssd_model)
    outputs, _ = _invoke(stripped.model, beagles)
    assert [o.shape for o in outputs] == [(1, 1917, 4), (1, 1917, 91)]
    _, inside = _invoke(ssd_model, beagles, keep=True)  # the op's inputs in the original graph
    np.testing.assert_array_equal(outputs[0], inside["Squeeze"])
    np.testing.assert_array_equal(outputs[1], inside["convert_scores"])
    assert stripped.options["num_classes"] == 90 and stripped.options["max_detections"] == 10
    assert stripped.anchors.shape == (1917, 4) and 0 < stripped.anchors.min() and stripped.anchors.max() < 2
    np.testing.assert_array_equal(read_anchors(stripped.model), stripped.anchors)
    assert "TFLite_Detection_PostProcess" not in model_costs(stripped.model).uncounted


@pytest.mark.shared
def test_strip_then_graft_gives_back_the_detections(ssd_model: bytes, beagles: np.ndarray) -> None:
    stripped = strip_postprocess(ssd_model)
    graph_outputs = [int(i) for i in read_model(stripped.model).subgraphs[0].outputs]
    again = graft_postprocess(stripped.model, stripped.anchors, stripped.options,
                              inputs=(graph_outputs[0], graph_outputs[1]))
    (boxes, classes, scores, count), _ = _invoke(again, beagles)
    (boxes0, classes0, scores0, count0), _ = _invoke(ssd_model, beagles)
    assert count == count0
    np.testing.assert_array_equal(classes, classes0)
    np.testing.assert_allclose(scores, scores0)
    np.testing.assert_allclose(boxes, boxes0, atol=0.01)  # anchors re-quantized to uint8


def test_strip_without_the_op_is_a_model_error(tiny_classifier: tuple[Path, np.ndarray, np.ndarray]) -> None:
    data = tiny_classifier[0].read_bytes()
    with pytest.raises(ModelError, match="expected one TFLite_Detection_PostProcess"):
        strip_postprocess(data)
    with pytest.raises(ModelError, match="was not stripped"):
        read_anchors(data)


# --- gpu_ops ------------------------------------------------------------------------------------------------

# The GPU delegate guide's "supported ops" list, copied here from the page.
DOCUMENTED = ["ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXP", "FULLY_CONNECTED",
              "LOGICAL_AND", "LOGISTIC", "LSTM", "MAX_POOL_2D", "MAXIMUM", "MINIMUM", "MUL", "PAD", "PRELU", "RELU",
              "RELU6", "RESHAPE", "RESIZE_BILINEAR", "SOFTMAX", "STRIDED_SLICE", "SUB", "TRANSPOSE_CONV"]


def _ops(data: bytes) -> dict[str, int]:
    """Op histogram (accel.model's needs a model of a known family)."""
    return dict(Counter(op.op for op in model_costs(data).per_op))


def test_every_documented_op_is_in_the_table() -> None:
    assert all(GPU_OPS[name].documented for name in DOCUMENTED)
    assert {name for name, op in GPU_OPS.items() if op.documented} == set(DOCUMENTED)


@pytest.mark.parametrize(("ops", "quantized_flag", "gpu", "cpu"), [
    ({"CONV_2D": 3, "RELU6": 2}, True, {"CONV_2D": 3, "RELU6": 2}, {}),
    ({"CONV_2D": 1, "TFLite_Detection_PostProcess": 1}, True, {"CONV_2D": 1}, {"TFLite_Detection_PostProcess": 1}),
    ({"QUANTIZE": 1, "CONV_2D": 1}, False, {"CONV_2D": 1}, {"QUANTIZE": 1}),
    ({"QUANTIZE": 1, "DEQUANTIZE": 2}, True, {"QUANTIZE": 1, "DEQUANTIZE": 2}, {}),
    ({"ARG_MAX": 1, "NON_MAX_SUPPRESSION_V5": 1}, True, {}, {"ARG_MAX": 1, "NON_MAX_SUPPRESSION_V5": 1}),
    ({"Convolution2DTransposeBias": 1, "MyCustomOp": 1}, True, {"Convolution2DTransposeBias": 1}, {"MyCustomOp": 1}),
], ids=["float", "postprocess", "quant-flag-off", "quant-flag-on", "no-parser", "custom"])
def test_gpu_support_splits_the_histogram(ops: dict[str, int], quantized_flag: bool, gpu: dict[str, int],
                                         cpu: dict[str, int]) -> None:
    split = gpu_support(ops, quantized_flag=quantized_flag)
    assert split["gpu"] == gpu and split["cpu"] == cpu
    assert split["gpu_ops"] + split["cpu_ops"] == split["total_ops"] == sum(ops.values())
    assert split["fully_delegated"] is (not cpu)
    assert set(cpu) <= set(split["notes"])


@pytest.mark.shared
def test_stripping_makes_the_ssd_fully_gpu_delegable(ssd_model: bytes, tmp_path: Path) -> None:
    original, stripped = tmp_path / "ssd.tflite", tmp_path / "ssd_nopp.tflite"
    original.write_bytes(ssd_model)
    stripped.write_bytes(strip_postprocess(ssd_model).model)
    assert gpu_support(load_model(original).ops)["cpu"] == {"TFLite_Detection_PostProcess": 1}
    assert gpu_support(_ops(stripped.read_bytes()))["fully_delegated"]


# EfficientDet-Lite takes uint8 images and casts them to float32 in the graph: TensorFlow's GPU check refuses
# that CAST ("Not supported Cast case. Input type: UINT8 and output type: FLOAT32").
@pytest.mark.parametrize(("name", "cpu"), [("yolov8n_320", {}), ("efficientdet_lite0_320_nopp", {"CAST": 1}),
                                          ("mobilenet_v2_1.0_224", {})])
def test_zoo_models_without_postprocess_leave_on_cpu(built: Build, name: str, cpu: dict[str, int]) -> None:
    assert gpu_support(_ops(built(name).read_bytes()))["cpu"] == cpu
