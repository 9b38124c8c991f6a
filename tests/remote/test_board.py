"""The board side: what `accel board info` says, and the pruning that keeps a board's accel folder bounded
(hand-made folders with set times; the expected survivors worked out by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from accel.remote.board import code_digest, prune

NOW = 1_800_000_000.0
HOUR = 3600.0


def entry(cache: Path, name: str, size: int, used: float) -> Path:
    folder = cache / name
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(b"\0" * size)
    (folder / ".done").write_text(f"{size}\n")
    os.utime(folder / ".done", (used, used))
    return folder


def finished_run(runs: Path, name: str, at: float) -> Path:
    run = runs / name
    (run / "out").mkdir(parents=True)
    (run / "rc").write_text("0\n")
    os.utime(run / "rc", (at, at))
    return run


def test_prune_keeps_the_cache_under_budget_least_recently_used_first(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry(cache, "a-oldest", 400, NOW - 5 * HOUR)
    entry(cache, "b-old", 400, NOW - 3 * HOUR)
    entry(cache, "c-recent", 400, NOW - 10)  # used within the hour: kept even over budget
    half = cache / "d.part-1"
    half.mkdir()
    os.utime(half, (NOW - 2 * HOUR, NOW - 2 * HOUR))
    young = cache / "e.part-2"
    young.mkdir()
    os.utime(young, (NOW - 60, NOW - 60))  # a send in progress
    # 1200 bytes with a budget of 700: the oldest goes (800 left), then the next (400 left), the recent stays
    removed = prune(tmp_path, NOW, budget=700)
    assert sorted(removed) == ["cache/a-oldest", "cache/b-old", "cache/d.part-1"]
    assert sorted(p.name for p in cache.iterdir()) == ["c-recent", "e.part-2"]
    entry(cache, "f", 100, NOW - 2 * HOUR)
    assert prune(tmp_path, NOW, budget=700) == []  # 500 bytes: under budget, nothing goes
    long_run = tmp_path / "runs" / "going"
    long_run.mkdir(parents=True)
    (long_run / "accel.toml").write_text(f'path = "{cache}/f/model.tflite"\n')  # a run still reading f
    assert prune(tmp_path, NOW, budget=0) == []  # f is in use, c-recent too recent: nothing goes


def test_prune_keeps_the_newest_finished_runs_and_every_run_still_going(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i in range(5):
        finished_run(runs, f"run{i}", NOW - (5 - i) * HOUR)  # run4 the newest
    going = runs / "going"
    going.mkdir()
    (going / "pid").write_text("123\n")  # no rc: still running (or its end not yet written)
    removed = prune(tmp_path, NOW, keep_runs=2)
    assert sorted(removed) == ["runs/run0", "runs/run1", "runs/run2"]
    assert sorted(p.name for p in runs.iterdir()) == ["going", "run3", "run4"]


def test_board_info_names_this_code_and_prunes_when_asked(tmp_path: Path) -> None:
    finished_run(tmp_path / "runs", "old", NOW)
    done = subprocess.run([sys.executable, "-m", "accel", "board", "info", "--dir", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    info = json.loads(done.stdout)
    assert info["digest"] == code_digest() and info["python"] == sys.executable
    assert info["pruned"] == [] and info["free_bytes"] > 0 and info["machine"]["python"]
