"""The ``null`` delegate: no inference at all. It returns zero outputs of the right shapes, so a run with
it measures the harness's own overhead (frame handling, pre/post-processing, timing), as MLPerf's null
backend does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from accel.core.errors import OptionError
from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, RunnerBase, Variant
from accel.model import ModelInfo


class NullRunner(RunnerBase):
    runtime = "none"

    def __init__(self, model: ModelInfo) -> None:
        self._outputs = [np.zeros(t.shape or (1,), dtype=t.dtype if t.dtype != "string" else "float32")
                         for t in model.outputs]
        self.placement = Placement("none", 0, model.op_count, {}, "no inference (harness overhead only)")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [o.copy() for o in self._outputs]


class NullDelegate(DelegateBase):
    """Measures the harness: everything but inference."""

    name = "null"
    summary = "no inference: measures the harness's own overhead"

    def probe(self) -> Availability:
        return Availability.yes("always available")

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        if options:
            raise OptionError("delegates.null", f"takes no options, got {', '.join(sorted(options))}",
                              sorted(options)[0])
        return [Variant(self.name)]

    def open(self, model: ModelInfo, variant: Variant) -> NullRunner:
        return NullRunner(model)
