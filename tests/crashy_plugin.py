"""A delegate that kills its own process the way a broken GPU driver does (SIGSEGV / abort), or hangs."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, RunnerBase, Variant
from accel.delegates.null import NullRunner
from accel.model import ModelInfo


class _Runner(RunnerBase):
    runtime = "crashy"

    def __init__(self, model: ModelInfo, how: str, after: int) -> None:
        self.placement = Placement("crashy", 0, model.op_count)
        self._how = how
        self._left = after  # runs that succeed before it crashes (the first inference is one of them)
        self._shape = tuple(model.outputs[0].shape)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._how == "at-exit":  # runs fine; the runtime's teardown crashes the process at exit
            return [np.zeros(self._shape, np.float32)]
        if self._left > 0:
            self._left -= 1
            return [np.zeros(self._shape, np.float32)]
        if self._how == "hang":  # a driver stuck in a wait that never returns
            time.sleep(3600)
        if self._how == "abort":
            sys.stderr.write("free(): invalid size\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGABRT)
        os.kill(os.getpid(), signal.SIGSEGV)
        return []


class CrashyDelegate(DelegateBase):
    name = "crashy"
    summary = "crashes on first run"

    def probe(self) -> Availability:
        return Availability.yes()

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        return [Variant(self.name, (("how", options.get("how", "segv")), ("after", options.get("after", 0))))]

    def open(self, model: ModelInfo, variant: Variant) -> _Runner:
        if variant.option("how") == "at-exit":
            atexit.register(_abort_at_exit)
        return _Runner(model, variant.option("how"), variant.option("after", 0))


def _abort_at_exit() -> None:
    sys.stderr.write("corrupted size vs. prev_size\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGABRT)


class _MarkingRunner(NullRunner):
    runtime = "marking"

    def __init__(self, model: ModelInfo, after: int) -> None:
        super().__init__(model)
        self._left = after

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._left == 0:  # measuring by now: tell the test, which then signals the run
            with open(os.environ["ACCEL_TEST_MARK"], "w") as fh:
                fh.write(str(os.getpid()))
        elif self._left < 0:
            time.sleep(0.2)  # slow enough that the test's signal lands mid-variant
        self._left -= 1
        return super().run(inputs)


class MarkingDelegate(CrashyDelegate):
    """Runs as ``null`` does; after ``after`` runs (the first inference and the warm-up are runs) it writes its
    pid to the file $ACCEL_TEST_MARK and goes on slowly, so a test knows the variant is measuring."""

    name = "marking"
    summary = "marks a file mid-variant"

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        return [Variant(self.name, (("after", options.get("after", 5)),))]

    def open(self, model: ModelInfo, variant: Variant) -> NullRunner:
        return _MarkingRunner(model, variant.option("after", 5))
