from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from accel.model import embedded_labels, find_labels, load_labels, parse_labels


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("person\nbicycle\n\n", ("person", "bicycle"), id="plain"),
        pytest.param("???\nperson\nbicycle\n???\ncar\n", ("person", "bicycle", "???", "car"), id="tf-labelmap"),
        pytest.param("background\ncat\n", ("cat",), id="background-first"),
        pytest.param("0 person\n2 car\n", ("person", "1", "car"), id="id-name-pairs"),
    ],
)
def test_parse_labels(text: str, expected: tuple[str, ...]) -> None:
    assert parse_labels(text) == expected


def test_labels_embedded_as_tflite_metadata_zip(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    with zipfile.ZipFile(model, "a") as z:  # how TFLite metadata packs associated files
        z.writestr("labelmap.txt", "leaf\nstone\n")
    assert embedded_labels(model) == ("leaf", "stone")
    assert find_labels(model, 2) == (("leaf", "stone"), "embedded in m.tflite")


def _ultralytics(tmp_path: Path, member: str, text: str, stem: str = "") -> Path:
    model = tmp_path / f"{stem or member.split('.')[0]}.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    with zipfile.ZipFile(model, "a") as z:  # how ultralytics' exporter appends its metadata
        z.writestr(member, text)
    return model


def test_labels_from_ultralytics_metadata_names(tmp_path: Path) -> None:
    # tflite-support's associated file: str(dict), ids as ints (Ultralytics on Python <= 3.11)
    old = _ultralytics(tmp_path, "temp_meta.txt", "{'task': 'detect', 'imgsz': [640, 640], 'names': "
                                                   "{0: 'person', 1: 'bicycle', 3: 'traffic light'}}")
    assert find_labels(old, 4) == (("person", "bicycle", "2", "traffic light"),
                                   "Ultralytics metadata names in temp_meta.tflite")
    assert embedded_labels(old) == ()  # the dict is not a one-name-per-line labels file
    assert find_labels(old, 1) == ((), "")  # nor taken as one label when the model has one class
    new = _ultralytics(tmp_path, "metadata.json", '{"task": "detect", "names": {"0": "cat", "1": "dog"}}')
    assert find_labels(new, 2) == (("cat", "dog"), "Ultralytics metadata names in metadata.tflite")
    hostile = _ultralytics(tmp_path, "temp_meta.txt", "{'names': __import__('os').system('false')}", "hostile")
    assert find_labels(hostile, 2) == ((), "")  # literals only: nothing is evaluated


@pytest.mark.parametrize("name", ["yolo11n_full_integer_quant_416.tflite"])
def test_a_real_ultralytics_export_names_its_classes(shared_dir: Path, name: str) -> None:
    path = shared_dir / "models" / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    labels, where = find_labels(path, 80)
    assert where == f"Ultralytics metadata names in {name}"
    # the COCO-80 names Ultralytics' coco.yaml gives, at their published ids
    assert (len(labels), labels[0], labels[2], labels[9], labels[62], labels[79]) == (
        80, "person", "car", "traffic light", "tv", "toothbrush")


def test_sibling_labels_used_only_when_counts_match(tmp_path: Path) -> None:
    model = tmp_path / "det.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3")
    (tmp_path / "det_labels.txt").write_text("a\nb\nc\n")
    assert find_labels(model, 3) == (("a", "b", "c"), str(tmp_path / "det_labels.txt"))
    assert find_labels(model, 80) == ((), "")


def test_a_labels_file_beside_the_model_as_a_user_names_it(tmp_path: Path) -> None:
    model = tmp_path / "ssd_mobilenet_v1_coco_quant.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3")
    (tmp_path / "coco80_labels.txt").write_text("".join(f"c{i}\n" for i in range(80)))
    (tmp_path / "ssd_mobilenet_v1_coco_labelmap.txt").write_text("???\nperson\nbicycle\n")
    (tmp_path / "yolo_labels.txt").write_text("".join(f"y{i}\n" for i in range(80)))
    (tmp_path / "notes.txt").write_text("a\nb\n")  # not a labels file by its name
    assert find_labels(model, 2) == (("person", "bicycle"), str(tmp_path / "ssd_mobilenet_v1_coco_labelmap.txt"))
    labels, where = find_labels(model, 80)  # two 80-name files, neither starting as the model's: name order
    assert (labels[0], where) == ("c0", str(tmp_path / "coco80_labels.txt"))
    (tmp_path / "ssd_mob_labels.txt").write_text("".join(f"m{i}\n" for i in range(80)))
    assert find_labels(model, 80)[0][0] == "m0"  # "ssd_mob" shares the model's start: the likelier one
    (tmp_path / "ssd_mobilenet_v1_coco_quant.txt").write_text("".join(f"s{i}\n" for i in range(80)))
    assert find_labels(model, 80)[0][0] == "s0"  # <model>.txt before any other
    assert find_labels(model, 5) == ((), "")


def test_missing_labels_file_is_a_config_error(tmp_path: Path) -> None:
    from accel.core.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read labels file"):
        load_labels(tmp_path / "nope.txt")
