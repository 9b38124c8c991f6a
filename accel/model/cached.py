"""Files accel derives from a model and keeps by its hash (a split or folded model for the GPU, a model read
from a pipe): written once, atomically, so parallel runs and workers never read half a file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cached_file"]


def cached_file(path: Path, make: Callable[[], bytes]) -> Path:
    """``path``, written with ``make()`` unless it already exists: to a temporary file of this process, then
    renamed over ``path``. Raises ``OSError`` (the temporary file removed) when the folder cannot be written."""
    if path.is_file():
        return path
    data = make()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path
