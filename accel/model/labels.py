"""Label files: one name per line, or ``ID NAME`` pairs; ``labels[class_id]`` is the name.

Files that start with a background entry (``???`` in TF's COCO label map, or ``background``) are shifted
by one, because detectors' class ids start at the first real class (shared/models/README.md).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from accel.errors import ConfigError

_BACKGROUND = {"???", "background", "__background__"}


def embedded_labels(model_path: str | Path) -> tuple[str, ...]:
    """Labels packed in the model file: TFLite metadata stores associated files (Model Maker's
    ``labelmap.txt``) as a zip archive appended to the flatbuffer. Empty when there are none."""
    try:
        with zipfile.ZipFile(model_path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".txt")]
            if not names:
                return ()
            text = z.read(sorted(names, key=lambda n: ("label" not in n.lower(), n))[0]).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, KeyError):
        return ()
    return parse_labels(text)


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
    return parse_labels(text)


def parse_labels(text: str) -> tuple[str, ...]:
    """Names indexed by class id from a labels file's text (see the module docstring)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    pairs = [re.match(r"^(\d+)[\s:,]+(.+)$", ln) for ln in lines]
    if lines and all(pairs):
        table = {int(m.group(1)): m.group(2).strip() for m in pairs if m}
        return tuple(table.get(i, str(i)) for i in range(max(table) + 1))
    if lines and lines[0].lower() in _BACKGROUND:
        lines = lines[1:]
    return tuple(lines)
