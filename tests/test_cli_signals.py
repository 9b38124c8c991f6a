"""Signals mid-run, sent to the real CLI as a terminal, `kill` or a dropped SSH session sends them: the
variant in progress keeps the frames it measured (status interrupted), the result says so, the exit code is
128 + the signal, and nothing is left behind: no worker process, nothing in /dev/shm, no worker log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from shm_helpers import leaked_shm, shm_entries

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")

TESTS = Path(__file__).parent
# The real CLI, with a test delegate registered by hand (the worker registers it again)
_MAIN = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import crashy_plugin; "
         "from accel.delegates import REGISTRY; REGISTRY.register('marking', crashy_plugin.MarkingDelegate); "
         "from accel.cli.main import main; sys.exit(main(sys.argv[1:]))")
# 60 frames: once marked, the marking variant measures for 11 s (0.2 s a frame), time enough on a loaded
# machine for the test to see the mark and signal it before it ends
_TWO_VARIANTS = ("--delegates", "null,marking", "--frames", "60", "--seconds", "0", "--warmup", "1",
                 "--json", "r.json")


class Run:
    """``accel compare`` in a session of its own (as a terminal's job is), its output in files."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.tmp, self.mark = tmp, tmp / "mark"
        (tmp / "tmp").mkdir()
        env = {**os.environ, "ACCEL_TEST_MARK": str(self.mark), "TMPDIR": str(tmp / "tmp"), "PYTHONUNBUFFERED": "1"}
        with open(tmp / "out", "w") as out, open(tmp / "err", "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", _MAIN, str(TESTS), "compare", *args], cwd=tmp,
                                         env=env, stdout=out, stderr=err, start_new_session=True)

    def wait_until(self, what: str, ready: Callable[[], bool], within_s: float = 120) -> None:
        deadline = time.monotonic() + within_s
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"accel exited ({self.proc.returncode}) before {what}: {self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {within_s:g} s: {self.stderr}")
            time.sleep(0.02)

    def measuring(self) -> None:
        self.wait_until("mark from the measuring variant", lambda: self.mark.exists() and self.mark.read_text() != "")

    def finish(self) -> int:
        return self.proc.wait(timeout=120)

    @property
    def stdout(self) -> str:
        return (self.tmp / "out").read_text()

    @property
    def stderr(self) -> str:
        return (self.tmp / "err").read_text()

    def alive(self) -> dict[int, str]:
        """Processes of the run's session still alive (zombies are dead: they wait for init to reap them)."""
        return {pid: stat for pid, stat in _processes().items() if stat[3] == str(self.proc.pid)}

    def none_left(self) -> None:
        deadline = time.monotonic() + 30
        while self.alive():
            assert time.monotonic() < deadline, f"processes left behind: {self.alive()}"
            time.sleep(0.05)


def _processes() -> dict[int, list[str]]:
    """pid -> /proc/PID/stat fields after the name (state, ppid, pgrp, session, ...), zombies left out."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            if fields[0] not in ("Z", "X"):
                out[int(entry.name)] = fields
    return out


def _no_named_shared_memory(run: Run) -> None:
    """While it runs, the worker maps its replay frames from an anonymous memfd, never from /dev/shm."""
    worker = int(run.mark.read_text())
    maps = {pid: Path(f"/proc/{pid}/maps").read_text() for pid in run.alive()}
    assert not [pid for pid, text in maps.items() if "/dev/shm/" in text]
    assert "memfd:accel-replay-frames" in maps[worker]


@pytest.mark.parametrize(("sig", "to_group"), [
    (signal.SIGINT, True),  # Ctrl-C: the terminal signals the whole foreground job
    (signal.SIGTERM, False),  # kill PID, a service manager stopping it
    (signal.SIGHUP, True),  # the SSH session drops: the hang-up reaches the whole job
], ids=["SIGINT-ctrl-c", "SIGTERM-kill", "SIGHUP-hangup"])
def test_a_signal_mid_variant_keeps_its_frames_and_leaves_nothing(tmp_path: Path, sig: signal.Signals,
                                                                  to_group: bool) -> None:
    shm = shm_entries()
    run = Run(tmp_path, *_TWO_VARIANTS)
    run.measuring()
    _no_named_shared_memory(run)
    (os.killpg if to_group else os.kill)(run.proc.pid, sig)
    assert run.finish() == 128 + sig, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in run.stderr and "leaked" not in run.stderr, run.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["complete"] is False and doc["interrupted"] == sig.name
    assert [v["status"] for v in doc["variants"]] == ["ok", "interrupted"]
    stopped = doc["variants"][1]
    assert stopped["partial"] is True and stopped["frames_measured"] >= 3  # 3 measured before the mark
    assert len(stopped["raw_ms"]["inference"]) == stopped["frames_measured"]
    assert stopped["error"].startswith(f"stopped by {sig.name} (after {stopped['frames_measured']} measured frames")
    assert lines[0] == (f"accel: interrupted by {sig.name}; saved 2 variant records, with the "
                        f"{stopped['frames_measured']} frames marking after=5 measured before it was stopped "
                        f"(status interrupted) in {tmp_path / 'r.json'} (complete: false)")
    run.none_left()
    assert leaked_shm(shm) == set()
    assert list((tmp_path / "tmp").iterdir()) == []  # no accel-worker-*.log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["err", "frames", "mark", "out", "r.json", "tmp"]  # no .tmp


def test_sigkill_leaves_no_worker_and_no_shared_memory(tmp_path: Path) -> None:
    shm = shm_entries()
    run = Run(tmp_path, *_TWO_VARIANTS)
    run.measuring()
    _no_named_shared_memory(run)
    os.kill(run.proc.pid, signal.SIGKILL)  # nothing can be saved, but nothing may leak either
    assert run.finish() == -signal.SIGKILL
    run.none_left()  # the kernel kills the worker when its parent dies
    assert leaked_shm(shm) == set()
    assert list((tmp_path / "tmp").iterdir()) == []
    doc = json.loads((tmp_path / "r.json").read_text())  # the document as written after the first variant
    assert [v["status"] for v in doc["variants"]] == ["ok"] and doc["complete"] is False


def test_ctrl_c_while_capturing_claims_no_result(tmp_path: Path) -> None:
    run = Run(tmp_path, "--delegates", "null", "--source", "synthetic:1920x1080", "--frames", "100000",
              "--json", "r.json")
    run.wait_until("capture", lambda: "capturing frames" in run.stdout)
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.finish() == 130, run.stderr
    assert run.stderr.strip() == "accel: interrupted by SIGINT before any frame was measured; no result was written"
    assert not (tmp_path / "r.json").exists()
    run.none_left()
