"""What a run leaves in /dev/shm, told apart from what other programs on the machine use meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["leaked_shm", "shm_entries"]


def shm_entries() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def leaked_shm(before: set[str]) -> set[str]:
    """Entries new in /dev/shm since ``before`` that no live process maps or holds open: what a run left
    behind. (Other programs' test runs on this machine may create segments meanwhile; those are in use.)"""
    new = shm_entries() - before
    if not new:
        return set()
    used = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            used.update(ln.split("/dev/shm/", 1)[1].split()[0] for ln in (entry / "maps").read_text().splitlines()
                        if "/dev/shm/" in ln)
            used.update(os.readlink(fd).removeprefix("/dev/shm/") for fd in (entry / "fd").iterdir()
                        if os.readlink(fd).startswith("/dev/shm/"))
        except OSError:
            continue
    return {name for name in new if name not in used and (Path("/dev/shm") / name).exists()}
