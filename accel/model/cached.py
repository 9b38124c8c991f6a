"""Files accel derives from a model and keeps by its hash (a split or folded model for the GPU, a model read
from a pipe): written once, atomically, so parallel runs and workers never read half a file.

A cache folder stays bounded: each file used is touched (its modification time is when it was last used),
and after a new file is written the least recently used others in the folder are removed until the folder
holds at most ``budget`` bytes (``CACHE_BUDGET``, 512 MiB), the new file kept whatever its size, and so are
files used in the last hour and files a live process ``hold``s (a shared ``flock``: a run that opens the
file again and again, by path, for hours, as ``accel watch`` does with a piped model). Temporary files a
killed process left behind go once they are an hour old. So files of an older format or of models no longer
run go first."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CACHE_BUDGET", "cache_dir", "cached_file", "hold", "prune"]

CACHE_BUDGET = 512 * 1024 * 1024
_STALE_TMP_S = 3600.0
_RECENT_S = 3600.0  # a file used this recently is kept even over budget: a running compare may open it


def cache_dir(name: str) -> Path:
    """``~/.cache/accel/NAME``: where files derived from models are kept (``piped``, ``split``)."""
    return Path.home() / ".cache" / "accel" / name


def cached_file(path: Path, make: Callable[[], bytes], *, budget: int = CACHE_BUDGET) -> Path:
    """``path``, written with ``make()`` unless it already exists: to a temporary file of this process, then
    renamed over ``path``; the folder then pruned to ``budget`` bytes (``prune``). Raises ``OSError`` (the
    temporary file removed) when the folder cannot be written."""
    if path.is_file():
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the last to go
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
    prune(path.parent, budget, keep=path)
    return path


def prune(folder: Path, budget: int, *, keep: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove the least recently used files of ``folder`` (not ``keep``, nor any used in the last hour)
    until the rest hold at most ``budget`` bytes, and temporary files over an hour old. Returns what was
    removed; a file that cannot be removed (gone already, another user's) is skipped."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    files: list[tuple[float, int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.name.endswith(".tmp"):
                    if now - st.st_mtime > _STALE_TMP_S and _unlink(Path(entry.path)):
                        removed.append(Path(entry.path))
                    continue
                files.append((st.st_mtime, st.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in files)
    for mtime, size, file in sorted(files):
        if total <= budget:
            break
        if (keep is not None and file == keep) or now - mtime < _RECENT_S:
            continue
        if _unlink(file):
            removed.append(file)
            total -= size
    return removed


_HELD: dict[Path, int] = {}  # path -> descriptor holding its shared lock, for this process's life


def hold(path: Path) -> None:
    """Keep ``path`` from being pruned while this process lives (a shared ``flock`` on it; nothing where the
    platform has no ``fcntl``)."""
    try:
        import fcntl
    except ImportError:
        return
    if path in _HELD:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return
    _HELD[path] = fd


def _in_use(path: Path) -> bool:
    """Whether a process ``hold``s ``path`` (its exclusive lock cannot be taken at once)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases a lock taken
    return False


def _unlink(path: Path) -> bool:
    if _in_use(path):
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True
