"""Power from a Linux hwmon device: an INA219/INA226/INA260 on I2C (kernel ``ina2xx`` driver) or any
device exposing power.

Units (kernel hwmon ABI): ``power*_input``/``power*_average`` microwatts, ``curr*_input`` milliamps,
``in*_input`` millivolts. Without a power channel, power is ``currN x inN`` (for ina2xx ``in1`` is the bus
voltage; ``in0`` is the shunt drop and has no ``curr0``). The device is chosen by its ``name`` file, never
by its hwmonN number, which changes across boots.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from accel.core.errors import PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, Reading
from accel.power.sysfs import read_int

_POWER = re.compile(r"^power(\d+)_(input|average)$")
_CURR = re.compile(r"^curr(\d+)_input$")


def _channels(dev: Path) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """(power files, [(curr, in) pairs]) of a hwmon device; ``powerN_input`` preferred over ``_average``."""
    names = {p.name for p in dev.iterdir()} if dev.is_dir() else set()
    power: dict[int, Path] = {}
    for n in sorted(names):
        m = _POWER.match(n)
        if m and (int(m[1]) not in power or m[2] == "input"):
            power[int(m[1])] = dev / n
    pairs = []
    for n in sorted(names):
        m = _CURR.match(n)
        if m and f"in{m[1]}_input" in names:
            pairs.append((dev / n, dev / f"in{m[1]}_input"))
    return [power[k] for k in sorted(power)], pairs


def _device_name(dev: Path) -> str:
    try:
        return (dev / "name").read_text().strip()
    except OSError:
        return "?"


class HwmonMeter(MeterBase):
    """Sum of a hwmon device's power channels (or currN x inN). Options: ``name`` (the device's ``name``
    file, e.g. "ina219"; default: the first device with power or current+voltage), ``root``."""

    name = "hwmon"
    min_interval_s = 0.002  # a sysfs read is microseconds; ina2xx converts every ~1-9 ms anyway

    def __init__(self, name: str | None = None, root: str = "/sys/class/hwmon") -> None:
        self.device = name
        self.root = Path(root)
        self._power: list[Path] = []
        self._pairs: list[tuple[Path, Path]] = []
        self._dev: Path | None = None

    def _find(self) -> tuple[Path | None, str]:
        devices = sorted(self.root.glob("hwmon*"), key=lambda p: (len(p.name), p.name))
        seen = []
        for dev in devices:
            dev_name = _device_name(dev)
            seen.append(dev_name)
            if self.device is not None and dev_name != self.device:
                continue
            power, pairs = _channels(dev)
            if power or pairs:
                self._power, self._pairs = power, pairs
                return dev, dev_name
            if self.device is not None:
                return None, (f"hwmon device {self.device!r} exposes no power*_input nor curr*_input with "
                              "in*_input; check its driver")
        found = ", ".join(seen) if seen else "none"
        if self.device is not None:
            return None, (f"no hwmon device named {self.device!r} (found: {found}); load its driver "
                          "(e.g. dtoverlay=i2c-sensor,ina219) or fix power.hwmon.name")
        return None, (f"no hwmon device with power or current+voltage (found: {found}); attach an "
                      "INA219/INA226/INA260 with the ina2xx driver, or pick another meter")

    def probe(self) -> Availability:
        dev, detail = self._find()
        if dev is None:
            return Availability.no(detail)
        self._dev = dev
        try:
            watts = self._watts()
        except (OSError, ValueError) as exc:
            return Availability.no(f"hwmon device {detail!r} unreadable: {exc}; check permissions")
        return Availability.yes(f"hwmon {detail}: {watts:.2f} W now")

    def _watts(self) -> float:
        if self._power:
            return sum(read_int(p) for p in self._power) / 1e6
        return sum(read_int(c) * read_int(v) for c, v in self._pairs) / 1e6

    def read(self) -> Reading:
        if self._dev is None and self._find()[0] is None:
            raise PowerError("hwmon meter: no device to read; call probe() first")
        try:
            watts = self._watts()
        except (OSError, ValueError) as exc:
            raise PowerError(f"hwmon read failed: {exc}") from exc
        return Reading(time.monotonic(), watts=watts)
