"""The Pi 5 PMIC meter against a recorded ``vcgencmd pmic_read_adc`` output."""

from __future__ import annotations

from pathlib import Path

import pytest
from powerfakes import FIXTURES, fake_program

from accel.core.errors import PowerError
from accel.power.pmic import Pi5PmicMeter, parse_pmic, pmic_watts, rail_watts

RECORDED = (FIXTURES / "pmic_read_adc.txt").read_text()

# Hand computation, V x I per rail of the fixture (EXT5V_V and BATT_V have no current, so no power):
#   3V7_WL_SW 3.7 x 0.02 = 0.074         3V3_SYS  3.3 x 0.06 = 0.198       1V8_SYS 1.8 x 0.15 = 0.270
#   DDR_VDD2  1.1 x 0.10 = 0.110         DDR_VDDQ 0.6 x 0.05 = 0.030       1V1_SYS 1.1 x 0.20 = 0.220
#   0V8_SW    0.8 x 0.30 = 0.240         VDD_CORE 0.8936988 x 0.75012 = 0.670381344
#   3V3_DAC   3.3 x 0.0005 = 0.00165     3V3_ADC  3.3 x 0.0004 = 0.00132   0V8_AON 0.8 x 0.005 = 0.004
#   HDMI      5.1 x 0.02 = 0.102
#   total = 0.074 + 0.198 + 0.270 + 0.110 + 0.030 + 0.220 + 0.240 + 0.670381344 + 0.00165 + 0.00132
#           + 0.004 + 0.102 = 1.921351344 W
TOTAL_W = 1.921351344


def test_parse_reads_every_channel() -> None:
    values = parse_pmic(RECORDED)
    assert len(values) == 26  # 12 currents + 14 voltages
    assert values["VDD_CORE_A"] == pytest.approx(0.75012)
    assert values["VDD_CORE_V"] == pytest.approx(0.8936988)
    assert values["EXT5V_V"] == pytest.approx(5.1)


def test_rails_with_current_only() -> None:
    rails = rail_watts(parse_pmic(RECORDED))
    assert sorted(rails) == sorted(["3V7_WL_SW", "3V3_SYS", "1V8_SYS", "DDR_VDD2", "DDR_VDDQ", "1V1_SYS", "0V8_SW",
                                    "VDD_CORE", "3V3_DAC", "3V3_ADC", "0V8_AON", "HDMI"])
    assert rails["VDD_CORE"] == pytest.approx(0.670381344)


def test_total_watts_hand_computed() -> None:
    assert pmic_watts(RECORDED) == pytest.approx(TOTAL_W, rel=1e-9)


@pytest.mark.parametrize("text", ["", "error=1 error_msg=\"Command not registered\"\n", "  EXT5V_V volt(24)=5.1V\n"],
                         ids=["empty", "old-firmware", "voltage-only"])
def test_no_current_is_an_error(text: str) -> None:
    with pytest.raises(PowerError, match="no rail"):
        pmic_watts(text)


def test_meter_reads_through_vcgencmd(fake_vcgencmd: str) -> None:
    with Pi5PmicMeter(vcgencmd=fake_vcgencmd) as meter:
        avail = meter.probe()
        assert avail.ok, avail.reason
        assert meter.min_interval_s > 0
        reading = meter.read()
    assert reading.watts == pytest.approx(TOTAL_W, rel=1e-9)
    assert reading.energy_j is None


def test_probe_without_vcgencmd(tmp_path: Path) -> None:
    avail = Pi5PmicMeter(vcgencmd=str(tmp_path / "nope")).probe()
    assert not avail.ok and "not found" in avail.reason


def test_probe_on_a_pi4_like_vcgencmd(tmp_path: Path) -> None:
    prog = fake_program(tmp_path / "vcgencmd", 'echo "error=1 error_msg=\\"Command not registered\\""\n')
    avail = Pi5PmicMeter(vcgencmd=prog).probe()
    assert not avail.ok and "Pi 5" in avail.reason


def test_failing_vcgencmd_read(tmp_path: Path) -> None:
    prog = fake_program(tmp_path / "vcgencmd", "echo 'VCHI initialization failed' >&2; exit 255\n")
    with pytest.raises(PowerError, match="VCHI initialization failed"):
        Pi5PmicMeter(vcgencmd=prog).read()
