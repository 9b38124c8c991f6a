"""The aarch64 site folders: the project's dependencies as aarch64 wheels, and the checkout itself.

Two folders, both on the emulated ``PYTHONPATH``: the wheels (keyed by the dependency list and the Python
version, so a code change does not download them again) and the checkout (keyed by a hash of its files, so
every change is installed before the next run).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from piemu import EmulateError

PLATFORMS = ("manylinux_2_27_aarch64", "manylinux2014_aarch64")
"""The wheel tags pip may pick: LiteRT 2.3's aarch64 wheel is manylinux_2_27; Debian 12 has glibc 2.36."""

def runtime_requirements(pyproject: Path, test: bool) -> list[str]:
    """The project's dependencies as pip requirement strings; with ``test`` also its dev extra, the set the
    README's test command installs (so the emulated suite skips and runs what a Pi user's would)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    if test:
        reqs += project.get("optional-dependencies", {}).get("dev", [])
    return reqs


def wheel_args(python: str) -> list[str]:
    """pip's options for aarch64 wheels of CPython ``python``, never a source build."""
    plats = [arg for p in PLATFORMS for arg in ("--platform", p)]
    return ["--only-binary=:all:", *plats, "--python-version", python, "--implementation", "cp"]


def checkout_files(repo: Path) -> list[str]:
    """The checkout's files as git sees them: tracked and untracked-but-not-ignored (what a commit would hold)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmulateError(f"{repo} is not a git checkout (git ls-files failed): the site folder is keyed by "
                           "its files") from exc
    return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p and (repo / p).is_file())


def checkout_key(repo: Path, files: Sequence[str]) -> str:
    """A hash of every file's path and content: changes whenever the installed project would."""
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        h.update(hashlib.sha256((repo / rel).read_bytes()).digest())
    return h.hexdigest()[:16]


def requirements_key(reqs: Sequence[str], python: str) -> str:
    return hashlib.sha256("\n".join([python, *PLATFORMS, *sorted(reqs)]).encode()).hexdigest()[:16]


def _pip(args: Sequence[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "install", "--quiet",
           *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        text = [ln.strip() for ln in (done.stderr + done.stdout).splitlines()
                if ln.strip() and "is ignored: it is neither" not in ln]
        errors = [ln for ln in text if ln.startswith("ERROR")]
        raise EmulateError(f"{what} failed: {(errors or text or ['no output'])[0]}")


def _fresh(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))


def _settle(work: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    work.rename(target)
    return target


def wheels_site(cache: Path, reqs: Sequence[str], python: str) -> Path:
    """The aarch64 wheels of ``reqs`` unpacked into one folder, once per requirement set."""
    target = cache / f"wheels-py{python}-{requirements_key(reqs, python)}"
    if target.is_dir():
        return target
    print(f"pi_emulate: installing aarch64 wheels for CPython {python} into {target}", flush=True)
    work = _fresh(target)
    try:
        _pip(["--target", str(work), *wheel_args(python), *reqs], "pip install of the aarch64 wheels")
    except EmulateError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _settle(work, target)


def project_site(cache: Path, repo: Path) -> Path:
    """The checkout installed (``pip install --no-deps``) into a folder keyed by its files' hash."""
    files = checkout_files(repo)
    target = cache / f"accel-{checkout_key(repo, files)}"
    if target.is_dir():
        return target
    work = _fresh(target)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Installed from a copy of the checkout's files, so no stale build/ output is picked up and none is
            # left in the checkout.
            src = Path(tmp) / "src"
            for rel in files:
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(repo / rel, src / rel)
            _pip(["--no-deps", "--target", str(work), str(src)], f"pip install of the checkout {repo}")
    except EmulateError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _prune(target.parent, "accel-")
    return _settle(work, target)


def _prune(folder: Path, prefix: str, count: int = 3) -> None:
    """Drop all but the newest ``count`` installs of old checkouts (each is small, but they add up)."""
    # Names with a dot are other runs' folders still being built.
    old = sorted((p for p in folder.glob(prefix + "*") if p.is_dir() and "." not in p.name),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for path in old[count:]:
        shutil.rmtree(path, ignore_errors=True)
