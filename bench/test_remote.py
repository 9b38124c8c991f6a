"""The fan-out cost of remote boards: 1, 4 and 16 loopback boards (real sshd on 127.0.0.1, as in
tests/remote), a tiny run each (XNNPACK on one thread, 5 frames), driven by one `accel compare --on ...`
client. Records the client's own wall time, CPU time (its rusage: the boards' runs are the boards' sshd's
children, not the client's) and peak memory, each per board, side by side for the three fleet sizes, and how
the per-board CPU grows from 1 to 16 boards (linear fan-out: the ratio stays near 1 or falls). Recorded, not
asserted: these machines are shared and noisy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "remote"))

from loopback import SSHD, Fleet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1, 4, 16)


def drive(fleet: Fleet, names: list[str], out: Path) -> dict[str, float]:
    """One client over ``names``: its wall time, CPU seconds and peak RSS (MB), from its own rusage."""
    argv = [sys.executable, "-m", "accel", "compare", "--ssh-config", str(fleet.ssh_config),
            *(w for n in names for w in ("--on", n)), "--delegates", "xnnpack", "--threads", "1",
            "--frames", "5", "--warmup", "1", "--seconds", "0", "--power-meter", "none"]
    env = {**os.environ, "ACCEL_OUTPUT_DIR": str(out), "PYTHONWARNINGS": "ignore"}
    t0 = time.monotonic()
    client = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(client.pid, 0)
    wall = time.monotonic() - t0
    client.returncode = os.waitstatus_to_exitcode(status)
    assert client.returncode == 0, client.stderr.read().decode()[-2000:] if client.stderr else ""
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def test_fan_out_to_1_4_and_16_boards(benchmark: Any, tmp_path: Path, produced: Callable[..., None]) -> None:
    if SSHD is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH's server (Debian: openssh-server)")
    pytest.importorskip("asyncssh")
    fleet = Fleet(tmp_path / "fleet")
    try:
        for i in range(max(SIZES)):
            fleet.add(f"b{i + 1}")
        figures: dict[int, dict[str, float]] = {}

        def every_size() -> None:
            for n in SIZES:
                figures[n] = drive(fleet, [f"b{i + 1}" for i in range(n)], tmp_path / f"out{n}")

        benchmark.group = "remote fan-out"
        benchmark.pedantic(every_size, rounds=1, iterations=1)
    finally:
        fleet.stop()
    info = benchmark.extra_info
    for n, f in figures.items():
        info[f"client_wall_s[{n}]"] = f["wall_s"]
        info[f"client_cpu_s_per_board[{n}]"] = f["cpu_s"] / n
        info[f"client_rss_mb[{n}]"] = f["rss_mb"]
        info[f"client_rss_mb_per_board[{n}]"] = f["rss_mb"] / n
    first, last = figures[SIZES[0]], figures[SIZES[-1]]
    info["cpu_per_board_growth_1_to_16"] = (last["cpu_s"] / SIZES[-1]) / (first["cpu_s"] / SIZES[0])
    info["rss_growth_mb_per_added_board"] = (last["rss_mb"] - first["rss_mb"]) / (SIZES[-1] - SIZES[0])
    produced(info, *(f"client_cpu_s_per_board[{n}]" for n in SIZES), "cpu_per_board_growth_1_to_16",
             "rss_growth_mb_per_added_board")
