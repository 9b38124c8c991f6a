"""COCO datasets: checking, the synthetic writer, and the evaluator on hand-computed cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from accel.dataset.coco import DatasetError, DatasetSource, category_map, evaluate, load_dataset, write_synthetic

pytest.importorskip("pycocotools")


def _dataset(tmp: Path, boxes: list[list[list[float]]], size: tuple[int, int] = (100, 50)) -> Path:
    """One image per entry of ``boxes`` (pixel xywh, category 1 'leaf')."""
    (tmp / "images").mkdir(parents=True)
    images, anns = [], []
    for i, per_image in enumerate(boxes):
        Image.new("RGB", size, (i * 40, 0, 0)).save(tmp / "images" / f"{i}.png")
        images.append({"id": 10 + i, "file_name": f"{i}.png", "width": size[0], "height": size[1]})
        for b in per_image:
            anns.append({"id": len(anns) + 1, "image_id": 10 + i, "category_id": 1, "bbox": b,
                         "area": b[2] * b[3], "iscrowd": 0})
    (tmp / "instances.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                    "categories": [{"id": 1, "name": "leaf"}]}))
    return tmp


def _det(box_px: list[float], score: float, size: tuple[int, int] = (100, 50)) -> dict[str, object]:
    x, y, w, h = box_px
    return {"box": [x / size[0], y / size[1], (x + w) / size[0], (y + h) / size[1]], "class_id": 0, "score": score}


def test_perfect_detections_score_one(tmp_path: Path) -> None:
    ds = load_dataset(_dataset(tmp_path, [[[10, 10, 30, 20]], [[50, 5, 40, 40]]]))
    dets = {0: [_det([10, 10, 30, 20], 0.9)], 1: [_det([50, 5, 40, 40], 0.8)]}
    acc = evaluate(ds, dets, {0: 1}, threshold=0.5)
    assert acc["AP50"] == pytest.approx(1.0) and acc["AP"] == pytest.approx(1.0)
    assert (acc["precision"], acc["recall"]) == (1.0, 1.0)


def test_hand_computed_average_precision(tmp_path: Path) -> None:
    # Two ground-truth boxes; detections by score: FP (0.9), TP (0.8), TP (0.7). Precision at recall 0.5 is
    # 1/2, at recall 1.0 it is 2/3; COCO's interpolated precision is the max to the right: 2/3 at every
    # recall point, so AP50 = 2/3. At threshold 0.75: FP + TP kept -> precision 1/2, recall 1/2.
    ds = load_dataset(_dataset(tmp_path, [[[10, 10, 30, 20]], [[50, 5, 40, 40]]]))
    dets = {0: [_det([60, 30, 20, 10], 0.9), _det([10, 10, 30, 20], 0.8)], 1: [_det([50, 5, 40, 40], 0.7)]}
    acc = evaluate(ds, dets, {0: 1}, threshold=0.75)
    assert acc["AP50"] == pytest.approx(2 / 3, abs=1e-3)
    assert (acc["precision"], acc["recall"]) == (0.5, 0.5)


def test_synthetic_dataset_round_trip(tmp_path: Path) -> None:
    from accel.sources.synthetic import render_scene

    write_synthetic(tmp_path / "ds", 3, seed=5, size=(64, 48))
    ds = load_dataset(tmp_path / "ds")
    assert ds.categories == {1: "leaf"} and len(ds.images) == 3
    src = DatasetSource(ds)
    for i in range(3):
        frame = src.read()
        scene = render_scene(i, seed=5, width=64, height=48)
        assert np.array_equal(frame.data, scene.rgb)  # PNG is lossless
        got = sorted((b.x0, b.y0, b.x1, b.y1) for b in frame.truth)
        want = sorted((b.x0, b.y0, b.x1, b.y1) for b in scene.boxes)
        assert np.allclose(got, want)


@pytest.mark.parametrize(
    ("labels", "num_classes", "categories", "expected"),
    [
        (("person", "dog"), 2, {1: "Dog", 3: "person"}, {0: 3, 1: 1}),
        ((), 2, {1: "a", 5: "b"}, {0: 1, 1: 5}),
    ],
    ids=["by-name", "by-position"],
)
def test_category_map(labels: tuple[str, ...], num_classes: int, categories: dict[int, str],
                      expected: dict[int, int]) -> None:
    assert category_map(labels, num_classes, categories) == expected


def _move(root: Path, file_name: str, to: str) -> Path:
    """The first image moved to ``to`` (relative to the root), and the JSON's file_name set to ``file_name``."""
    doc = json.loads((root / "instances.json").read_text())
    doc["images"][0]["file_name"] = file_name
    (root / to).parent.mkdir(parents=True, exist_ok=True)
    (root / "images" / "0.png").rename(root / to)
    (root / "instances.json").write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize(
    ("file_name", "at"),
    [
        ("images/val/0.png", "images/val/0.png"),  # Ultralytics-converted sets: the folder from the root
        ("val/0.png", "images/val/0.png"),
        ("0.png", "0.png"),
    ],
    ids=["folder-from-root", "folder-from-images", "beside-json"],
)
def test_image_file_names_resolve_where_they_exist(tmp_path: Path, file_name: str, at: str) -> None:
    root = _move(_dataset(tmp_path, [[[10, 10, 30, 20]]]), file_name, at)
    ds = load_dataset(root)
    assert ds.image_path(ds.images[0]) == root / at
    acc = evaluate(ds, {0: [_det([10, 10, 30, 20], 0.9)]}, {0: 1}, threshold=0.5)
    assert acc["AP"] == pytest.approx(1.0)
    assert DatasetSource(ds).read().width == 100


def test_image_beside_a_json_in_annotations_resolves(tmp_path: Path) -> None:
    root = _move(_dataset(tmp_path, [[[10, 10, 30, 20]]]), "0.png", "annotations/0.png")
    (root / "instances.json").rename(root / "annotations" / "instances_val.json")
    ds = load_dataset(root)
    assert ds.root == root and ds.image_path(ds.images[0]) == root / "annotations" / "0.png"


def test_missing_image_lists_the_paths_tried(tmp_path: Path) -> None:
    root = _move(_dataset(tmp_path, [[[10, 10, 30, 20]]]), "images/test/0.png", "images/val/0.png")
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert "1 of 1 images are missing (first: images/test/0.png; tried " in str(err.value)
    assert f"{root}/images/images/test/0.png, {root}/images/test/0.png" in str(err.value)


def _bad(tmp: Path, case: str) -> Path:
    root = _dataset(tmp / "ds", [[[10, 10, 30, 20]], [[50, 5, 40, 40]]])
    if case == "corrupt-json":
        (root / "instances.json").write_text('{"images": [ {"id": 1,')
    elif case == "not-coco":
        (root / "instances.json").write_text('{"hello": "world"}')
    elif case == "missing-image":
        (root / "images" / "1.png").unlink()
    elif case == "unknown-category":
        doc = json.loads((root / "instances.json").read_text())
        doc["annotations"][0]["category_id"] = 7
        (root / "instances.json").write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("corrupt-json", "is not valid JSON (line 1"),
        ("not-coco", "is not a COCO instances file"),
        ("missing-image", "1 of 2 images are missing (first: "),
        ("unknown-category", "unknown image or category"),
    ],
)
def test_bad_datasets(tmp_path: Path, case: str, says: str) -> None:
    root = _bad(tmp_path, case)
    with pytest.raises(DatasetError, match=None) as err:
        load_dataset(root)
    assert says in str(err.value) and err.value.exit_code == 2
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--dataset", str(root), "--frames", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], proc.stderr


def test_labels_with_wrong_class_count_is_refused(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("leaf\nstone\n")
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--labels", "labels.txt", "--frames", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "has 2 names but default_detector.tflite has 1 classes" in lines[0]
