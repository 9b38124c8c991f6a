"""The model's costs in the result document: `accel compare` puts `accel inspect`'s MACs and FLOPs in the
`model` block, and a model whose costs cannot be computed gets `costs: null` and why, never a failed run.

The expected figure is the layer formula worked by hand for a graph of one CONV_2D (tests/tflite_build.py):
an 8x8x3 image, a 3x3 VALID convolution to 4 channels: a 6x6x4 output, each element a sum of 3*3*3 products.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from tflite_build import conv_classifier

from accel.compare.comparison import compare
from accel.core.errors import ModelError
from accel.model import model_costs
from accel.plan.config import load_config

H_OUT = W_OUT = 8 - 3 + 1
MACS = H_OUT * W_OUT * 4 * 3 * 3 * 3  # H_out * W_out * C_out * K * K * C_in = 3888


def _run(tmp_path: Path, model: Path) -> dict[str, Any]:
    cfg = load_config(None, {"model.path": str(model), "delegates": ["cpu-reference"], "pipeline.frames": 2,
                             "pipeline.seconds": 0.0, "pipeline.warmup": 0, "power.meter": "none",
                             "output.formats": []}, env={})
    _, path = compare(cfg, isolate=False, result_path=tmp_path / "result.json")
    return json.loads(path.read_text(encoding="utf-8"))  # what a report reads: the file on disk


@pytest.fixture
def conv(tmp_path: Path) -> Path:
    return conv_classifier(tmp_path / "conv.tflite", out_c=4, k=3, hw=(8, 8))


def test_the_result_holds_the_hand_computed_flops_of_one_conv(tmp_path: Path, conv: Path) -> None:
    doc = _run(tmp_path, conv)
    costs = doc["model"]["costs"]
    assert costs["macs"] == MACS == 3888 and costs["flops"] == 2 * MACS
    assert costs["macs_by_op"] == {"CONV_2D": MACS} and costs["other_flops"] == 0
    assert costs["params"] == 4 * 3 * 3 * 3 + 4  # the filter and the bias
    assert costs == model_costs(conv).to_json()  # what `accel inspect --json` prints for the same file
    assert "costs_why" not in doc["model"] and doc["variants"][0]["status"] == "ok"


@pytest.mark.parametrize("error", [ModelError("conv.tflite is truncated or corrupt"), KeyError("CONV_2D")],
                         ids=["model-error", "a-bug"])
def test_costs_that_cannot_be_computed_are_null_with_why_and_the_run_goes_on(
        tmp_path: Path, conv: Path, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fails(_: Any) -> None:
        raise error

    # accel.compare.comparison, the attribute, is the function accel exports: patch the module
    monkeypatch.setattr(importlib.import_module("accel.model.costs"), "model_costs", fails)
    doc = _run(tmp_path, conv)
    assert doc["model"]["costs"] is None and doc["complete"] is True
    assert [v["status"] for v in doc["variants"]] == ["ok"]
    why = doc["model"]["costs_why"]
    assert "\n" not in why and (why == str(error) if isinstance(error, ModelError) else "KeyError" in why)
