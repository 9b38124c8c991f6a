"""Hostile pictures, sizes and label files (issue 15 part 8): one line with the limit and how to raise it,
before anything large is allocated."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from accel.cli.main import main
from accel.core.errors import ConfigError, DatasetError, SourceError
from accel.dataset.coco import DatasetSource, load_dataset
from accel.model.labels import MAX_CLASS_ID, parse_labels
from accel.sources import MAX_PIXELS, SourceSpec, open_source
from accel.sources.files import ImageSource


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height (its pixel data is a stub: nothing here may decode it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


BOMB = "20000x20000 is 400,000,000 pixels, over the 50,000,000 a picture may have (pipeline.max_pixels); raise " \
       "[pipeline] max_pixels in accel.toml to read it"


def test_a_decompression_bomb_in_an_image_folder(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    _png_header(folder / "big.png", 20000, 20000)  # 400 Mpx: over Pillow's own 179 Mpx refusal too
    with pytest.raises(SourceError) as err:
        ImageSource(folder)
    assert str(err.value) == f"{folder / 'big.png'}: {BOMB}"


def test_a_picture_under_a_raised_limit_gets_past_the_check(tmp_path: Path) -> None:
    """Raising max_pixels lifts accel's check, and Pillow's (which would refuse 400 Mpx by itself): this stub
    then fails where a real picture would be decoded, as an ordinary decode error."""
    path = _png_header(tmp_path / "big.png", 20000, 20000)
    with pytest.raises(SourceError, match="cannot decode the picture"):
        ImageSource(path, max_pixels=400_000_000)


def test_the_cli_says_it_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    _png_header(folder / "big.png", 20000, 20000)
    assert main(["compare", "--source", f"image:{folder}", "--delegates", "null", "--json",
                 str(tmp_path / "r.json")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err == f"accel: error: {folder / 'big.png'}: {BOMB}"


def test_a_decompression_bomb_in_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    _png_header(tmp_path / "images" / "a.png", 20000, 20000)
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 20000, "height": 20000}], "annotations": [],
           "categories": [{"id": 1, "name": "leaf"}]}
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    source = DatasetSource(load_dataset(tmp_path))
    with pytest.raises(DatasetError) as err:
        source.read()
    assert str(err.value) == f"{tmp_path / 'images' / 'a.png'}: {BOMB}"


@pytest.mark.parametrize(("fields", "says"), [
    pytest.param({"kind": "synthetic", "target": "100000x100000"}, "source synthetic: 100000x100000 is "
                 "10,000,000,000 pixels, over the 50,000,000 a frame may have (pipeline.max_pixels); raise "
                 "[pipeline] max_pixels in accel.toml to allow it", id="synthetic"),
    pytest.param({"kind": "image", "target": "photos", "width": 10000, "height": 10000}, "source image: "
                 "10000x10000 is 100,000,000 pixels", id="resized-pictures"),
])
def test_a_frame_size_over_the_limit_allocates_nothing(fields: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SourceError) as err:
        SourceSpec(**fields)
    assert str(err.value).startswith(says)


def test_the_limit_is_the_configs(tmp_path: Path) -> None:
    spec = SourceSpec("synthetic", "64x64", max_pixels=64 * 64)
    with open_source(spec) as source:
        assert source.read().data.size > 0
    with pytest.raises(SourceError, match="4,160 pixels, over the 4,096"):
        SourceSpec("synthetic", "64x65", max_pixels=64 * 64)
    assert MAX_PIXELS == 50_000_000


def test_a_huge_class_id_in_a_labels_file_is_refused_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse_labels("0 background\n1 leaf\n999999999999 cat\n", "labels file x.txt")
    assert str(err.value) == (f"labels file x.txt: line 3: class id 999999999999 is over {MAX_CLASS_ID:,}, the most "
                              "a labels file may number (no detector has that many classes); fix the id")


def test_a_class_id_at_the_limit_is_fine() -> None:
    labels = parse_labels(f"0 leaf\n{MAX_CLASS_ID} last\n")
    assert len(labels) == MAX_CLASS_ID + 1 and labels[-1] == "last" and labels[1] == "1"


def test_thousands_of_digits_are_a_name_not_an_id() -> None:
    """int() refuses more than 4,300 digits; such a line is read as a name, like any other non-ID line."""
    assert parse_labels("9" * 5000 + " cat\n") == ("9" * 5000 + " cat",)
