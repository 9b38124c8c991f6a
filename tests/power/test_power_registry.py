"""open_meter / find_meter: names, options, availability and the "no meter" line."""

from __future__ import annotations

from pathlib import Path

import pytest
from powerfakes import write

from accel.core.errors import ConfigError, PowerError
from accel.power import AUTO_ORDER, REGISTRY, PowerMeter, Reading, find_meter, open_meter, short_reason


def _nothing_here(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {"pi5-pmic": {"vcgencmd": str(tmp_path / "no-vcgencmd")},
            "hwmon": {"root": str(tmp_path / "hwmon")},
            "rapl": {"root": str(tmp_path / "powercap")},
            "battery": {"root": str(tmp_path / "power_supply")}}


def test_builtin_meters_registered() -> None:
    assert set(REGISTRY.names()) >= {"pi5-pmic", "hwmon", "rapl", "battery", "command", "csv", "estimate"}


def test_reading_is_frozen() -> None:
    r = Reading(1.0, watts=2.0)
    with pytest.raises(AttributeError):
        r.watts = 3.0  # type: ignore[misc]


@pytest.mark.parametrize(("name", "options", "match"), [
    ("nope", {}, "unknown meter 'nope'; known: auto, none, battery, command"),
    ("hwmon", {"device": "ina219"}, r"power.hwmon: unknown option 'device'; known: name, root"),
    ("hwmon", {"name": ["x"]}, r"power.hwmon.name: expected a string, got \['x'\]"),
    ("command", {}, "power.command.command"),
    ("command", {"command": "echo 1", "timeout_s": -1}, "timeout_s"),
    ("csv", {}, "power.csv.path"),
], ids=["unknown-meter", "unknown-option", "option-type", "missing-command", "bad-timeout", "missing-path"])
def test_config_errors(name: str, options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_meter(name, options)


def test_unavailable_meter_says_why(tmp_path: Path) -> None:
    with pytest.raises(PowerError, match="'rapl' unavailable: no RAPL domain"):
        open_meter("rapl", {"root": str(tmp_path)})


def test_open_meter_returns_a_probed_meter(tmp_path: Path) -> None:
    write(tmp_path / "hwmon3" / "name", "ina260\n")
    write(tmp_path / "hwmon3" / "power1_input", "4000000\n")
    with open_meter("hwmon", {"root": str(tmp_path)}) as meter:
        assert isinstance(meter, PowerMeter)
        assert meter.read().watts == pytest.approx(4.0)


def test_find_meter_none_gives_every_reason(tmp_path: Path) -> None:
    meter, why = find_meter(_nothing_here(tmp_path))
    assert meter is None
    assert why.startswith("no meter: pi5-pmic: ")
    assert [part.split(":")[0] for part in why.removeprefix("no meter: ").split("; ")] == list(AUTO_ORDER)
    assert "\n" not in why and "sudo" not in why  # short reasons only: no fixes


def test_find_meter_prefers_the_order(tmp_path: Path) -> None:
    options = _nothing_here(tmp_path)
    write(tmp_path / "hwmon" / "hwmon0" / "name", "ina219\n")
    write(tmp_path / "hwmon" / "hwmon0" / "power1_input", "2500000\n")
    rapl = tmp_path / "powercap" / "intel-rapl:0"
    write(rapl / "energy_uj", "1000\n")
    write(rapl / "max_energy_range_uj", "262143328850\n")
    meter, detail = find_meter(options)
    assert meter is not None and meter.name == "hwmon"  # hwmon comes before rapl
    assert "ina219" in detail
    meter.close()


def test_find_meter_never_picks_command_or_estimate(tmp_path: Path) -> None:
    options = {**_nothing_here(tmp_path), "command": {"command": "echo 5"}, "estimate": {"board": "Raspberry Pi 5"}}
    assert find_meter(options)[0] is None


def test_short_reason() -> None:
    assert short_reason("readable by root only; run sudo chmod") == "readable by root only"
