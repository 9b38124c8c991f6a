"""Small I/O helpers shared by the meters: sysfs numbers and short subprocess calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from accel.core.errors import PowerError


def read_int(path: Path) -> int:
    """An integer sysfs attribute. Raises ``OSError`` (``PermissionError`` included) or ``ValueError``."""
    return int(path.read_text().strip())


def which(program: str) -> str | None:
    """``program``'s path if it is an existing file or on PATH, else None."""
    if "/" in program:
        return program if Path(program).is_file() else None
    return shutil.which(program)


def run_text(args: list[str], timeout_s: float) -> str:
    """stdout of ``args`` (no shell). Raises ``PowerError`` saying what failed and what it printed."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PowerError(f"{' '.join(args)} did not finish within {timeout_s:g} s") from exc
    except OSError as exc:
        raise PowerError(f"{' '.join(args)} could not run: {exc}") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise PowerError(f"{' '.join(args)} exited with {done.returncode}: {said[-1] if said else '(no output)'}")
    return done.stdout
