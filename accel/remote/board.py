"""What a board answers when the laptop asks (``python -m accel board info``): accel's version and a digest
of its code (so the laptop knows the board runs this very version), the Python, the machine facts a result
records, and the room left in the board's accel folder. Runs on the board; nothing here opens a connection."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["accel_dir", "code_digest", "info", "version"]

_CODE = (".py", ".cl", ".html", ".tflite", ".txt", ".md")


def version() -> str:
    try:
        return metadata.version("accel")
    except metadata.PackageNotFoundError:
        return "unknown"


def code_digest() -> str:
    """sha256 over accel's own files by module path (``accel/plan/job.py``, ``accel/kernels/opencl/x.cl``),
    whether installed from a wheel or editable from a checkout: equal digests are the same code."""
    h = hashlib.sha256()
    seen: dict[str, Path] = {}
    todo = ["accel", "accel.delegates", "accel.kernels"]
    while todo:
        name = todo.pop()
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for p in sorted(Path(folder).iterdir()):
                if p.is_dir() and (p / "__init__.py").is_file() and p.name != "__pycache__":
                    todo.append(f"{name}.{p.name}")
                elif p.is_file() and p.suffix in _CODE:
                    seen.setdefault(f"{name.replace('.', '/')}/{p.name}", p)
    for rel in sorted(seen):
        h.update(rel.encode() + b"\0" + seen[rel].read_bytes() + b"\0")
    return h.hexdigest()[:16]


def accel_dir() -> Path:
    """The board's accel folder for remote runs: ``$XDG_CACHE_HOME/accel/remote`` (``~/.cache/accel/remote``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "accel" / "remote"


def info(folder: str | None = None) -> dict[str, Any]:
    """What the laptop checks before it sends anything."""
    from accel.host.machine import machine_info

    where = Path(folder) if folder else accel_dir()
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free if probe.exists() else None
    return {"accel": version(), "digest": code_digest(), "python": sys.executable,
            "python_version": sys.version.split()[0], "accel_dir": str(where), "free_bytes": free,
            "machine": machine_info()}
