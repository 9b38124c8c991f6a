"""Bad output locations, as a user meets them: one line and exit code 4 before any frame is captured, the
thing in the way left as it was; a disk that fills mid-run keeps the last complete result."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = os.geteuid() == 0
_RUN = ("--delegates", "null", "--frames", "3", "--seconds", "0", "--warmup", "1")


def accel(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "accel", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Folders the test mounts a tmpfs on; unmounted afterwards."""
    made: list[Path] = []
    yield made
    for where in made:
        subprocess.run(["umount", str(where)], check=False)


def _setup(tmp: Path, case: str, mounts: list[Path]) -> tuple[list[str], dict[str, str], Path | None]:
    """(arguments, environment, the path that must be left as it was)."""
    if case == "folder":
        (tmp / "out").mkdir()
        return ["--json", "out"], {}, tmp / "out"
    if case == "named-pipe":
        os.mkfifo(tmp / "r.json")
        return ["--json", "r.json"], {}, tmp / "r.json"
    if case == "device-node":
        if not ROOT:
            pytest.skip("mknod needs root")
        os.mknod(tmp / "x", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what `mknod x c 1 3` makes
        return ["--json", "x"], {}, tmp / "x"
    if case == "symlink-to-pipe":
        os.mkfifo(tmp / "pipe")
        (tmp / "r.json").symlink_to("pipe")
        return ["--json", "r.json"], {}, tmp / "pipe"
    if case == "under-a-file":
        (tmp / "notes").write_text("a file")
        return ["--json", "notes/r.json"], {}, tmp / "notes"
    if case == "proc":
        return ["--json", "/proc/accel/result.json"], {}, None
    if case == "read-only-folder":
        if ROOT:  # root writes through permissions: a read-only file system refuses everyone
            _mount_tmpfs(tmp / "ro", "ro,size=64k")
            mounts.append(tmp / "ro")
        else:
            (tmp / "ro").mkdir(mode=0o555)
        return ["--json", "ro/r.json"], {}, tmp / "ro"
    if case == "immutable-folder":
        (tmp / "frozen").mkdir()
        if subprocess.run(["chattr", "+i", str(tmp / "frozen")], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not possible here (needs root and a file system with attributes)")
        return ["--json", "frozen/r.json"], {}, tmp / "frozen"
    if case == "full-disk":
        if not ROOT:
            pytest.skip("mounting a small tmpfs needs root (tests/test_results.py injects ENOSPC instead)")
        _mount_tmpfs(tmp / "full", "size=64k")
        mounts.append(tmp / "full")
        (tmp / "full" / "filler").write_bytes(bytes(64 << 10))
        return ["--json", "full/r.json"], {}, None
    if case == "output-dir-under-a-file":
        (tmp / "notes").write_text("a file")
        return [], {"ACCEL_OUTPUT_DIR": "notes/results"}, tmp / "notes"
    if case == "output-dir-in-proc":
        return [], {"ACCEL_OUTPUT_DIR": "/proc/accel-results"}, None
    raise AssertionError(case)


@pytest.mark.parametrize(("case", "says"), [
    ("folder", "option --json: out is a folder; give a file path such as out/result.json"),
    ("named-pipe", "option --json: r.json is a named pipe, not a regular file"),
    ("device-node", "option --json: x is a character device, not a regular file"),
    ("symlink-to-pipe", "is a named pipe, not a regular file"),
    ("under-a-file", "option --json: notes/r.json is under"),
    ("proc", "option --json: cannot write in /proc"),
    ("read-only-folder", "option --json: cannot write in"),
    ("immutable-folder", "option --json: cannot write in"),
    ("full-disk", "No space left on device"),
    ("output-dir-under-a-file", "environment ACCEL_OUTPUT_DIR: notes/results is under notes, which is a file"),
    ("output-dir-in-proc", "environment ACCEL_OUTPUT_DIR: cannot write in /proc"),
])
def test_a_bad_output_location_is_one_line_before_capture(tmp_path: Path, mounts: list[Path], case: str,
                                                          says: str) -> None:
    args, env, kept = _setup(tmp_path, case, mounts)
    mode = os.lstat(kept).st_mode if kept is not None else None
    try:
        proc = accel("compare", *_RUN, *args, cwd=tmp_path, env=env)
    finally:
        if case == "immutable-folder":
            subprocess.run(["chattr", "-i", str(tmp_path / "frozen")], check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith("accel: error: ") and says in lines[0], lines[0]
    assert "capturing frames" not in proc.stdout  # refused before anything was captured
    if kept is not None:
        assert os.lstat(kept).st_mode == mode  # the node, pipe, file or folder is left as it was
    leftovers = {p.name for p in tmp_path.iterdir()} - {"out", "r.json", "x", "pipe", "notes", "ro", "frozen", "full"}
    assert not leftovers  # no reports, frames/ or results/ beside it


def test_a_disk_that_fills_mid_run_keeps_the_last_result(tmp_path: Path, mounts: list[Path]) -> None:
    if not ROOT or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (tests/test_results.py injects ENOSPC instead)")
    _mount_tmpfs(tmp_path / "small", "size=64k")
    mounts.append(tmp_path / "small")
    (tmp_path / "accel.toml").write_text("[output]\nformats = []\npreview_frames = 0\n")
    # each variant's record holds every frame's stage timings: three of 300 frames outgrow 64 KiB
    proc = accel("compare", "--delegates", "null,cpu-reference", "--threads", "1,2", "--frames", "300",
                 "--seconds", "0", "--warmup", "1", "--json", "small/r.json", cwd=tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert "small/r.json: No space left on device; " in lines[0]
    kept = re.search(r"small/r\.json keeps the result as last written \((\d+) variants?\)", lines[0])
    assert kept, lines[0]
    doc = json.loads((tmp_path / "small" / "r.json").read_text())  # the last complete document
    assert doc["complete"] is False and len(doc["variants"]) == int(kept.group(1)) < 3
    assert sorted(p.name for p in (tmp_path / "small").iterdir()) == ["r.json"]  # no r.json.tmp
