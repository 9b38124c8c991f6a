"""The cache of derived models stays bounded: least recently used files go first, never the one just
written nor one used in the last hour, stale temporary files go, and a hit counts as a use."""

from __future__ import annotations

import os
import time
from pathlib import Path

from accel.model.cached import cached_file, prune

HOUR = 3600.0
NOW = 1_800_000_000.0


def _file(folder: Path, name: str, size: int, used_hours_ago: float, now: float = NOW) -> Path:
    path = folder / name
    path.write_bytes(b"x" * size)
    os.utime(path, (now - used_hours_ago * HOUR, now - used_hours_ago * HOUR))
    return path


def test_the_least_recently_used_go_first_until_the_folder_fits(tmp_path: Path) -> None:
    oldest = _file(tmp_path, "a-nopp1.tflite", 400, 30 * 24)  # an older format, last used a month ago
    old = _file(tmp_path, "b.tflite", 300, 48)
    newer = _file(tmp_path, "c.tflite", 300, 5)
    assert prune(tmp_path, 700, now=NOW) == [oldest]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tflite", "c.tflite"]
    assert prune(tmp_path, 300, now=NOW) == [old] and newer.exists()


def test_the_file_kept_and_files_used_in_the_last_hour_stay_even_over_budget(tmp_path: Path) -> None:
    big = _file(tmp_path, "big.tflite", 1000, 100)
    recent = _file(tmp_path, "recent.tflite", 500, 0.5)
    assert prune(tmp_path, 10, keep=big, now=NOW) == []
    assert big.exists() and recent.exists()


def test_stale_temporary_files_go_and_fresh_ones_stay(tmp_path: Path) -> None:
    stale = _file(tmp_path, "m.tflite.123.tmp", 10, 2)
    fresh = _file(tmp_path, "m.tflite.456.tmp", 10, 0.1)
    assert prune(tmp_path, 10**9, now=NOW) == [stale] and fresh.exists()


def test_writing_a_new_file_prunes_its_folder_and_a_hit_touches_the_file(tmp_path: Path) -> None:
    now = time.time()  # cached_file prunes on this machine's clock
    old = _file(tmp_path, "old.tflite", 100, 24, now)
    hit = _file(tmp_path, "hit.tflite", 100, 24, now)
    assert cached_file(hit, lambda: b"never made") == hit and hit.read_bytes() == b"x" * 100
    assert hit.stat().st_mtime > now - HOUR  # touched: used now
    new = cached_file(tmp_path / "new.tflite", lambda: b"y" * 150, budget=260)
    assert new.read_bytes() == b"y" * 150
    assert not old.exists() and hit.exists()  # 350 bytes over 260: the least recently used went


def test_a_file_a_live_process_holds_is_not_pruned(tmp_path: Path) -> None:
    """Another process holds the old file (as a watch does its piped model): it stays, the others go."""
    import subprocess
    import sys

    held = _file(tmp_path, "held.tflite", 100, 48)
    other = _file(tmp_path, "other.tflite", 100, 48)
    code = ("import sys, pathlib; from accel.model.cached import hold; hold(pathlib.Path(sys.argv[1])); "
            "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(held)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert prune(tmp_path, 0, now=NOW) == [other] and held.exists()
    finally:
        proc.communicate("", timeout=30)
    assert prune(tmp_path, 0, now=NOW) == [held]  # released when the process ended
