"""The committed default detectors find synthetic leaves they never saw in training.

Held-out frames (scene seed ``HELD_OUT``; training used seed 0, indices 0..3999) go through accel's
preprocessing (640x480 RGB stretched to 320x320 with ``resize_bilinear``, raw uint8 pixels), LiteRT's classic
``Interpreter`` and pycocotools' COCOeval: the expected figure comes from the COCO reference code, not
from accel's own mAP.
"""

from __future__ import annotations

import contextlib
import io
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from accel.kernels.numpy_ref import resize_bilinear
from accel.sources.synthetic import render_scene

HELD_OUT = 2_024_000  # a scene seed no training run uses (training seeds are < 1,000,000)
FRAMES = 200
WIDTH, HEIGHT = 640, 480
MODELS = {"float32": "default_detector.tflite", "int8": "default_detector_int8.tflite"}
FLOAT_TENSORS = {"anchors", "raw_outputs/box_encodings", "raw_outputs/class_predictions", "detection_boxes",
                 "detection_classes", "detection_scores", "num_detections"}


def _model(name: str) -> Path:
    return Path(str(resources.files("accel") / "data" / MODELS[name]))


def _interpreter(name: str) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(_model(name)), num_threads=2)
    interpreter.allocate_tensors()
    return interpreter


@pytest.fixture(scope="module")
def held_out() -> list[tuple[np.ndarray, np.ndarray]]:
    """(model input uint8 [320, 320, 3], leaves' boxes [k, 4] xyxy in 640x480 pixels) per held-out frame."""
    frames = []
    for index in range(FRAMES):
        scene = render_scene(index, HELD_OUT, WIDTH, HEIGHT)
        boxes = np.array([(b.x0 * WIDTH, b.y0 * HEIGHT, b.x1 * WIDTH, b.y1 * HEIGHT) for b in scene.boxes])
        frames.append((resize_bilinear(scene.rgb, 320, 320), boxes.reshape(-1, 4)))
    return frames


def _coco_ap(truth: list[np.ndarray], found: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """COCOeval bbox stats for xyxy pixel boxes: [AP, AP50, AP75, ...]."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1, "width": WIDTH, "height": HEIGHT} for i in range(len(truth))]
    annotations: list[dict[str, Any]] = []
    for i, boxes in enumerate(truth):
        for x0, y0, x1, y1 in boxes.tolist():
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    results = [
        {"image_id": i + 1, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score}
        for i, (boxes, scores) in enumerate(found)
        for (x0, y0, x1, y1), score in zip(boxes.tolist(), scores.tolist(), strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "leaf"}]}
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats]


@pytest.mark.parametrize("name", list(MODELS))
def test_interface_is_effdet_lite0_with_raw_pixel_input(name: str) -> None:
    interpreter = _interpreter(name)
    (inp,) = interpreter.get_input_details()
    assert inp["dtype"] == np.uint8 and inp["shape"].tolist() == [1, 320, 320, 3]
    assert tuple(inp["quantization"]) == ((0.0, 0) if name == "float32" else (1.0, 0))  # raw pixels either way
    outputs = [(d["name"], d["shape"].tolist(), d["dtype"]) for d in interpreter.get_output_details()]
    assert outputs == [("detection_scores", [1, 25], np.float32), ("detection_boxes", [1, 25, 4], np.float32),
                       ("num_detections", [1], np.float32), ("detection_classes", [1, 25], np.float32)]
    assert _model(name).stat().st_size < 2_000_000
    if name == "int8":  # the network is int8; only the post-process op and what feeds it are float
        graph = schema.Model.GetRootAs(_model(name).read_bytes(), 0).Subgraphs(0)
        tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
        assert {t.Name().decode() for t in tensors if t.Type() == schema.TensorType.FLOAT32} == FLOAT_TENSORS
        assert sum(t.Type() == schema.TensorType.INT8 for t in tensors) > 50


@pytest.mark.parametrize("name", list(MODELS))
def test_held_out_map50_is_at_least_0_7(name: str, held_out: list[tuple[np.ndarray, np.ndarray]]) -> None:
    pytest.importorskip("pycocotools", reason="COCOeval scores the detector: pip install -e '.[eval]'")
    interpreter = _interpreter(name)
    (inp,) = interpreter.get_input_details()
    index = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    found = []
    for image, _ in held_out:
        interpreter.set_tensor(inp["index"], image[np.newaxis])
        interpreter.invoke()
        count = int(interpreter.get_tensor(index["num_detections"])[0])
        ymin, xmin, ymax, xmax = np.clip(interpreter.get_tensor(index["detection_boxes"])[0, :count], 0, 1).T
        classes = interpreter.get_tensor(index["detection_classes"])[0, :count]
        assert set(np.round(classes).tolist()) <= {0.0}  # one class: leaf
        boxes = np.stack([xmin * WIDTH, ymin * HEIGHT, xmax * WIDTH, ymax * HEIGHT], 1)
        found.append((boxes, interpreter.get_tensor(index["detection_scores"])[0, :count]))
    ap, ap50, ap75 = _coco_ap([truth for _, truth in held_out], found)[:3]
    assert ap50 >= 0.7, f"{name}: AP50 {ap50:.3f} (AP {ap:.3f}, AP75 {ap75:.3f}) on {FRAMES} held-out frames"
