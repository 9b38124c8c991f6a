"""The command meter with real shell commands: the number it prints, and how it fails."""

from __future__ import annotations

import time

import pytest

from accel.errors import PowerError
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


@pytest.mark.parametrize(("command", "match"), [
    ("echo no reading", "printed no number of watts: 'no reading'"),
    ("echo 'meter unplugged' >&2; exit 3", "exited with 3: 'meter unplugged'"),
    ("sleep 5", "did not finish within 0.3 s"),
    ("echo 1.5; sleep 5", r"did not finish within 0.3 s \(printed '1.5'\)"),
], ids=["not-a-number", "exit-code", "timeout", "timeout-after-output"])
def test_failures(command: str, match: str) -> None:
    meter = CommandMeter(command=command, timeout_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(PowerError, match=match):
        meter.read()
    assert time.monotonic() - t0 < 3.0  # the whole process group is killed, children included
    assert not meter.probe().ok


def test_probe_measures_its_cost() -> None:
    meter = CommandMeter(command="sleep 0.05; echo 2")
    assert meter.probe().ok
    assert meter.min_interval_s >= 0.05


def test_first_number() -> None:
    assert first_number("x -0.5 y") == -0.5
    assert first_number("none") is None
