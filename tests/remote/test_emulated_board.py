"""Two loopback boards, one of them a Raspberry Pi 5's CPU under qemu user mode (tools/pi_emulate.py): one
merged result, and the emulated board's record says so. The emulated root takes minutes to build and an
emulated run a minute or more, so this runs where the emulated Pi is built: `.ci/pi_emulated.sh` sets
ACCEL_EMULATED_BOARD to the CPU (cortex-a72 or cortex-a76) after building it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from loopback import Fleet

ROOT = Path(__file__).resolve().parents[2]

CPU = os.environ.get("ACCEL_EMULATED_BOARD", "")
pytestmark = pytest.mark.skipif(CPU not in ("cortex-a72", "cortex-a76"),
                                reason="the emulated board runs in .ci/pi_emulated.sh "
                                "(ACCEL_EMULATED_BOARD=cortex-a72), where the emulated Pi is built")


def test_a_native_and_an_emulated_board_one_merged_result(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.add("piemu")
    emulate = shlex.join([sys.executable, str(ROOT / "tools" / "pi_emulate.py"), "--cpu", CPU, "--"])
    # `python -m accel ARGS` on this board is accel ARGS on the emulated Pi's CPU
    board.set_script(f'[ "$1" = "-m" ] && [ "$2" = "accel" ] && shift 2\nexec {emulate} "$@"\n')
    env = {**os.environ, "ACCEL_OUTPUT_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "accel", "compare", "--ssh-config", str(fleet.ssh_config),
                           "--on", "board1", "--on", "piemu", "--frames", "10", "--warmup", "2"],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    native = json.loads((folder / "boards" / "board1" / "result.json").read_text())
    emulated = json.loads((folder / "boards" / "piemu" / "result.json").read_text())
    assert native["machine"]["emulated"] is None
    assert emulated["machine"]["emulated"]["cpu"] == CPU and emulated["machine"]["arch"] == "aarch64"
    ok = [v["variant"] for v in emulated["variants"] if v["status"] == "ok"]
    assert len(ok) >= 3, [(v["variant"], v["status"], v.get("error")) for v in emulated["variants"]]
    assert "piemu" in done.stdout and "EMULATED" in done.stdout  # the boards table and the runs compared say so
    report = (folder / "report.md").read_text()
    assert "| piemu | ok |" in report and "EMULATED" in report
