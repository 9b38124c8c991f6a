"""What running each variant in its own process costs: the same variant in-process and in a spawned worker
(frames in shared memory), interleaved rounds, medians. ``overhead`` (isolated / in-process - 1) is
recorded, not asserted; the target is under 2% of inference time for a model of about 5 ms (cpu-reference
on the default model is about 4 ms here), checked across runs with ``tools/bench_compare.py``."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from accel.delegates import Variant
from accel.model import ModelInfo
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.results.record import Timings
from accel.run.pipeline import run_job
from accel.run.worker import run_isolated


def _per_frame_ms(timings: Timings | None) -> float:
    assert timings is not None, "the variant measured its frames"
    return 1e3 * timings.wall_s / timings.frames_measured


def test_isolation_overhead(benchmark: Any, model: ModelInfo, frames: list[Any], produced: Callable[..., None]) -> None:
    variant = Variant("cpu-reference", (("threads", 1),))
    settings = Settings(frames=150, seconds=0.0, warmup=10)

    def rounds() -> dict[str, float]:
        inproc, isolated = [], []
        for _ in range(3):
            inproc.append(_per_frame_ms(run_job(Job(model, variant, "numpy", settings), frames).timings))
            isolated.append(_per_frame_ms(run_isolated(Job(model, variant, "numpy", settings), frames).timings))
        a, b = statistics.median(inproc), statistics.median(isolated)
        return {"in_process_ms_per_frame": a, "isolated_ms_per_frame": b, "overhead": b / a - 1.0}

    benchmark.group = "isolation"
    result = benchmark.pedantic(rounds, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    produced(benchmark.extra_info, "in_process_ms_per_frame", "isolated_ms_per_frame", "overhead")
