"""Label files: one name per line, or ``ID NAME`` pairs; ``labels[class_id]`` is the name.

Files that start with a background entry (``???`` in TF's COCO label map, or ``background``) are shifted
by one, because detectors' class ids start at the first real class (shared/models/README.md).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from accel.core.errors import ConfigError

_BACKGROUND = {"???", "background", "__background__"}
MAX_CLASS_ID = 99_999  # ImageNet-21k has 21,841 classes; an id past this is a typo, and would cost a name per id
_MAX_EMBEDDED = 1 << 20  # bytes of an embedded labels file read: a zip bomb in a model's metadata stays shut


def embedded_labels(model_path: str | Path) -> tuple[str, ...]:
    """Labels packed in the model file: TFLite metadata stores associated files (Model Maker's
    ``labelmap.txt``) as a zip archive appended to the flatbuffer. Empty when there are none."""
    try:
        with zipfile.ZipFile(model_path) as z:
            names = [i for i in z.infolist() if i.filename.lower().endswith(".txt") and i.file_size <= _MAX_EMBEDDED]
            if not names:
                return ()
            first = sorted(names, key=lambda i: ("label" not in i.filename.lower(), i.filename))[0]
            text = z.read(first).decode("utf-8", "replace")
        return parse_labels(text, f"labels embedded in {Path(model_path).name}")
    except (zipfile.BadZipFile, OSError, KeyError, ConfigError, RuntimeError, NotImplementedError):
        return ()  # damaged, encrypted or odd metadata: the model still runs, with numbers for names


def find_labels(model_path: str | Path, num_classes: int | None) -> tuple[tuple[str, ...], str]:
    """Labels for a model when none were given: embedded in the file, else ``<model>_labels.txt`` or
    ``labels.txt`` beside it. Used only when their count matches the model's classes (or the model does not
    say). Returns (labels, where they came from) or ((), "")."""
    p = Path(model_path)
    candidates: list[tuple[tuple[str, ...], str]] = [(embedded_labels(p), f"embedded in {p.name}")]
    for name in (f"{p.stem}_labels.txt", "labels.txt"):
        if (p.parent / name).is_file():
            try:
                candidates.append((load_labels(p.parent / name), str(p.parent / name)))
            except ConfigError:
                continue
    for labels, where in candidates:
        if labels and (num_classes is None or len(labels) == num_classes):
            return labels, where
    return (), ""


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
