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


def test_sibling_labels_used_only_when_counts_match(tmp_path: Path) -> None:
    model = tmp_path / "det.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3")
    (tmp_path / "det_labels.txt").write_text("a\nb\nc\n")
    assert find_labels(model, 3) == (("a", "b", "c"), str(tmp_path / "det_labels.txt"))
    assert find_labels(model, 80) == ((), "")


def test_missing_labels_file_is_a_config_error(tmp_path: Path) -> None:
    from accel.core.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read labels file"):
        load_labels(tmp_path / "nope.txt")
