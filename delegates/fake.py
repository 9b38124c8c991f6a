"""A scriptable fake delegate for tests: fixed outputs, an optional sleep per run, failures on demand.

Not registered as an entry point; tests add it with ``REGISTRY.register("fake", lambda: FakeDelegate(...))``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accel.core.errors import DelegateError
from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, RunnerBase, Variant
from accel.model import ModelInfo


@dataclass
class FakeScript:
    """What the fake does: ``outputs(inputs) -> outputs``, ``sleep_s`` per run, fail on run number
    ``fail_at`` (0-based, counted over the runner's life) or at open, or be unavailable."""

    outputs: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None
    sleep_s: float = 0.0
    fail_at: int | None = None
    fail_open: str | None = None
    unavailable: str | None = None
    calls: list[int] = field(default_factory=list)


class FakeRunner(RunnerBase):
    runtime = "fake"

    def __init__(self, model: ModelInfo, script: FakeScript) -> None:
        self._model = model
        self._script = script
        self._n = 0
        self.placement = Placement("fake", model.op_count, model.op_count, {}, "scripted")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        s = self._script
        if s.fail_at is not None and self._n >= s.fail_at:
            raise DelegateError(f"fake delegate failed on run {self._n}")
        self._n += 1
        s.calls.append(self._n)
        if s.sleep_s:
            time.sleep(s.sleep_s)
        if s.outputs is not None:
            return s.outputs(inputs)
        return [np.zeros(t.shape or (1,), dtype=t.dtype) for t in self._model.outputs]


class FakeDelegate(DelegateBase):
    name = "fake"
    summary = "scriptable test double"

    def __init__(self, script: FakeScript | None = None) -> None:
        self.script = script or FakeScript()

    def probe(self) -> Availability:
        if self.script.unavailable:
            return Availability.no(self.script.unavailable)
        return Availability.yes("scripted")

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        return [Variant(self.name, tuple(sorted(options.items())))]

    def open(self, model: ModelInfo, variant: Variant) -> FakeRunner:
        if self.script.fail_open:
            raise DelegateError(self.script.fail_open)
        return FakeRunner(model, self.script)
