"""load_model reads the model file once: every open of the file, by any route Python offers (``open``,
``io.open``, ``Path.open``/``read_bytes``, ``os.open``), is counted while one model loads."""

from __future__ import annotations

import builtins
import io
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accel.model import Family, default_model_path, load_model, strip_postprocess


def _counting(opened: Counter[Path], original: Callable[..., Any]) -> Callable[..., Any]:
    def counted(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, bytes, os.PathLike)):
            opened[Path(os.fsdecode(file)).resolve()] += 1
        return original(file, *args, **kwargs)

    return counted


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Counter[Path]:
    """Paths opened (resolved) -> how many times, from the moment the fixture is set up."""
    counts: Counter[Path] = Counter()
    monkeypatch.setattr(builtins, "open", _counting(counts, builtins.open))
    monkeypatch.setattr(io, "open", _counting(counts, io.open))
    monkeypatch.setattr(os, "open", _counting(counts, os.open))
    return counts


def _stripped(folder: Path) -> Path:
    path = folder / "stripped.tflite"
    path.write_bytes(strip_postprocess(default_model_path().read_bytes()).model)
    return path


@pytest.mark.parametrize(
    ("make", "family"),
    [
        pytest.param(lambda d, tiny: default_model_path(), Family.SSD, id="ssd-with-postprocess-op"),
        pytest.param(lambda d, tiny: _stripped(d), Family.SSD_RAW, id="ssd-raw-anchors-in-metadata"),
        pytest.param(lambda d, tiny: tiny, Family.CLASSIFIER, id="classifier"),
    ],
)
def test_load_model_opens_the_file_once(tmp_path: Path, tiny_classifier: tuple[Path, np.ndarray, np.ndarray],
                                        make: Callable[[Path, Path], Path], family: Family,
                                        request: pytest.FixtureRequest) -> None:
    path = make(tmp_path, tiny_classifier[0])
    opened: Counter[Path] = request.getfixturevalue("opened")  # counting starts after the file was written
    info = load_model(path)
    assert info.family is family
    assert opened[path.resolve()] == 1, f"{path.name} opened {opened[path.resolve()]} times"


def test_the_counter_sees_each_route(tmp_path: Path, opened: Counter[Path]) -> None:
    """The assertion above means something: every way of opening a file is counted."""
    path = tmp_path / "f.bin"
    with open(path, "wb"):
        pass
    path.read_bytes()
    with io.open(path, "rb"):  # noqa: UP020 - this route is the one counted here
        pass
    os.close(os.open(path, os.O_RDONLY))
    assert opened[path.resolve()] == 4
