"""Power from a battery's fuel gauge: ``/sys/class/power_supply/*/`` of ``type`` Battery.

Units (kernel power_supply ABI): ``power_now`` microwatts, ``current_now`` microamps, ``voltage_now``
microvolts. Some gauges report current (or power) signed, negative while discharging: the magnitude is
used. Only a discharging battery measures the machine's draw; on the charger it measures charging.
"""

from __future__ import annotations

import time
from pathlib import Path

from accel.core.errors import PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, Reading
from accel.power.sysfs import read_int


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class BatteryMeter(MeterBase):
    """A discharging battery's power_now (or current_now x voltage_now). Options: ``name`` (the supply's
    directory name, e.g. "BAT0"; default: the first battery), ``root``."""

    name = "battery"
    min_interval_s = 0.002  # fuel gauges update every few seconds; reads are cheap

    def __init__(self, name: str | None = None, root: str = "/sys/class/power_supply") -> None:
        self.supply = name
        self.root = Path(root)
        self._dev: Path | None = None

    def _batteries(self) -> list[Path]:
        supplies = sorted(self.root.glob("*")) if self.root.is_dir() else []
        return [p for p in supplies if _text(p / "type") == "Battery"
                and (self.supply is None or p.name == self.supply)]

    def probe(self) -> Availability:
        batteries = self._batteries()
        if not batteries:
            which = f"named {self.supply!r} " if self.supply else ""
            return Availability.no(f"no battery {which}under {self.root}; a battery-powered board or laptop "
                                   "only, pick another meter")
        dev = batteries[0]
        status = _text(dev / "status")
        if status and status != "Discharging":
            return Availability.no(f"battery {dev.name} is {status}: it measures charging, not the draw; "
                                   "unplug the charger to measure on battery")
        try:
            watts = self._watts(dev)
        except (OSError, ValueError) as exc:
            return Availability.no(f"battery {dev.name} has no readable power_now nor current_now x "
                                   f"voltage_now ({exc}); pick another meter")
        self._dev = dev
        return Availability.yes(f"battery {dev.name}: {watts:.2f} W now")

    @staticmethod
    def _watts(dev: Path) -> float:
        if (dev / "power_now").exists():
            return abs(read_int(dev / "power_now")) / 1e6
        return abs(read_int(dev / "current_now")) * read_int(dev / "voltage_now") / 1e12

    def read(self) -> Reading:
        if self._dev is None:
            avail = self.probe()
            if self._dev is None:
                raise PowerError(f"battery: {avail.reason}")
        try:
            watts = self._watts(self._dev)
        except (OSError, ValueError) as exc:
            raise PowerError(f"battery read failed: {exc}") from exc
        return Reading(time.monotonic(), watts=watts)
