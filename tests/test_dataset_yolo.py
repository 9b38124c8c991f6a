"""Ultralytics YOLO datasets (data.yaml + labels/*.txt) read into the COCO form: expected boxes are computed
by hand from the label values; AP comes from pycocotools on boxes equal to the ground truth."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from accel.core.errors import ConfigError
from accel.dataset.coco import DatasetError, DatasetSource, category_map, evaluate, load_dataset
from accel.dataset.yolo import label_path
from accel.model.labels import parse_labels
from accel.plan.config import load_config

pytest.importorskip("pycocotools")

# Two images with known rectangles. a.png 100x50: a dog at pixel x 40..60, y 15..35 -> "1 0.5 0.5 0.2 0.4".
# b.png 200x100: a cat at x 0..100, y 50..100 -> "0 0.25 0.75 0.5 0.5", and a dog polygon (a triangle
# (20,20) (100,20) (60,80) in pixels -> bounding box x 20..100, y 20..80 -> [20, 20, 80, 60]).
A_BOX, B_CAT, B_DOG = [40.0, 15.0, 20.0, 20.0], [0.0, 50.0, 100.0, 50.0], [20.0, 20.0, 80.0, 60.0]
LABELS = {"a": "1 0.5 0.5 0.2 0.4\n", "b": "0 0.25 0.75 0.5 0.5\n1 0.1 0.2 0.5 0.2 0.3 0.8\n"}
SIZES = {"a": (100, 50), "b": (200, 100), "c": (64, 64), "d": (32, 48)}


def _image(path: Path, size: tuple[int, int], boxes: tuple[list[float], ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (30, 90, 160))
    draw = ImageDraw.Draw(im)
    for x, y, w, h in boxes:
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=(240, 200, 20))
    im.save(path)


def _yolo(root: Path, names: str = "names: [cat, dog]", val: str = "images/val", extra: str = "") -> Path:
    """a, b with labels; c without a label file; d with an empty one. Returns the data.yaml."""
    drawn: dict[str, tuple[list[float], ...]] = {"a": (A_BOX,), "b": (B_CAT, B_DOG), "c": (), "d": ()}
    for stem, size in SIZES.items():
        _image(root / "images" / "val" / f"{stem}.png", size, drawn[stem])
    (root / "labels" / "val").mkdir(parents=True, exist_ok=True)
    for stem, text in LABELS.items():
        (root / "labels" / "val" / f"{stem}.txt").write_text(text)
    (root / "labels" / "val" / "d.txt").write_text("")
    _image(root / "images" / "train" / "t.png", (10, 10))
    (root / "data.yaml").write_text(f"{extra}train: images/train\nval: {val}\n{names}\n")
    return root / "data.yaml"


def _boxes(ds: object) -> dict[str, list[tuple[int, list[float]]]]:
    """Loaded ground truth by image stem: sorted (category, pixel xywh)."""
    by_id = {im["id"]: Path(im["file_name"]).stem for im in ds.images}  # type: ignore[attr-defined]
    out: dict[str, list[tuple[int, list[float]]]] = {stem: [] for stem in by_id.values()}
    for a in ds.doc["annotations"]:  # type: ignore[attr-defined]
        out[by_id[a["image_id"]]].append((a["category_id"], [round(v, 9) for v in a["bbox"]]))
    return {k: sorted(v) for k, v in out.items()}


EXPECTED = {"a": [(1, A_BOX)], "b": [(0, B_CAT), (1, B_DOG)], "c": [], "d": []}


@pytest.mark.parametrize("target", ["folder", "yaml"])
def test_yolo_list_names(tmp_path: Path, target: str) -> None:
    yaml_path = _yolo(tmp_path)
    ds = load_dataset(tmp_path if target == "folder" else yaml_path)
    assert (ds.format, ds.split, ds.annotations, ds.root) == ("yolo", "val", yaml_path, tmp_path)
    assert ds.categories == {0: "cat", 1: "dog"}
    assert [(Path(im["file_name"]).name, im["width"], im["height"]) for im in ds.images] == [
        ("a.png", 100, 50), ("b.png", 200, 100), ("c.png", 64, 64), ("d.png", 32, 48)]
    assert _boxes(ds) == EXPECTED
    assert ds.image_path(ds.images[1]) == tmp_path / "images" / "val" / "b.png"
    assert ds.annotated_categories() == {0, 1}


def test_yolo_map_names_with_gaps_and_path_key(tmp_path: Path) -> None:
    root = tmp_path / "set"
    _yolo(root, names="names:\n  0: cat\n  1: dog\n  7: zebra\n")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "mine.yaml").write_text((root / "data.yaml").read_text() + "path: ../set\n")
    ds = load_dataset(tmp_path / "cfg" / "mine.yaml")
    assert ds.root == root and ds.categories == {0: "cat", 1: "dog", 7: "zebra"}
    assert _boxes(ds) == EXPECTED


def test_yolo_txt_split_and_split_selector(tmp_path: Path) -> None:
    _yolo(tmp_path, val="val.txt")
    # "./" is relative to the list's folder; a bare path to the list's folder or the root; order is kept.
    (tmp_path / "val.txt").write_text("./images/val/b.png\n\nimages/val/a.png\n")
    ds = load_dataset(tmp_path)
    assert [Path(im["file_name"]).name for im in ds.images] == ["b.png", "a.png"]
    assert _boxes(ds) == {"a": EXPECTED["a"], "b": EXPECTED["b"]}
    train = load_dataset(tmp_path, split="train")
    assert [im["file_name"] for im in train.images] == ["images/train/t.png"] and train.split == "train"


def test_yolo_split_as_a_list_and_roboflow_parent_paths(tmp_path: Path) -> None:
    # Roboflow writes "../valid/images" beside data.yaml; Ultralytics then drops the "../" (as accel does)
    _yolo(tmp_path, val="[../images/val, images/train]")
    ds = load_dataset(tmp_path)
    assert [im["file_name"] for im in ds.images] == [f"images/val/{s}.png" for s in "abcd"] + ["images/train/t.png"]
    assert _boxes(ds) == {**EXPECTED, "t": []}


def test_yolo_sizes_follow_exif_orientation(tmp_path: Path) -> None:
    _yolo(tmp_path)
    im = Image.new("RGB", (100, 50), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the frame is 50x100
    im.save(tmp_path / "images" / "val" / "a.jpg", exif=exif.tobytes())
    (tmp_path / "images" / "val" / "a.png").unlink()
    ds = load_dataset(tmp_path)
    first = ds.images[0]
    assert (first["width"], first["height"]) == (50, 100)
    frame = DatasetSource(ds).read()
    assert (frame.width, frame.height) == (50, 100)
    assert [(b.x0, b.y0, b.x1, b.y1) for b in frame.truth][0] == pytest.approx((0.4, 0.3, 0.6, 0.7))
    assert len(frame.truth) == 1


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("/d/images/val/x.jpg", "/d/labels/val/x.txt"),
        ("/d/images/a/images/x.png", "/d/images/a/labels/x.txt"),
        ("/d/pics/x.jpeg", "/d/pics/x.txt"),
    ],
    ids=["standard", "last-images-folder", "no-images-folder"],
)
def test_label_path(image: str, expected: str) -> None:
    assert label_path(Path(image)) == Path(expected)


def _perfect(ds: object, boxes: dict[str, list[tuple[int, list[float]]]]) -> dict[int, list[dict[str, object]]]:
    """Detections equal to ``boxes`` (hand-computed pixel xywh) in the result JSON's normalized xyxy form."""
    out: dict[int, list[dict[str, object]]] = {}
    for i, im in enumerate(ds.images):  # type: ignore[attr-defined]
        w, h = im["width"], im["height"]
        out[i] = [{"box": [x / w, y / h, (x + bw) / w, (y + bh) / h], "class_id": c, "score": 0.9}
                  for c, (x, y, bw, bh) in boxes[Path(im["file_name"]).stem]]
    return out


def test_yolo_ground_truth_scores_ap_one_in_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ds = load_dataset(_yolo(tmp_path))
    # pycocotools alone, on accel's converted ground truth and the hand-computed boxes
    results = [{"image_id": im["id"], "category_id": c, "bbox": b, "score": 0.9}
               for im in ds.images for c, b in EXPECTED[Path(im["file_name"]).stem]]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(json.dumps(ds.doc))
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0) and ev.stats[1] == pytest.approx(1.0)
    # accel's evaluate, with a YOLO model (ids = dataset ids) and with boxes off by half their size
    acc = evaluate(ds, _perfect(ds, EXPECTED), {0: 0, 1: 1}, threshold=0.5)
    assert (acc["AP"], acc["AP50"], acc["precision"], acc["recall"]) == pytest.approx((1.0, 1.0, 1.0, 1.0))
    shifted = {k: [(c, [x + bw / 2, y, bw, bh]) for c, (x, y, bw, bh) in v] for k, v in EXPECTED.items()}
    assert evaluate(ds, _perfect(ds, shifted), {0: 0, 1: 1}, threshold=0.5)["AP50"] == pytest.approx(0.0)


# TF's COCO label map: '???' first and in the gaps of the 90 ids (person = class 0, dog = 17).
SSD_LABELMAP = "???\nperson\nbicycle\n" + "???\n" * 15 + "dog\n"


def test_ssd_labels_score_a_yolo_dataset_by_name(tmp_path: Path) -> None:
    ds = load_dataset(_yolo(tmp_path, names="names: [person, dog]"))
    labels = parse_labels(SSD_LABELMAP)
    assert labels[0] == "person" and labels[17] == "dog"
    classes = category_map(labels, len(labels), ds.categories, ds.annotated_categories())
    assert classes == {0: 0, 17: 1}
    ssd_boxes = {k: [(17 if c == 1 else 0, b) for c, b in v] for k, v in EXPECTED.items()}
    assert evaluate(ds, _perfect(ds, ssd_boxes), classes, threshold=0.5)["AP"] == pytest.approx(1.0)


def test_real_label_files_map_coco80_and_coco90(shared_dir: Path) -> None:
    coco80 = parse_labels((shared_dir / "models" / "coco80_labels.txt").read_text())
    ssd = parse_labels((shared_dir / "models" / "ssd_mobilenet_v1_coco_labelmap.txt").read_text())
    categories = dict(enumerate(coco80))  # a YOLO data.yaml with the COCO names
    assert category_map(coco80, 80, categories) == {i: i for i in range(80)}
    mapping = category_map(ssd, len(ssd), categories)
    assert len(mapping) == 80
    # COCO ids (1-based, with gaps) minus one: person 1, stop sign 13, dog 18, toothbrush 90
    assert [mapping[0], mapping[12], mapping[17], mapping[89]] == [0, 11, 16, 79]


@pytest.mark.parametrize(
    ("labels", "categories", "used", "says"),
    [
        (("leaf", "stone"), {0: "cat", 1: "dog"}, None, "2 of 2 dataset categories name no class of the model "
                                                        "('cat', 'dog'); the model's labels are 'leaf', 'stone'"),
        (("cat",), {0: "cat", 1: "dog"}, {0, 1}, "1 of 2 dataset categories name no class of the model ('dog')"),
    ],
    ids=["none-match", "one-unmatched"],
)
def test_unmatched_names_are_one_config_error(labels: tuple[str, ...], categories: dict[int, str],
                                              used: set[int] | None, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        category_map(labels, len(labels), categories, used)
    assert says in str(err.value) and "--labels" in str(err.value) and "\n" not in str(err.value)


def test_unused_categories_and_name_spelling_do_not_matter() -> None:
    # darknet's spellings, and Roboflow's supercategory (5) that no annotation uses
    cats = {0: "Traffic_Light", 1: "dog", 2: "motorbike", 3: "tvmonitor", 5: "cars-dataset"}
    labels = ("dog", "traffic light", "motorcycle", "tv")
    assert category_map(labels, 4, cats, {0, 1, 2, 3}) == {0: 1, 1: 0, 2: 2, 3: 3}


def _broken(root: Path, case: str) -> Path:
    yaml_path = _yolo(root)
    text = yaml_path.read_text()
    if case == "no-names":
        yaml_path.write_text(text.replace("names: [cat, dog]\n", ""))
    elif case == "no-split":
        yaml_path.write_text(text.replace("val: images/val\n", ""))
    elif case == "split-folder-missing":
        yaml_path.write_text(text.replace("val: images/val", "val: images/valid"))
    elif case == "not-numbers":
        (root / "labels" / "val" / "b.txt").write_text("0 0.25 0.75 0.5 0.5\ndog 0.5 0.5 0.1 0.1\n")
    elif case == "class-out-of-range":
        (root / "labels" / "val" / "a.txt").write_text("2 0.5 0.5 0.2 0.4\n")
    elif case == "pixel-coordinates":
        (root / "labels" / "val" / "a.txt").write_text("1 50 25 20 20\n")
    elif case == "odd-polygon":
        (root / "labels" / "val" / "a.txt").write_text("1 0.1 0.2 0.3 0.4 0.5\n")
    elif case == "bad-yaml":
        yaml_path.write_text("names: [cat, dog\nval: images/val\n")
    elif case == "listed-image-missing":
        yaml_path.write_text(text.replace("val: images/val", "val: val.txt"))
        (root / "val.txt").write_text("images/val/a.png\nimages/val/zz.png\n")
    return root


BROKEN = [
    ("no-names", "data.yaml: missing key 'names' (the class names"),
    ("no-split", "data.yaml: no 'val' split (it has train): set [accuracy] split"),
    ("split-folder-missing", "data.yaml: val: images/valid does not exist (tried "),
    ("not-numbers", "b.txt line 2: expected numbers 'class cx cy w h'"),
    ("class-out-of-range", "a.txt line 1: class 2 is not in data.yaml's names (ids 0..1)"),
    ("pixel-coordinates", "a.txt line 1: coordinates must be fractions of the image size (0..1)"),
    ("odd-polygon", "a.txt line 1: expected 'class cx cy w h' or a polygon"),
    ("bad-yaml", "data.yaml is not valid YAML (line "),
    ("listed-image-missing", "val.txt: 1 of 2 listed images are missing (first: images/val/zz.png; tried "),
]


@pytest.mark.parametrize(("case", "says"), BROKEN, ids=[c for c, _ in BROKEN])
def test_broken_yolo_datasets(tmp_path: Path, case: str, says: str) -> None:
    root = _broken(tmp_path / "ds", case)
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert says in str(err.value) and "\n" not in str(err.value) and err.value.exit_code == 2


@pytest.mark.parametrize("case", ["not-numbers", "no-split"])
def test_broken_yolo_dataset_is_one_line_from_the_cli(tmp_path: Path, case: str) -> None:
    root = _broken(tmp_path / "ds", case)
    says = dict(BROKEN)[case]
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--dataset", str(root / "data.yaml"),
                           "--frames", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], proc.stderr


def test_split_config_key(tmp_path: Path) -> None:
    (tmp_path / "accel.toml").write_text('[accuracy]\nsplit = "test"\n')
    assert load_config(tmp_path / "accel.toml", env={}).accuracy.split == "test"
    assert load_config(None, env={}).accuracy.split == "val"
    (tmp_path / "accel.toml").write_text('[accuracy]\nsplit = " "\n')
    with pytest.raises(ConfigError, match="accuracy.split"):
        load_config(tmp_path / "accel.toml", env={})


def _as_yolo(coco_root: Path, out: Path) -> Path:
    """The synthetic COCO set rewritten by hand as a YOLO set (normalized cx cy w h, class = category - 1)."""
    doc = json.loads((coco_root / "annotations" / "instances.json").read_text())
    (out / "images" / "val").mkdir(parents=True)
    (out / "labels" / "val").mkdir(parents=True)
    for im in doc["images"]:
        (coco_root / "images" / im["file_name"]).rename(out / "images" / "val" / im["file_name"])
        W, H = im["width"], im["height"]  # noqa: N806
        lines = [f"{a['category_id'] - 1} {(x + w / 2) / W!r} {(y + h / 2) / H!r} {w / W!r} {h / H!r}"
                 for a in doc["annotations"] if a["image_id"] == im["id"] for x, y, w, h in [a["bbox"]]]
        (out / "labels" / "val" / f"{Path(im['file_name']).stem}.txt").write_text("\n".join(lines))
    names = [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])]
    (out / "data.yaml").write_text(f"val: images/val\nnames: {json.dumps(names)}\n")
    return out


def test_compare_scores_the_same_scenes_alike_in_both_formats(tmp_path: Path) -> None:
    def ap(dataset: Path, run: str) -> dict[str, float]:
        proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--dataset", str(dataset), "--frames",
                               "4", "--delegates", "cpu-reference", "--json", f"{run}.json"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads((tmp_path / f"{run}.json").read_text())
        return doc["variants"][0]["accuracy"]

    subprocess.run([sys.executable, "-m", "accel", "dataset", "synth", "--out", "coco", "--frames", "4"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=120)
    coco = ap(tmp_path / "coco", "coco")
    yolo = ap(_as_yolo(tmp_path / "coco", tmp_path / "yolo"), "yolo")
    assert coco["AP"] > 0.1
    for key in ("AP", "AP50", "AP75", "precision", "recall"):
        assert yolo[key] == pytest.approx(coco[key], abs=1e-9), key


# The two beagles in ../shared/images/beagles.jpg as ../shared/models/README.md gives them (SSD's boxes,
# ymin xmin ymax xmax normalized), labelled as a YOLO set with the COCO names (dog = 16).
BEAGLES = [(0.010, 0.001, 0.861, 0.335), (0.081, 0.310, 0.958, 0.969)]


@pytest.mark.shared
@pytest.mark.parametrize(
    ("model", "labels", "dog"),
    [("ssd_mobilenet_v1_coco_quant_postprocess.tflite", "ssd_mobilenet_v1_coco_labelmap.txt", "17"),
     ("yolov5n-int8.tflite", "coco80_labels.txt", "16")],
    ids=["ssd-90-ids", "yolo-80-ids"],
)
def test_real_detectors_score_a_yolo_dataset(shared_dir: Path, tmp_path: Path, model: str, labels: str,
                                             dog: str) -> None:
    root = tmp_path / "ds"
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "images" / "val" / "beagles.jpg").write_bytes((shared_dir / "images" / "beagles.jpg").read_bytes())
    (root / "labels" / "val" / "beagles.txt").write_text(
        "".join(f"16 {(x0 + x1) / 2} {(y0 + y1) / 2} {x1 - x0} {y1 - y0}\n" for y0, x0, y1, x1 in BEAGLES))
    names = parse_labels((shared_dir / "models" / "coco80_labels.txt").read_text())
    (root / "data.yaml").write_text(f"val: images/val\nnames: {json.dumps(list(names))}\n")
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--model", str(shared_dir / "models" / model),
                           "--labels", str(shared_dir / "models" / labels), "--dataset", "ds", "--frames", "1",
                           "--delegates", "cpu-reference", "--json", "r.json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["dataset"]["class_to_category"][dog] == 16
    assert doc["variants"][0]["accuracy"]["AP50"] == pytest.approx(1.0)  # both dogs found, as dogs
