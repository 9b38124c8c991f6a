"""A delegate that kills its own process the way a broken GPU driver does (SIGSEGV / abort), or hangs."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from accel.delegates import Placement, Variant
from accel.model import ModelInfo
from accel.plugins import Availability


class _Runner:
    runtime = "crashy"

    def __init__(self, model: ModelInfo, how: str) -> None:
        self.placement = Placement("crashy", 0, model.op_count)
        self._how = how

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._how == "hang":  # a driver stuck in a wait that never returns
            time.sleep(3600)
        if self._how == "abort":
            sys.stderr.write("free(): invalid size\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGABRT)
        os.kill(os.getpid(), signal.SIGSEGV)
        return []

    def close(self) -> None:
        pass


class CrashyDelegate:
    name = "crashy"
    summary = "crashes on first run"

    def probe(self) -> Availability:
        return Availability.yes()

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        return [Variant(self.name, (("how", options.get("how", "segv")),))]

    def open(self, model: ModelInfo, variant: Variant) -> _Runner:
        return _Runner(model, variant.option("how"))
