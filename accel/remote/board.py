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

__all__ = ["CACHE_BUDGET", "KEEP_RUNS", "accel_dir", "code_digest", "info", "prune", "version"]

_CODE = (".py", ".cl", ".html", ".tflite", ".txt", ".md")
CACHE_BUDGET = 512 * 1024 * 1024  # the board's input cache, as the local caches (accel.model.cached)
KEEP_RUNS = 20  # finished run folders kept, the newest; older ones go (their results were pulled or collectable)
_RECENT_S = 3600.0  # an entry used this recently, or a half-sent one this young, is kept


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


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prune(folder: Path, now: float, budget: int = CACHE_BUDGET, keep_runs: int = KEEP_RUNS) -> list[str]:
    """Keep the board's accel folder bounded, as the local caches are: cache entries least recently used
    first (a used entry's ``.done`` is touched) while the cache is over ``budget``, never one used in the last
    hour nor one a run still going reads; half-sent entries (``*.part-*``) over an hour old; finished run
    folders (``rc`` written) past the ``keep_runs`` newest. A run still going is never touched. Returns what
    went, relative to ``folder``."""
    removed: list[str] = []
    cache, runs = folder / "cache", folder / "runs"
    going = [r for r in runs.iterdir() if not (r / "rc").is_file()] if runs.is_dir() else []
    in_use = "\n".join(_text(r / "accel.toml") for r in going)  # the inputs a run still going reads stay
    entries = []
    for entry in sorted(cache.iterdir()) if cache.is_dir() else []:
        done = entry / ".done"
        if ".part-" in entry.name:
            if now - entry.stat().st_mtime > _RECENT_S:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"cache/{entry.name}")
        elif done.is_file() and f"/cache/{entry.name}/" not in in_use:
            entries.append((done.stat().st_mtime, _size(entry), entry))
    total = sum(size for _, size, _ in entries)
    for used, size, entry in sorted(entries):
        if total <= budget:
            break
        if now - used < _RECENT_S:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(f"cache/{entry.name}")
        total -= size
    finished = sorted((r for r in runs.iterdir() if (r / "rc").is_file()) if runs.is_dir() else [],
                      key=lambda r: (r / "rc").stat().st_mtime, reverse=True)
    for run in finished[keep_runs:]:
        shutil.rmtree(run, ignore_errors=True)
        removed.append(f"runs/{run.name}")
    return removed


def info(folder: str | None = None, prune_now: float | None = None) -> dict[str, Any]:
    """What the laptop checks before it sends anything; with ``prune_now`` (the time), the folder pruned first."""
    from accel.host.machine import machine_info

    where = Path(folder) if folder else accel_dir()
    pruned = prune(where, prune_now) if prune_now is not None and where.is_dir() else []
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free if probe.exists() else None
    return {"accel": version(), "digest": code_digest(), "python": sys.executable,
            "python_version": sys.version.split()[0], "accel_dir": str(where), "free_bytes": free,
            "pruned": pruned, "machine": machine_info()}
