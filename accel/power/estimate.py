"""An estimate, not a measurement: board power from CPU utilisation and a published profile.

``watts = idle + (full - idle) x utilisation`` with system-wide CPU utilisation (psutil) since the previous
reading. Only boards with a profile are estimated; readings are marked ``estimated`` everywhere they go.
This ignores the GPU, memory traffic, USB and frequency scaling: use it to rank variants roughly, never to
quote J/frame as measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accel.core.errors import PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, Reading


@dataclass(frozen=True)
class BoardProfile:
    """Whole-board watts at the USB input, idle and with every core busy."""

    board: str
    idle_w: float
    full_w: float


# Keys are prefixes of /proc/device-tree/model ("Raspberry Pi 4 Model B Rev 1.4").
PROFILES = (
    # Pi 4: idle 2.2-3.0 W, high CPU load 5.1-6.3 W (USB testers and a wall meter, Raspberry Pi OS Bullseye):
    # chipwired.com, "How much power a Raspberry Pi uses (36 measurements and results)",
    # https://chipwired.com/raspberry-pi-power-use/ ; the midpoints of those ranges.
    BoardProfile("Raspberry Pi 4", idle_w=2.6, full_w=5.7),
    # Pi 5: idle ~2-3 W, all-core load ~10-12 W: the ranges collected in the project's FACTS.md
    # ("Power and thermals", from public measurements); the midpoints. Not verified on our own board.
    BoardProfile("Raspberry Pi 5", idle_w=2.5, full_w=11.0),
)


def profile_for(model: str) -> BoardProfile | None:
    """The profile whose board name starts ``model`` (the device-tree model string), else None."""
    for p in PROFILES:
        if model.strip().startswith(p.board):
            return p
    return None


class EstimateMeter(MeterBase):
    """Linear in CPU utilisation between a board's published idle and full-load watts. Options: ``board``
    (overrides /proc/device-tree/model, e.g. "Raspberry Pi 5"), ``root`` (for /proc/device-tree/model)."""

    name = "estimate"
    estimated = True
    min_interval_s = 0.05  # utilisation over shorter spans is mostly scheduler noise

    def __init__(self, board: str | None = None, root: str = "/") -> None:
        self.board = board
        self.root = Path(root)
        self.profile: BoardProfile | None = None
        self._psutil: Any = None

    def _model(self) -> str | None:
        if self.board:
            return self.board
        try:
            return (self.root / "proc/device-tree/model").read_text(errors="replace").strip("\x00\n ")
        except OSError:
            return None

    def probe(self) -> Availability:
        model = self._model()
        if model is None:
            return Availability.no("no board model (/proc/device-tree/model is absent, not a Pi); set "
                                   "power.estimate.board to a profiled board or use a real meter")
        profile = profile_for(model)
        if profile is None:
            known = ", ".join(p.board for p in PROFILES)
            return Availability.no(f"no power profile for {model!r} (profiles: {known}); use a real meter")
        try:
            import psutil
        except ImportError:
            return Availability.no("psutil is missing; pip install psutil")
        self.profile, self._psutil = profile, psutil
        psutil.cpu_percent(interval=None)  # starts the utilisation interval the first read() ends
        return Availability.yes(f"estimate for {profile.board}: {profile.idle_w:g}-{profile.full_w:g} W "
                                "by CPU utilisation (not measured)")

    def watts_at(self, utilisation_percent: float) -> float:
        """Estimated watts at a system-wide CPU utilisation in percent (0-100)."""
        if self.profile is None:
            raise PowerError("estimate: no board profile; call probe() first")
        u = min(max(utilisation_percent, 0.0), 100.0) / 100.0
        return self.profile.idle_w + (self.profile.full_w - self.profile.idle_w) * u

    def read(self) -> Reading:
        if self.profile is None and not self.probe().ok:
            raise PowerError(f"estimate: {self.probe().reason}")
        return Reading(time.monotonic(), watts=self.watts_at(float(self._psutil.cpu_percent(interval=None))))
