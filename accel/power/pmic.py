"""Raspberry Pi 5 board power from the PMIC's ADCs (``vcgencmd pmic_read_adc``).

The PMIC reports current and voltage per output rail; board power is the sum of V x I over the rails that
have both (PMIC output side: conversion losses and USB loads are not included). ``EXT5V_V`` and ``BATT_V``
have no current. One read costs ~23 ms on a Pi 5, so it is never sampled faster than that.
"""

from __future__ import annotations

import re
import time

from accel.core.errors import OptionError, PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, Reading
from accel.power.sysfs import run_text, which

# "   VDD_CORE_A current(7)=0.75012000A" / "   VDD_CORE_V volt(15)=0.89369880V"
_LINE = re.compile(r"^\s*(?P<name>[A-Za-z0-9_]+)\s+\w+\(\d+\)=(?P<value>[-+0-9.eE]+)\s*[AV]?\s*$")


def parse_pmic(text: str) -> dict[str, float]:
    """Channel name -> value (amps for ``*_A``, volts for ``*_V``) of ``vcgencmd pmic_read_adc`` output.
    Lines in another format are ignored."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            values[m["name"]] = float(m["value"])
    return values


def rail_watts(values: dict[str, float]) -> dict[str, float]:
    """Rail -> watts (V x I) for every rail that has both a ``_A`` and a ``_V`` channel."""
    rails = {name[:-2] for name in values if name.endswith("_A")}
    return {rail: values[f"{rail}_A"] * values[f"{rail}_V"] for rail in sorted(rails) if f"{rail}_V" in values}


def pmic_watts(text: str) -> float:
    """Total board power in watts from ``pmic_read_adc`` output. Raises ``PowerError`` without current data."""
    rails = rail_watts(parse_pmic(text))
    if not rails:
        raise PowerError("vcgencmd pmic_read_adc printed no rail with both current and voltage "
                         "(a Pi 5 with current firmware prints e.g. 'VDD_CORE_A current(7)=0.75A')")
    return sum(rails.values())


class Pi5PmicMeter(MeterBase):
    """``vcgencmd pmic_read_adc`` summed over rails. Options: ``vcgencmd`` (path or name), ``timeout_s``."""

    name = "pi5-pmic"
    min_interval_s = 0.023  # replaced by the measured read cost at probe()

    def __init__(self, vcgencmd: str = "vcgencmd", timeout_s: float = 2.0) -> None:
        if timeout_s <= 0:
            raise OptionError("power.pi5-pmic.timeout_s", f"expected seconds > 0, got {timeout_s!r}", "timeout_s")
        self.vcgencmd = vcgencmd
        self.timeout_s = float(timeout_s)

    def _text(self) -> str:
        return run_text([self.vcgencmd, "pmic_read_adc"], self.timeout_s)

    def probe(self) -> Availability:
        if which(self.vcgencmd) is None:
            return Availability.no(f"{self.vcgencmd} not found (Raspberry Pi OS only); on a Pi 5 install "
                                   "the 'raspi-utils' package, elsewhere pick another meter")
        try:
            t0 = time.perf_counter()
            watts = pmic_watts(self._text())
            cost = time.perf_counter() - t0
        except PowerError as exc:
            return Availability.no(f"{exc}; the PMIC meter needs a Raspberry Pi 5")
        self.min_interval_s = max(cost, 0.001)
        return Availability.yes(f"pi5-pmic: {watts:.2f} W now, read in {cost * 1e3:.0f} ms")

    def read(self) -> Reading:
        t0 = time.monotonic()
        text = self._text()
        t1 = time.monotonic()
        return Reading((t0 + t1) / 2, watts=pmic_watts(text))
