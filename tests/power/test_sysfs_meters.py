"""hwmon, RAPL and battery meters on fake sysfs trees (units per the kernel ABI, values hand-computed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from powerfakes import write

import accel.power.rapl as rapl_module
from accel.core.errors import PowerError
from accel.power.battery import BatteryMeter
from accel.power.hwmon import HwmonMeter
from accel.power.rapl import RaplMeter


# -- hwmon -------------------------------------------------------------------------------------------------
def _hwmon_tree(root: Path) -> None:
    write(root / "hwmon0" / "name", "coretemp\n")
    write(root / "hwmon0" / "temp1_input", "45000\n")
    # ina219: current 1250 mA, bus voltage (in1) 5100 mV; in0 is the shunt drop (no curr0).
    write(root / "hwmon1" / "name", "ina219\n")
    write(root / "hwmon1" / "curr1_input", "1250\n")
    write(root / "hwmon1" / "in1_input", "5100\n")
    write(root / "hwmon1" / "in0_input", "12\n")
    # ina260: power 5234000 uW (it also has curr/in, which must not be added on top).
    write(root / "hwmon7" / "name", "ina260\n")
    write(root / "hwmon7" / "power1_input", "5234000\n")
    write(root / "hwmon7" / "curr1_input", "1000\n")
    write(root / "hwmon7" / "in1_input", "5000\n")
    # a GPU-like device exposing only an average: 15000000 uW.
    write(root / "hwmon9" / "name", "amdgpu\n")
    write(root / "hwmon9" / "power1_average", "15000000\n")


@pytest.mark.parametrize(("name", "watts"), [
    (None, 1.25 * 5.1),      # first device with current+voltage: ina219, 1.25 A x 5.1 V = 6.375 W
    ("ina219", 6.375),
    ("ina260", 5.234),       # 5234000 uW = 5.234 W
    ("amdgpu", 15.0),        # power1_average 15000000 uW
], ids=["default-first", "ina219-curr-x-in", "ina260-power-uW", "average-only"])
def test_hwmon_watts(tmp_path: Path, name: str | None, watts: float) -> None:
    _hwmon_tree(tmp_path)
    with HwmonMeter(name=name, root=str(tmp_path)) as meter:
        assert meter.probe().ok
        assert meter.read().watts == pytest.approx(watts)


def test_hwmon_follows_the_name_not_the_number(tmp_path: Path) -> None:
    write(tmp_path / "hwmon4" / "name", "ina219\n")
    write(tmp_path / "hwmon4" / "power1_input", "3000000\n")
    meter = HwmonMeter(name="ina219", root=str(tmp_path))
    assert meter.probe().ok and meter.read().watts == pytest.approx(3.0)


@pytest.mark.parametrize(("name", "match"), [
    ("ina226", "no hwmon device named 'ina226' \\(found: coretemp\\)"),
    (None, "no hwmon device with power or current\\+voltage \\(found: coretemp\\)"),
    ("coretemp", "exposes no power"),
], ids=["missing-name", "nothing-suitable", "named-without-power"])
def test_hwmon_unavailable(tmp_path: Path, name: str | None, match: str) -> None:
    write(tmp_path / "hwmon0" / "name", "coretemp\n")
    write(tmp_path / "hwmon0" / "temp1_input", "45000\n")
    avail = HwmonMeter(name=name, root=str(tmp_path)).probe()
    assert not avail.ok
    assert re.search(match, avail.reason), avail.reason


# -- RAPL --------------------------------------------------------------------------------------------------
MAX_UJ = 262_143_328_850  # a typical max_energy_range_uj


def _rapl(root: Path, name: str, energy_uj: int) -> Path:
    write(root / name / "energy_uj", f"{energy_uj}\n")
    write(root / name / "max_energy_range_uj", f"{MAX_UJ}\n")
    return root / name / "energy_uj"


def test_rapl_unwraps(tmp_path: Path) -> None:
    energy = _rapl(tmp_path, "intel-rapl:0", 262_142_000_000)
    meter = RaplMeter(root=str(tmp_path))
    assert meter.kind == "energy" and meter.probe().ok   # probe reads the counter: 262142000000
    energy.write_text("262143000000\n")
    first = meter.read()                                  # +1000000 uJ = 1.0 J
    energy.write_text("500000\n")
    second = meter.read()
    # wrapped: delta = new + max - old = 500000 + 262143328850 - 262143000000 = 828850 uJ
    # cumulative = 1000000 + 828850 = 1828850 uJ = 1.82885 J
    assert first.energy_j == pytest.approx(1.0)
    assert second.energy_j == pytest.approx(1.82885)
    assert second.energy_j is not None and first.energy_j is not None
    assert second.energy_j - first.energy_j == pytest.approx(0.82885)
    assert second.watts is not None and second.watts > 0


def test_rapl_sums_packages_not_subdomains(tmp_path: Path) -> None:
    p0 = _rapl(tmp_path, "intel-rapl:0", 100)
    p1 = _rapl(tmp_path, "intel-rapl:1", 200)
    core = _rapl(tmp_path, "intel-rapl:0:0", 50)  # a subdomain of package 0: already inside it
    meter = RaplMeter(root=str(tmp_path))
    assert meter.probe().ok
    p0.write_text("2000100\n")   # +2000000 uJ
    p1.write_text("3000200\n")   # +3000000 uJ
    core.write_text("9000050\n")  # ignored
    assert meter.read().energy_j == pytest.approx(5.0)  # (2000000 + 3000000) uJ


def test_rapl_root_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rapl(tmp_path, "intel-rapl:0", 100)
    real = rapl_module.read_int

    def root_only(path: Path) -> int:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl_module, "read_int", root_only)
    avail = RaplMeter(root=str(tmp_path)).probe()
    assert not avail.ok
    assert "root only" in avail.reason and "sudo chmod o+r" in avail.reason and "intel-rapl:0/energy_uj" in avail.reason
    with pytest.raises(PowerError, match="root only"):
        RaplMeter(root=str(tmp_path)).read()


def test_rapl_absent(tmp_path: Path) -> None:
    assert "no RAPL domain" in RaplMeter(root=str(tmp_path)).probe().reason


# -- battery -----------------------------------------------------------------------------------------------
def _supply(root: Path, name: str, **attrs: str) -> None:
    for key, value in attrs.items():
        write(root / name / key, value + "\n")


@pytest.mark.parametrize(("attrs", "watts"), [
    ({"power_now": "7500000"}, 7.5),                                   # 7500000 uW
    ({"current_now": "1500000", "voltage_now": "11400000"}, 17.1),     # 1.5 A x 11.4 V
    ({"current_now": "-1500000", "voltage_now": "11400000"}, 17.1),    # signed gauge: magnitude
], ids=["power_now", "current-x-voltage", "negative-current"])
def test_battery_watts(tmp_path: Path, attrs: dict[str, str], watts: float) -> None:
    _supply(tmp_path, "AC", type="Mains", online="0")
    _supply(tmp_path, "BAT0", type="Battery", status="Discharging", **attrs)
    meter = BatteryMeter(root=str(tmp_path))
    assert meter.probe().ok
    assert meter.read().watts == pytest.approx(watts)


@pytest.mark.parametrize(("supplies", "match"), [
    ({"AC": {"type": "Mains"}}, "no battery"),
    ({"BAT0": {"type": "Battery", "status": "Charging", "power_now": "1"}}, "Charging.*unplug"),
    ({"BAT0": {"type": "Battery", "status": "Discharging"}}, "no readable power_now"),
], ids=["mains-only", "charging", "no-gauge"])
def test_battery_unavailable(tmp_path: Path, supplies: dict[str, dict[str, str]], match: str) -> None:
    for name, attrs in supplies.items():
        _supply(tmp_path, name, **attrs)
    avail = BatteryMeter(root=str(tmp_path)).probe()
    assert not avail.ok
    assert re.search(match, avail.reason), avail.reason
