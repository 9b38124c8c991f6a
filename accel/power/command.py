"""Power from a user command that prints watts (an external meter's CLI, a smart plug's script, ...).

The command is a shell string run once per reading; the first number on its stdout is the watts. It must
finish within ``timeout_s``; a sampler never runs it more often than it takes to run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from accel.core.errors import OptionError, PowerError
from accel.core.plugins import Availability
from accel.power import MeterBase, Reading

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def first_number(text: str) -> float | None:
    """The first decimal number in ``text`` ("4.5", "P=4.5 W", "1e1"), or None."""
    m = _NUMBER.search(text)
    return float(m.group()) if m else None


class CommandMeter(MeterBase):
    """Watts printed by ``command`` (a shell string). Options: ``command``, ``timeout_s``."""

    name = "command"

    def __init__(self, command: str = "", timeout_s: float = 5.0) -> None:
        if not isinstance(command, str) or not command.strip():
            raise OptionError("power.command.command", 'expected a shell command printing watts, e.g. '
                              '"my-meter --watts", got ' + repr(command), "command")
        if not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise OptionError("power.command.timeout_s", f"expected seconds > 0, got {timeout_s!r}", "timeout_s")
        self.command = command
        self.timeout_s = float(timeout_s)
        self.min_interval_s = 0.01

    def _run(self) -> tuple[int, str, str]:
        """(exit code, stdout, stderr). The command runs in its own process group, killed whole on timeout
        (a shell's children would otherwise keep the pipes open)."""
        proc = subprocess.Popen(self.command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise PowerError(f"power command {self.command!r} did not finish within {self.timeout_s:g} s "
                             f"(printed {out.strip()[:200]!r}); raise power.command.timeout_s or fix it") from exc
        return proc.returncode, out, err

    def _watts(self) -> float:
        code, out, err = self._run()
        out = out.strip()
        if code != 0:
            err = (err.strip() or out)[:200]
            raise PowerError(f"power command {self.command!r} exited with {code}: {err!r}")
        watts = first_number(out)
        if watts is None:
            raise PowerError(f"power command {self.command!r} printed no number of watts: {out[:200]!r}")
        return watts

    def probe(self) -> Availability:
        t0 = time.perf_counter()
        try:
            watts = self._watts()
        except PowerError as exc:
            return Availability.no(str(exc))
        self.min_interval_s = max(time.perf_counter() - t0, 0.01)
        return Availability.yes(f"command: {watts:.2f} W now, runs in {self.min_interval_s * 1e3:.0f} ms")

    def read(self) -> Reading:
        t0 = time.monotonic()
        watts = self._watts()
        return Reading((t0 + time.monotonic()) / 2, watts=watts)
