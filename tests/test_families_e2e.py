"""Every family end to end: ``python -m accel compare`` on a tiny model of each, as a user runs it.

The models' outputs are constants (zero weights, known biases), so each frame's detections are known by hand.
The source is the default synthetic 640x480: YOLO models letterbox it into their square input (content
75% high, 12.5% from the top: y_frame = (y_model - 0.125) / 0.75), SSD models stretch it (no change).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_build import Out, detector

from accel.model import default_model_path


def _rows(n: int, k: int, first: list[float], at: int = 0) -> np.ndarray:
    values = np.zeros((n, k))
    values[at] = first
    return values


# family -> (outputs, input size, input dtype, input quantization, expected detections of every frame)
CASES = {
    # YOLOv5 uint8 [1, 12, 5 + 3], scale 1/200, zero point 10. Row 0: cx 0.5, cy 0.5, w 0.25, h 0.5, obj 0.9,
    # classes (0.1, 0.8, 0.05): class 1 at 0.9 * 0.8 = 0.72; x 0.375..0.625, y 0.25..0.75 -> 0.166667..0.833333
    "yolov5": ([Out("Identity", (1, 12, 8), _rows(12, 8, [.5, .5, .25, .5, .9, .1, .8, .05]), "uint8",
                    (1 / 200, 10))], (8, 8), "uint8", (1 / 255, 0),
               [([0.375, 0.166667, 0.625, 0.833333], 1, 0.72)]),
    # YOLOv8 int8 [1, 4 + 3, 12], scale 0.01, zero point -20. Column 3: cx 0.3, cy 0.6, w 0.2, h 0.2, classes
    # (0, 0, 0.7): class 2 at 0.7; x 0.2..0.4, y 0.5..0.7 -> 0.5..0.766667
    "yolov8": ([Out("PartitionedCall:0", (1, 7, 12), _rows(12, 7, [.3, .6, .2, .2, 0, 0, .7], at=3).T, "int8",
                    (0.01, -20))], (8, 8), "int8", (1 / 255, -128),
               [([0.2, 0.5, 0.4, 0.766667], 2, 0.7)]),
    # STM32-style SSD: softmax scores (background, person), corner offsets, constant int8 corner anchors.
    # Anchor 0 = x 0..0.5, y 0..0.5 with offsets (0.1, 0.2, -0.1, 0) of its size 0.5: x 0.05..0.45, y 0.1..0.5,
    # softmax(0, ln 9) = 0.9. Anchor 1 = x 0.5..1, y 0..0.5, no offset, softmax(0, 0) = 0.5. Anchor 2: 0.2.
    "ssd-raw": ([Out("StatefulPartitionedCall:2", (1, 3, 2), np.array([0, math.log(9), 0, 0, math.log(4), 0]),
                     activation="softmax"),
                 Out("StatefulPartitionedCall:1", (1, 3, 4), np.array([.1, .2, -.1, 0] + [0] * 8)),
                 Out("StatefulPartitionedCall:0", (1, 3, 4), np.array([0, 0, .5, .5, .5, 0, 1, .5, 0, .5, .5, 1]),
                     quant=(1 / 200, -100), const=True)], (16, 16), "uint8", (1 / 127.5, 127),
                [([0.05, 0.1, 0.45, 0.5], 0, 0.9), ([0.5, 0.0, 1.0, 0.5], 0, 0.5)]),
    # TF-style SSD without anchors in the file: 42 generated anchors on 32x32 (2x2 + five 1x1 layers). Anchor 0 is
    # (0.1, ratio 1) at cell centre (0.25, 0.25): x, y 0.2..0.3; logit ln 4 on class column 1: sigmoid = 0.8.
    "ssd-raw-generated": ([Out("raw_outputs/box_encodings", (1, 42, 4), np.zeros(42 * 4)),
                           Out("raw_outputs/class_predictions", (1, 42, 3),
                               np.where(np.arange(42 * 3) == 1, math.log(4), -10.0))], (32, 32), "float32",
                          (0.0, 0), [([0.2, 0.2, 0.3, 0.3], 0, 0.8)]),
}


def _accel(model: Path, out: Path, cwd: Path) -> subprocess.Popen[str]:
    args = ["compare", "--model", str(model), "--frames", "3", "--seconds", "0", "--delegates", "xnnpack",
            "--threads", "1", "--json", str(out)]
    return subprocess.Popen([sys.executable, "-m", "accel", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:  # type: ignore[type-arg]
    """Every case's result document; the runs go in parallel (each is a fresh interpreter + worker)."""
    folder = tmp_path_factory.mktemp("e2e")
    models = {name: detector(folder / f"{name}.tflite", outs, hw, dtype, quant)
              for name, (outs, hw, dtype, quant, _) in CASES.items()}
    models["classifier"] = folder / "classifier.tflite"
    from tflite_build import classifier

    rng = np.random.default_rng(3)
    classifier(models["classifier"], rng.normal(size=(4, 48)), rng.normal(size=4))
    models["ssd"] = default_model_path()
    procs = {name: _accel(path, folder / f"{name}.json", folder) for name, path in models.items()}
    docs = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {err}"
        docs[name] = json.loads((folder / f"{name}.json").read_text())
    return docs


@pytest.mark.parametrize("name", [*CASES, "classifier", "ssd"])
def test_family_runs_end_to_end(results: dict[str, dict], name: str) -> None:  # type: ignore[type-arg]
    doc = results[name]
    assert doc["model"]["family"] == name.removesuffix("-generated")
    (variant,) = doc["variants"]
    assert variant["status"] == "ok" and variant["frames_measured"] >= 3


@pytest.mark.parametrize("name", list(CASES))
def test_family_detections_are_the_hand_computed_ones(results: dict[str, dict], name: str) -> None:  # type: ignore[type-arg]
    expected = CASES[name][4]
    (variant,) = results[name]["variants"]
    for frame, dets in variant["detections"].items():
        assert len(dets) == len(expected), (frame, dets)
        for det, (box, class_id, score) in zip(dets, expected, strict=True):
            assert det["box"] == pytest.approx(box, abs=1e-4)
            assert det["class_id"] == class_id
            assert det["score"] == pytest.approx(score, abs=1e-4)
