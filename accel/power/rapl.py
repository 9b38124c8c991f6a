"""Energy from Intel/AMD RAPL (x86 dev machines): ``/sys/class/powercap/intel-rapl:N/energy_uj``.

The counter is cumulative microjoules and wraps at ``max_energy_range_uj``: across a wrap the delta is
``new + max - old``. It is often readable by root only (since Linux 5.10, against power side channels).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from accel.core.errors import OptionError, PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, MeterKind, Reading
from accel.power.sysfs import read_int

_PACKAGE = re.compile(r"^intel-rapl:\d+$")


class _Counter:
    """One domain's counter, unwrapped."""

    def __init__(self, path: Path) -> None:
        self.energy = path / "energy_uj"
        self.max_uj = read_int(path / "max_energy_range_uj")
        self.last: int | None = None
        self.total_uj = 0

    def read(self) -> int:
        raw = read_int(self.energy)
        if self.last is not None:
            self.total_uj += raw - self.last if raw >= self.last else raw + self.max_uj - self.last
        self.last = raw
        return self.total_uj


class RaplMeter(MeterBase):
    """Package energy (all ``intel-rapl:N`` packages summed, or the ``domains`` given). Readings carry the
    unwrapped cumulative ``energy_j`` (zero at the first read) and the mean watts since the previous read.
    Options: ``domains`` (e.g. ["intel-rapl:0"]), ``root``."""

    name = "rapl"
    kind: MeterKind = "energy"
    min_interval_s = 0.002  # the counter updates about every millisecond

    def __init__(self, domains: list[str] | None = None, root: str = "/sys/class/powercap") -> None:
        if domains is not None and (not isinstance(domains, list) or not all(isinstance(d, str) for d in domains)):
            raise OptionError("power.rapl.domains", f'expected a list of names like ["intel-rapl:0"], got {domains!r}',
                              "domains")
        self.root = Path(root)
        self.domains = domains
        self._counters: list[_Counter] = []
        self._last: tuple[float, float] | None = None

    def _paths(self) -> list[Path]:
        if self.domains is not None:
            return [self.root / d for d in self.domains]
        return sorted(p for p in self.root.glob("intel-rapl:*") if _PACKAGE.match(p.name))

    def probe(self) -> Availability:
        paths = self._paths()
        if not paths or not all(p.is_dir() for p in paths):
            return Availability.no(f"no RAPL domain under {self.root} (Intel/AMD x86 with the intel_rapl "
                                   "driver only); pick another meter")
        try:
            counters = [_Counter(p) for p in paths]
            for c in counters:
                c.read()
        except PermissionError:
            where = " ".join(str(p / "energy_uj") for p in paths)
            return Availability.no(f"RAPL energy_uj is readable by root only; run `sudo chmod o+r {where}` "
                                   "(until reboot) or run as root")
        except (OSError, ValueError) as exc:
            return Availability.no(f"RAPL unreadable: {exc}; check the intel_rapl driver")
        self._counters = counters
        self._last = None
        return Availability.yes(f"rapl: {', '.join(p.name for p in paths)}")

    def read(self) -> Reading:
        if not self._counters:
            avail = self.probe()
            if not avail.ok:
                raise PowerError(f"rapl: {avail.reason}")
        t = time.monotonic()
        try:
            energy = sum(c.read() for c in self._counters) / 1e6
        except (OSError, ValueError) as exc:
            raise PowerError(f"RAPL read failed: {exc}") from exc
        watts = None
        if self._last is not None and t > self._last[0]:
            watts = (energy - self._last[1]) / (t - self._last[0])
        self._last = (t, energy)
        return Reading(t, watts=watts, energy_j=energy)
