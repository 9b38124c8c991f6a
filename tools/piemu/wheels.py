"""Is accel installable on a Pi from wheels alone? pip resolves the extras for aarch64 CPythons, builds nothing.

``pip install --dry-run --only-binary=:all: --platform manylinux_2_27_aarch64 ...`` with ``--report``: pip
fails when some requirement has no aarch64 wheel for that Python, and the report says which wheel each
requirement resolved to (the project itself, a local path, is the one entry that is not a wheel).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from piemu import EmulateError
from piemu.site import wheel_args

PYTHONS = ("3.11", "3.12", "3.13")
EXTRAS = ("dev", "opencl")


@dataclass(frozen=True)
class Resolution:
    """One (Python, extra) resolution: the wheels picked, or pip's error."""

    python: str
    extra: str
    wheels: tuple[str, ...]
    error: str | None = None

    def line(self) -> str:
        head = f"CPython {self.python} aarch64 .[{self.extra}]:"
        if self.error:
            return f"{head} FAILS: {self.error}"
        return f"{head} {len(self.wheels)} wheels, nothing built from source"


def wheels_of(report: dict) -> tuple[list[str], list[str]]:
    """From a pip ``--report``: the wheel file names, and the requirements that are not wheels (but the root)."""
    wheels, other = [], []
    for item in report.get("install", []):
        url = item.get("download_info", {}).get("url", "")
        name = url.rsplit("/", 1)[-1]
        if name.endswith(".whl"):
            wheels.append(name)
        elif not url.startswith("file:"):
            other.append(f"{item['metadata']['name']} {item['metadata']['version']}")
    return sorted(wheels), other


def resolve(repo: Path, python: str, extra: str) -> Resolution:
    """Resolve ``repo[extra]`` for aarch64 CPython ``python``, wheels only, installing nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--dry-run", "--quiet",
               "--report", str(report), "--target", str(Path(tmp) / "t"), *wheel_args(python), f"{repo}[{extra}]"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines()
                     if ln.strip() and "is ignored: it is neither" not in ln]
            errors = [ln for ln in lines if ln.startswith("ERROR")]
            return Resolution(python, extra, (), (errors or lines or ["pip failed"])[0])
        wheels, other = wheels_of(json.loads(report.read_text(encoding="utf-8")))
    if other:
        return Resolution(python, extra, tuple(wheels), f"not wheels: {', '.join(other)}")
    return Resolution(python, extra, tuple(wheels))


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per (Python, extra); exit status 1 when any of them needs a source build."""
    repo = Path(__file__).resolve().parents[2]
    pythons = list(argv) if argv else list(PYTHONS)
    try:
        results = [resolve(repo, py, extra) for py in pythons for extra in EXTRAS]
    except (OSError, ValueError) as exc:
        raise EmulateError(f"pip's dry run could not be read: {exc}") from exc
    for r in results:
        print(r.line())
    return 1 if any(r.error for r in results) else 0
