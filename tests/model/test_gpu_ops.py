"""The GPU op table (``gpu_support``) against TensorFlow's own GPU check, over the ops of the models accel builds.

Expected verdicts come from ``tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)``, which runs
``CheckGpuDelegateCompatibility`` (tensorflow/lite/tools/versioning/gpu_compatibility.cc) on every op and prints a
"GPU COMPATIBILITY WARNING: <why>" line under each op it refuses. TensorFlow's verdict for an op type: GPU when at
least one of its instances in these models passes, else CPU. An instance of a GPU op can still fail on shapes or
options (the table's notes say which); the table judges op names, so the two are compared at that level.

Newer TensorFlow emptied the analyzer's check (tensorflow/tensorflow#77042, from the 2.19 nightlies on: 2.21 calls
every model compatible, even one with TFLite_Detection_PostProcess). With such a TensorFlow the test skips and says
so. ``ACCEL_TF_ANALYZER_PYTHON`` may name the Python of an environment whose TensorFlow still checks (2.17.1 does):
the analyzer then runs there, and the models are still built here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from tflite_build import Out, classifier, detector

from accel.model import default_model_path, gpu_support, strip_postprocess

_ANALYZE = """
import contextlib, io, json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
reports = {}
for path in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_path=path, gpu_compatibility=True)
    reports[path] = out.getvalue()
print(json.dumps({"version": tf.__version__, "reports": reports}))
"""
_OP = re.compile(r"^\s+Op#\d+ (\S+?)\(")
_WARNING = "GPU COMPATIBILITY WARNING: "


def _analyze(paths: Iterable[Path]) -> tuple[str, dict[str, str]]:
    """(TensorFlow version, analyzer report per path), from a fresh interpreter (its C++ logging stays there)."""
    python = os.environ.get("ACCEL_TF_ANALYZER_PYTHON") or sys.executable
    run = subprocess.run([python, "-c", _ANALYZE, *map(str, paths)], capture_output=True, text=True, timeout=300,
                         check=False)
    if run.returncode != 0:
        pytest.fail(f"the analyzer failed under {python}: {run.stderr[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result["version"], result["reports"]


def _verdicts(reports: Iterable[str]) -> dict[str, tuple[int, dict[str, int]]]:
    """Op type -> (instances TensorFlow passes, {refusal message: instances}) over the subgraphs' op listings."""
    passed: dict[str, int] = {}
    refused: dict[str, dict[str, int]] = {}
    for report in reports:
        current = ""
        for line in report.splitlines():
            if m := _OP.match(line):
                current = m.group(1)
                passed[current] = passed.get(current, 0) + 1
                refused.setdefault(current, {})
            elif line.startswith(_WARNING) and current and not line.startswith(_WARNING + "Subgraph#"):
                passed[current] -= 1  # the warning stands right under the op it refuses
                why = line[len(_WARNING):].strip()
                refused[current][why] = refused[current].get(why, 0) + 1
                current = ""
    return {op: (passed[op], refused[op]) for op in passed}


@pytest.fixture(scope="module")
def checking_analyzer() -> str:
    """The TensorFlow version whose analyzer is used, once it is seen to refuse an op it has always refused."""
    pytest.importorskip("tensorflow", reason="building the models needs TensorFlow (pip install 'accel[build]')")
    version, reports = _analyze([default_model_path()])
    if "Not supported custom op TFLite_Detection_PostProcess" not in next(iter(reports.values())):
        pytest.skip(f"TensorFlow {version}'s analyzer no longer checks GPU compatibility (it calls every model "
                    "compatible: tensorflow/tensorflow#77042); set ACCEL_TF_ANALYZER_PYTHON to a Python with an "
                    "older TensorFlow (2.17.1 checks) to compare the table with gpu_compatibility.cc")
    return version


def _zoo_network(module: str, variant: str, uint8_input: bool) -> bytes:
    """A zoo family's network at a small input, converted to fp32 as ``accel.zoo`` converts it."""
    import importlib

    from accel.zoo import layers

    family = importlib.import_module(f"accel.zoo.{module}")
    network = family.build_network(variant, 0, uint8_input=uint8_input)
    return layers.convert(network, "fp32", io_dtype=None, input_range=(0.0, 1.0), seed=0)


@pytest.fixture(scope="module")
def repo_models(checking_analyzer: str, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The models accel builds: the shipped default detectors (tools/build_default_model.py) and the split one,
    the zoo families at small inputs (their op types do not depend on the size), and tests/tflite_build.py's."""
    folder = tmp_path_factory.mktemp("gpu_ops")
    data = default_model_path().parent
    paths = [data / "default_detector.tflite", data / "default_detector_int8.tflite", folder / "split.tflite"]
    paths[2].write_bytes(strip_postprocess(paths[0].read_bytes()).model)
    for module, variant, uint8_input in [("classifiers", "mobilenet_v1_0.25_32", False),
                                         ("classifiers", "mobilenet_v2_0.35_32", False),
                                         ("yolov8", "64", False), ("efficientdet", "64", True)]:
        paths.append(folder / f"{module}_{variant}.tflite")
        paths[-1].write_bytes(_zoo_network(module, variant, uint8_input))
    rng = np.random.default_rng(0)
    paths.append(classifier(folder / "tiny_classifier.tflite", rng.normal(size=(5, 48)).astype(np.float32),
                            np.zeros(5, np.float32)))
    paths.append(detector(folder / "tiny_detector.tflite", [
        Out("scores", (1, 6, 3), np.zeros(18), activation="softmax", dtype="uint8", quant=(1 / 256, 0)),
        Out("boxes", (1, 6, 4), np.zeros(24), activation="logistic")], input_dtype="uint8"))
    return paths


def test_gpu_table_agrees_with_tensorflows_check(checking_analyzer: str, repo_models: list[Path]) -> None:
    version, reports = _analyze(repo_models)
    verdicts = _verdicts(reports.values())
    assert {"CAST", "CONV_2D", "TFLite_Detection_PostProcess"} <= set(verdicts)  # the ops this test is about
    wrong = []
    for op, (passed, refused) in sorted(verdicts.items()):
        expected = "gpu" if passed > 0 else "cpu"
        split = gpu_support({op: 1})
        table = "gpu" if op in split["gpu"] else "cpu"
        if table != expected:
            wrong.append(f"{op}: TensorFlow {version} {expected} ({passed} passed, refused: {refused}), "
                         f"table {table} ({split['notes'].get(op, 'no note')})")
    assert not wrong, "\n".join(wrong)
