"""Detectors whose TFLite_Detection_PostProcess outputs pass through further ops before the graph outputs, as
some TF2 exports have them (QUANTIZE and DEQUANTIZE, QUANTIZE alone, CAST and RESHAPE; TF2 output names and
no static shapes: ``tflite_build.behind_postprocess``), built from the embedded detector (one class, 25
detections, TF2 output order) and from ``tflite_build.ssd_detector`` (six classes, 10 detections, and 25 set
with ``set_postprocess_options``).

The reference is the classic Interpreter's own outputs, read here by hand: dequantized with the scale and zero
point the Interpreter reports, the first ``count`` rows, class ids rounded to the nearest integer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tflite_build import BEHIND_QUANT, CHAINS, behind_postprocess, ssd_detector

from accel.core.errors import ModelError
from accel.delegates.gpu import prepare_model
from accel.kernels import Geometry
from accel.kernels.numpy_ref import NumpyKernels
from accel.model import (
    Family,
    ModelInfo,
    default_model_path,
    load_model,
    read_model,
    set_postprocess_options,
    strip_postprocess,
    write_model,
)
from accel.plan.settings import Settings
from accel.run.pipeline import decode_spec

# base -> graph output position of each of the op's slots: the embedded detector is a TF2 export (scores,
# boxes, count, classes); graft_postprocess writes the op's slot order.
BASES = {"default-25": {"scores": 0, "boxes": 1, "count": 2, "classes": 3},
         "ssd6-10": {"boxes": 0, "classes": 1, "scores": 2, "count": 3},
         "ssd6-25": {"boxes": 0, "classes": 1, "scores": 2, "count": 3}}
DETECTIONS = {"default-25": 25, "ssd6-10": 10, "ssd6-25": 25}
WORKING = [c for c in CHAINS if c != "op-quantized"]  # op-quantized: the runtime's answers are meaningless
THRESHOLD = 0.1


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Path]:
    """(base, chain, dtype) -> model file; chain "" is the base itself."""
    folder = tmp_path_factory.mktemp("behind")
    six = ssd_detector(folder / "ssd6.tflite").read_bytes()
    bases = {"default-25": default_model_path().read_bytes(), "ssd6-10": six,
             "ssd6-25": set_postprocess_options(six, {"max_detections": 25})}
    out = {}
    for base, data in bases.items():
        out[base, "", ""] = folder / f"{base}.tflite"
        out[base, "", ""].write_bytes(data)
        for chain in CHAINS:
            for dtype in ("uint8", "int8"):
                out[base, chain, dtype] = folder / f"{base}-{chain}-{dtype}.tflite"
                out[base, chain, dtype].write_bytes(behind_postprocess(data, chain, dtype))
    return out


def _cases(chains: list[str] | tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [(b, c, d) for b in BASES for c in chains for d in ("uint8", "int8")]


def _inputs(model: ModelInfo) -> list[np.ndarray]:
    """Random images and two flat colours, as the model's uint8 input."""
    shape = model.image_input.shape
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3)]
    return images + [np.full(shape, v, np.uint8) for v in (40, 200)]


def _invoke(path: Path, image: np.ndarray) -> tuple[list[np.ndarray], list[dict]]:  # type: ignore[type-arg]
    """The graph outputs and their details, by the Interpreter's builtin kernels (cpu-reference's)."""
    it = Interpreter(model_path=str(path), num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], image)
    it.invoke()
    details = it.get_output_details()
    return [it.get_tensor(d["index"]).copy() for d in details], details


def _by_hand(outputs: list[np.ndarray], details: list[dict], slots: dict[str, int]) -> list[tuple]:  # type: ignore[type-arg]
    """(xyxy box, class id, score) of each detection the graph outputs hold at or above THRESHOLD."""
    real = {}
    for role, pos in slots.items():
        scale, zero_point = details[pos]["quantization"]
        v = outputs[pos].astype(np.float64)
        real[role] = (v - zero_point) * scale if scale else v
    n = min(int(round(float(real["count"].reshape(-1)[0]))), real["scores"].size)
    found = []
    for box, c, s in zip(real["boxes"].reshape(-1, 4)[:n], real["classes"].reshape(-1)[:n],
                         real["scores"].reshape(-1)[:n], strict=True):
        if s >= THRESHOLD:
            ymin, xmin, ymax, xmax = np.clip(box, 0.0, 1.0)
            found.append(((xmin, ymin, xmax, ymax), int(np.rint(c)), s))
    return found


@pytest.mark.parametrize(("base", "chain", "dtype"), _cases(CHAINS))
def test_roles_follow_each_output_back_to_the_ops_slot(built: dict, base: str, chain: str, dtype: str) -> None:  # type: ignore[type-arg]
    model = load_model(built[base, chain, dtype])
    assert model.family is Family.SSD
    assert model.roles == BASES[base]
    m = DETECTIONS[base]
    shapes = {"boxes": (1, m, 4), "classes": (1, m), "scores": (1, m), "count": (1,)}
    assert {role: model.outputs[pos].shape for role, pos in model.roles.items()} == shapes
    if chain == "quantize":
        shift = -128 if dtype == "int8" else 0
        for role, pos in model.roles.items():
            t = model.outputs[pos]
            assert (t.dtype, t.scale, t.zero_point) == (dtype, pytest.approx(BEHIND_QUANT[role][0]),
                                                        BEHIND_QUANT[role][1] + shift)


@pytest.mark.parametrize(("base", "chain", "dtype"), _cases(WORKING))
def test_detections_are_the_interpreters_outputs(built: dict, base: str, chain: str, dtype: str) -> None:  # type: ignore[type-arg]
    model = load_model(built[base, chain, dtype])
    spec = decode_spec(model, Settings(score_threshold=THRESHOLD))
    off_integer = 0.0
    for image in _inputs(model):
        outputs, details = _invoke(model.path, image)
        want = _by_hand(outputs, details, BASES[base])
        got = NumpyKernels().postprocess({role: outputs[pos] for role, pos in model.roles.items()}, spec, Geometry())
        assert len(got) == len(want)
        np.testing.assert_array_equal(got.class_ids, [c for _, c, _ in want])
        np.testing.assert_allclose(got.scores, [s for _, _, s in want], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.boxes.reshape(-1, 4), np.reshape([b for b, _, _ in want], (-1, 4)), rtol=0,
                                   atol=1e-6)
        classes = outputs[BASES[base]["classes"]].astype(np.float64)
        scale, zero_point = details[BASES[base]["classes"]]["quantization"]
        real = (classes - zero_point) * scale if scale else classes
        off_integer = max(off_integer, float(np.abs(real - np.rint(real)).max()))
    if base.startswith("ssd6") and chain != "cast-reshape":  # ids in steps of 0.38: 4.94, 4.18, ...
        assert off_integer > 0.05


@pytest.mark.parametrize(("base", "chain", "dtype"), _cases(CHAINS))
def test_split_drops_the_ops_after_the_op_and_decodes_as_the_whole_graph(built: dict, base: str, chain: str,  # type: ignore[type-arg]
                                                                          dtype: str, tmp_path: Path) -> None:
    """litert-gpu's split of such a model is the split of the model without those ops, and its answers are
    the whole model's (the ops removed with the op are done again on the decoded outputs). The op-quantized
    model's own answers are meaningless (the op writes float32 into tensors its DEQUANTIZE ops read as
    integers): its split answers as the op does, as the model without those ops."""
    whole = load_model(built[base, chain, dtype])
    split = prepare_model(whole, tmp_path)
    plain = prepare_model(load_model(built[base, "", ""]), tmp_path)
    assert split.family is Family.SSD_RAW and len(split.outputs) == 2
    assert split.ops == plain.ops
    reference = load_model(built[base, "", ""]) if chain == "op-quantized" else whole
    settings = Settings(score_threshold=THRESHOLD)
    for image in _inputs(whole):
        raw, _ = _invoke(split.path, image)
        reported = NumpyKernels().postprocess({role: raw[pos] for role, pos in split.roles.items()},
                                              decode_spec(split, settings), Geometry())
        outputs, _ = _invoke(reference.path, image)
        want = NumpyKernels().postprocess({role: outputs[pos] for role, pos in reference.roles.items()},
                                          decode_spec(reference, settings), Geometry())
        assert reported.to_json() == want.to_json()


def test_split_refuses_an_op_after_the_op_that_computes(built: dict) -> None:  # type: ignore[type-arg]
    """A LOGISTIC in place of the first QUANTIZE: the split could not give the graph's answers, so it says so."""
    from ai_edge_litert import schema_py_generated as s

    model = read_model(built["ssd6-10", "qdq", "uint8"].read_bytes())
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.LOGISTIC
    model.operatorCodes.append(code)
    ops = model.subgraphs[0].operators
    first = next(op for op in ops if model.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.QUANTIZE)
    first.opcodeIndex = len(model.operatorCodes) - 1
    with pytest.raises(ModelError, match="outputs feed a LOGISTIC op; accel splits the op off only when"):
        strip_postprocess(write_model(model))


@pytest.mark.parametrize(("base", "chain", "dtype"), [("ssd6-25", "qdq", "uint8"), ("default-25", "quantize", "int8")])
def test_compare_runs_such_a_model_with_the_default_delegates(built: dict, base: str, chain: str, dtype: str,  # type: ignore[type-arg]
                                                              tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--model", str(built[base, chain, dtype]),
                           "--frames", "5", "--seconds", "0", "--power-meter", "none", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    variants = json.loads(out.read_text())["variants"]
    assert {v["delegate"] for v in variants} >= {"cpu-reference", "xnnpack"}
    for v in variants:
        assert v["status"] == "ok", v.get("error")
        assert v["agreement"] is None or v["agreement"]["score"] == 1.0
