"""Label files: one name per line, or ``ID NAME`` pairs; ``labels[class_id]`` is the name.

Files that start with a background entry (``???`` in TF's COCO label map, or ``background``) are shifted
by one, because detectors' class ids start at the first real class (shared/models/README.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from accel.errors import ConfigError

_BACKGROUND = {"???", "background", "__background__"}


def load_labels(path: str | Path) -> tuple[str, ...]:
    """Names indexed by class id. Raises ``ConfigError`` for a missing or unreadable file."""
    p = Path(path)
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError as exc:
        raise ConfigError(f"model.labels: cannot read labels file {p}: {exc.strerror or exc}") from exc
    lines = [ln for ln in lines if ln]
    pairs = [re.match(r"^(\d+)[\s:,]+(.+)$", ln) for ln in lines]
    if lines and all(pairs):
        table = {int(m.group(1)): m.group(2).strip() for m in pairs if m}
        return tuple(table.get(i, str(i)) for i in range(max(table) + 1))
    if lines and lines[0].lower() in _BACKGROUND:
        lines = lines[1:]
    return tuple(lines)
