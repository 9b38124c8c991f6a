"""The estimate meter: published board profiles, linear in CPU utilisation, marked estimated."""

from __future__ import annotations

from pathlib import Path

import pytest
from powerfakes import write

from accel.core.errors import PowerError
from accel.power.estimate import EstimateMeter


def _root(tmp_path: Path, model: str) -> str:
    write(tmp_path / "proc" / "device-tree" / "model", model + "\x00")
    return str(tmp_path)


# Profiles (accel/power/estimate.py, cited there): Pi 4 2.6 W idle, 5.7 W full; Pi 5 2.5 W idle, 11.0 W full.
@pytest.mark.parametrize(("model", "util", "watts"), [
    ("Raspberry Pi 5 Model B Rev 1.0", 0.0, 2.5),
    ("Raspberry Pi 5 Model B Rev 1.0", 50.0, 6.75),    # 2.5 + (11.0 - 2.5) x 0.5
    ("Raspberry Pi 5 Model B Rev 1.0", 100.0, 11.0),
    ("Raspberry Pi 4 Model B Rev 1.4", 25.0, 3.375),   # 2.6 + (5.7 - 2.6) x 0.25
], ids=["pi5-idle", "pi5-half", "pi5-full", "pi4-quarter"])
def test_linear_in_utilisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, util: float,
                               watts: float) -> None:
    import psutil

    meter = EstimateMeter(root=_root(tmp_path, model))
    assert meter.probe().ok and meter.estimated
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: util)
    assert meter.read().watts == pytest.approx(watts)


def test_board_option_overrides(tmp_path: Path) -> None:
    meter = EstimateMeter(board="Raspberry Pi 5", root=_root(tmp_path, "Raspberry Pi 3 Model B Rev 1.2"))
    assert meter.probe().ok


@pytest.mark.parametrize(("model", "match"), [
    ("Raspberry Pi 3 Model B Rev 1.2", "no power profile for 'Raspberry Pi 3 Model B Rev 1.2'"),
    (None, "no board model"),
], ids=["unknown-board", "not-a-pi"])
def test_no_profile(tmp_path: Path, model: str | None, match: str) -> None:
    root = _root(tmp_path, model) if model else str(tmp_path)
    meter = EstimateMeter(root=root)
    assert match in meter.probe().reason
    with pytest.raises(PowerError):
        meter.read()
