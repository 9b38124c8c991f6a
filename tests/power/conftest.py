"""Fixtures for the power tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from powerfakes import FIXTURES, fake_program


@pytest.fixture
def fake_vcgencmd(tmp_path: Path) -> str:
    """A vcgencmd answering pmic_read_adc (the recorded fixture), get_throttled and measure_temp."""
    adc = FIXTURES / "pmic_read_adc.txt"
    return fake_program(tmp_path / "bin" / "vcgencmd", f"""case "$1" in
  pmic_read_adc) cat "{adc}" ;;
  get_throttled) echo "throttled=0x50005" ;;
  measure_temp) echo "temp=39.5'C" ;;
  *) echo "unknown command $1" >&2; exit 1 ;;
esac
""")
