"""Folding what a graph computes before it sees an image (accel.model.fold) and GPU readiness
(accel.model.gpu_ready), on a detector exported with a dynamic batch as Keras/TF leave it, and on the STM32
model zoo's SSD in ../shared. The reference is the runtime: the folded file must give the original's outputs
bit for bit on the classic Interpreter's builtin kernels."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from accel.core.errors import ModelError
from accel.model.flatbuffer import read_flatbuffer
from accel.model.fold import FoldPlan, fold_constants, plan_fold, prepared_steps
from accel.model.gpu_ready import explain, gpu_readiness
from accel.model.info import default_model_path

ST_SSD = "st_ssd_mobilenet_v2_fpnlite_035_256_int8_person_nopp.tflite"
SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "TILE"}


@pytest.fixture(scope="module", params=[(True, True), (False, True), (True, False)],
                ids=["int8", "float32", "int8-reshape-to-minus-1"])
def dynamic(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("tensorflow") is None:  # not imported here: see dynamic_batch.build_in_child
        pytest.skip("building the dynamic-batch detector needs TensorFlow (pip install 'accel[build]')")
    from dynamic_batch import build_in_child

    quantize, counts = request.param
    return build_in_child(tmp_path_factory.mktemp("fold") / "dynamic_batch_ssd.tflite", quantize=quantize,
                          counts=counts)


def _outputs(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=data,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def _same_answers(original: bytes, folded: bytes) -> None:
    shape = read_flatbuffer(original).inputs[0].shape
    kind = np.dtype(read_flatbuffer(original).inputs[0].dtype)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, shape, dtype=np.uint8) if kind == np.uint8 else rng.uniform(-1, 1, shape).astype(kind)
        want, got = _outputs(original, x), _outputs(folded, x)
        assert len(want) == len(got)
        for a, b in zip(want, got, strict=True):
            assert a.shape == b.shape and np.array_equal(a, b)


def _check_folded(path: Path, shape_ops: int) -> bytes:
    data = path.read_bytes()
    fb = read_flatbuffer(data)
    assert Counter(op.name for op in fb.ops)["SHAPE"] == shape_ops
    assert any(d < 0 for d in fb.signature(fb.inputs[0].index))  # exported with a dynamic batch
    plan = plan_fold(fb)
    assert plan.shape_ops == shape_ops and plan.pin
    assert {fb.ops[i].name for i in plan.ops} <= SHAPE_OPS | {"RESHAPE", "CONCATENATION", "DEQUANTIZE"}
    assert not any(fb.ops[i].name == "CONV_2D" for i in plan.ops)
    folded, _ = fold_constants(data)
    out = read_flatbuffer(folded)
    assert not SHAPE_OPS & {op.name for op in out.ops}
    assert len(out.ops) == len(fb.ops) - len(plan.ops)
    assert all(d >= 0 for t in out.tensors for d in out.signature(t.index))
    assert prepared_steps(out) == [plan.describe()] and f"SHAPE {shape_ops}" in plan.describe()
    assert not plan_fold(out)  # nothing left to fold
    _same_answers(data, folded)
    return folded


def test_dynamic_batch_export_folds_to_the_same_answers(dynamic: Path) -> None:
    _check_folded(dynamic, 2)


def test_shared_st_ssd_folds_to_the_same_answers(shared_dir: Path) -> None:
    _check_folded(shared_dir / "models" / ST_SSD, 15)


def test_readiness_names_the_run_time_shapes_and_the_fix(dynamic: Path) -> None:
    findings = gpu_readiness(read_flatbuffer(dynamic))
    shape = next(f for f in findings if "SHAPE" in f.what)
    assert shape.what.startswith("2 SHAPE ops compute shapes at run time") and "into RESHAPE" in shape.what
    assert "Failed to modify graph with delegate" in shape.why and "dynamic, -1" in shape.why
    assert 'prepare = "auto"' in shape.fix and shape.repaired
    assert "SHAPE ops" in explain(findings)
    folded, _ = fold_constants(dynamic.read_bytes())
    assert not any("SHAPE" in f.what for f in gpu_readiness(read_flatbuffer(folded)))  # what ran after the repair


def test_readiness_of_a_postprocess_detector_says_split() -> None:
    findings = gpu_readiness(read_flatbuffer(default_model_path()))
    post = next(f for f in findings if "TFLite_Detection_PostProcess" in f.what)
    assert post.repaired and "split = true" in post.fix


def test_models_without_run_time_shapes_are_left_as_they_are() -> None:
    data = default_model_path().read_bytes()
    assert not plan_fold(read_flatbuffer(data))
    assert fold_constants(data)[0] is data


def test_a_value_that_depends_on_the_image_is_not_folded(dynamic: Path) -> None:
    data = dynamic.read_bytes()
    fb = read_flatbuffer(data)
    conv = next(op for op in fb.ops if op.name == "CONV_2D")
    with pytest.raises(ModelError, match="depends on the input, so it is not a constant"):
        fold_constants(data, FoldPlan((conv.index,), {"CONV_2D": 1}))


def test_placeholder_output_shapes_are_read_as_the_runtime_sizes_them(dynamic: Path) -> None:
    # tf.reshape(x, [tf.shape(x)[0], -1, 4]) leaves [1, 1, 4] in the file (signature [-1, -1, 4]); the runtime
    # sizes them [1, 3840, 4]: what load_model must describe, with the anchors read from the graph
    from accel.model import load_model

    model = load_model(dynamic)
    assert [t.shape for t in model.outputs] == [(1, 3840, 2), (1, 3840, 4), (1, 3840, 4)]
    assert model.family.value == "ssd-raw" and set(model.roles) == {"scores", "encodings", "anchors"}
