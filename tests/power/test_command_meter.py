"""The command meter with real shell commands: the number it prints, and how it fails."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from accel.core.errors import PowerError
from accel.power.command import CommandMeter, first_number


@pytest.mark.parametrize(("command", "watts"), [
    ("echo 4.5", 4.5),
    ("echo 'P=12.25 W'", 12.25),
    ("printf '  3\\n7\\n'", 3.0),
    ("echo 1e1", 10.0),
], ids=["plain", "labelled", "first-of-lines", "exponent"])
def test_reads_the_first_number(command: str, watts: float) -> None:
    with CommandMeter(command=command) as meter:
        assert meter.probe().ok
        assert meter.read().watts == pytest.approx(watts)


@pytest.mark.parametrize(("command", "timeout_s", "match"), [
    ("echo no reading", 5.0, "printed no number of watts: 'no reading'"),
    ("echo 'meter unplugged' >&2; exit 3", 5.0, "exited with 3: 'meter unplugged'"),
    ("sleep 30", 0.5, "did not finish within 0.5 s"),
    ("echo 1.5; sleep 30", 5.0, r"did not finish within 5 s \(printed '1.5'\)"),  # 5 s: time to print
], ids=["not-a-number", "exit-code", "timeout", "timeout-after-output"])
def test_failures(command: str, timeout_s: float, match: str) -> None:
    meter = CommandMeter(command=command, timeout_s=timeout_s)
    with pytest.raises(PowerError, match=match):
        meter.read()
    assert not meter.probe().ok


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped by whoever inherited it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to look a process up")
def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """The shell's child (a background sleep that does not hold the pipes, so killing only the shell
    would end the read) dies with it. SIGKILL lands asynchronously: the child is given up to 30 s to be
    gone, which a correct kill takes microseconds of and a missing one never does."""
    pid_file = tmp_path / "child.pid"
    # 5 s: time for the shell to start its child and write the pid on a loaded machine
    meter = CommandMeter(command=f"sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}; wait", timeout_s=5.0)
    with pytest.raises(PowerError, match="did not finish within 5 s"):
        meter.read()
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _dead(pid)


def test_probe_measures_its_cost() -> None:
    meter = CommandMeter(command="sleep 0.05; echo 2")
    assert meter.probe().ok
    assert meter.min_interval_s >= 0.05


def test_first_number() -> None:
    assert first_number("x -0.5 y") == -0.5
    assert first_number("none") is None
