"""Label files: one name per line, or ``ID NAME`` pairs; ``labels[class_id]`` is the name.

Files that start with a background entry (``???`` in TF's COCO label map, or ``background``) are shifted
by one, because detectors' class ids start at the first real class (shared/models/README.md).
"""

from __future__ import annotations

import ast
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from accel.core.errors import ConfigError

_BACKGROUND = {"???", "background", "__background__"}
MAX_CLASS_ID = 99_999  # ImageNet-21k has 21,841 classes; an id past this is a typo, and would cost a name per id
_MAX_EMBEDDED = 1 << 20  # bytes of an embedded labels file read: a zip bomb in a model's metadata stays shut


def embedded_labels(model_path: str | Path) -> tuple[str, ...]:
    """Labels packed in the model file: TFLite metadata stores associated files (Model Maker's
    ``labelmap.txt``) as a zip archive appended to the flatbuffer. Empty when there are none. Ultralytics'
    metadata file (a dict, not a list of names) is not a labels file: ``ultralytics_names`` reads it."""
    try:
        with zipfile.ZipFile(model_path) as z:
            names = [i for i in z.infolist() if i.filename.lower().endswith(".txt") and i.file_size <= _MAX_EMBEDDED]
            texts = [(i.filename, z.read(i).decode("utf-8", "replace")) for i in names]
        texts = [(n, t) for n, t in texts if not t.lstrip().startswith("{")]
        if not texts:
            return ()
        text = sorted(texts, key=lambda nt: ("label" not in nt[0].lower(), nt[0]))[0][1]
        return parse_labels(text, f"labels embedded in {Path(model_path).name}")
    except (zipfile.BadZipFile, OSError, KeyError, ConfigError, RuntimeError, NotImplementedError):
        return ()  # damaged, encrypted or odd metadata: the model still runs, with numbers for names


def ultralytics_metadata(model_path: str | Path) -> dict[str, Any]:
    """The metadata an Ultralytics export appends to a .tflite as a zip member: ``metadata.json`` (JSON,
    Python >= 3.12 exports) or a text file holding the dict's ``repr`` (``temp_meta.txt``, tflite-support's
    associated file), as ultralytics' AutoBackend reads it (``ast.literal_eval``: literals only, no code).
    Empty when the file has none or it does not parse."""
    try:
        with zipfile.ZipFile(model_path) as z:
            for info in z.infolist():
                if info.file_size > _MAX_EMBEDDED or not info.filename.lower().endswith((".json", ".txt")):
                    continue
                text = z.read(info).decode("utf-8", "replace")
                if not text.lstrip().startswith("{"):
                    continue
                data = json.loads(text) if info.filename.lower().endswith(".json") else ast.literal_eval(text)
                if isinstance(data, dict) and ("names" in data or "imgsz" in data):
                    return data
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, NotImplementedError, ValueError, SyntaxError,
            MemoryError, RecursionError, TypeError):
        pass
    return {}


def ultralytics_names(model_path: str | Path) -> tuple[str, ...]:
    """Class names from Ultralytics metadata ``names`` ({id: name}, ids as ints or, from JSON, strings; or a
    list), indexed by class id; ids missing in between are named by their number. Empty when there are none."""
    names = ultralytics_metadata(model_path).get("names")
    if isinstance(names, list | tuple):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        return ()
    try:
        table = {int(k): str(v).strip() for k, v in names.items()}
    except (TypeError, ValueError):
        return ()
    if min(table) < 0 or max(table) > MAX_CLASS_ID:
        return ()
    return tuple(table.get(i) or str(i) for i in range(max(table) + 1))


def find_labels(model_path: str | Path, num_classes: int | None) -> tuple[tuple[str, ...], str]:
    """Labels for a model when none were given: embedded in the file (a labels file, or Ultralytics
    metadata's ``names``), else a labels file beside it (``beside``). Used only when their count matches the
    model's classes (or the model does not say). Returns (labels, where they came from) or
    ((), "")."""
    p = Path(model_path)
    candidates: list[tuple[tuple[str, ...], str]] = [
        (embedded_labels(p), f"embedded in {p.name}"),
        (ultralytics_names(p), f"Ultralytics metadata names in {p.name}")]
    for path in beside(p):
        try:
            candidates.append((load_labels(path), str(path)))
        except ConfigError:
            continue
    for labels, where in candidates:
        if labels and (num_classes is None or len(labels) == num_classes):
            return labels, where
    return (), ""


def beside(model: Path) -> list[Path]:
    """Labels files beside a model, the likeliest first: ``<model>_labels.txt``, ``<model>.txt``,
    ``labels.txt``, ``labelmap.txt``, then any other ``*label*.txt`` there (``coco80_labels.txt``,
    ``ssd_mobilenet_v1_coco_labelmap.txt``), those sharing the longest start with the model's name first."""
    named = [model.parent / n for n in (f"{model.stem}_labels.txt", f"{model.stem}.txt", "labels.txt", "labelmap.txt")]
    try:
        others = [q for q in model.parent.iterdir() if q.suffix.lower() == ".txt" and "label" in q.name.lower()
                  and q not in named]
    except OSError:
        others = []

    def shared(q: Path) -> int:
        return len(os.path.commonprefix([q.stem.lower(), model.stem.lower()]))

    return [q for q in named if q.is_file()] + sorted((q for q in others if q.is_file()),
                                                      key=lambda q: (-shared(q), q.name))


def load_labels(path: str | Path) -> tuple[str, ...]:
    """Names indexed by class id. Raises ``ConfigError`` for a missing or unreadable file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"model.labels: cannot read labels file {p}: {exc.strerror or exc}") from exc
    return parse_labels(text, f"labels file {p}")


def parse_labels(text: str, where: str = "labels") -> tuple[str, ...]:
    """Names indexed by class id from a labels file's text (see the module docstring). ``ConfigError``
    (naming ``where`` and the line) for an ``ID NAME`` line whose id is over ``MAX_CLASS_ID``."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    pairs = [re.match(r"^(\d{1,30})[\s:,]+(.+)$", ln) for ln in lines]  # int() of thousands of digits raises
    if lines and all(pairs):
        table = {int(m.group(1)): m.group(2).strip() for m in pairs if m}
        worst = max(table)
        if worst > MAX_CLASS_ID:
            no = next(i for i, ln in enumerate(text.splitlines(), 1) if re.match(rf"^\s*0*{worst}\b", ln))
            raise ConfigError(f"{where}: line {no}: class id {worst} is over {MAX_CLASS_ID:,}, the most a labels "
                              "file may number (no detector has that many classes); fix the id")
        return tuple(table.get(i, str(i)) for i in range(max(table) + 1))
    if lines and lines[0].lower() in _BACKGROUND:
        lines = lines[1:]
    return tuple(lines)
