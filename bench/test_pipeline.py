"""Pipelined against serial execution, side by side in one run: ``fps / bound_fps`` (how close the pipeline
gets to what its slowest stage allows) and ``speedup`` (pipelined FPS / serial FPS), per delegate variant.
Recorded, not asserted; ``tools/bench_compare.py`` compares runs. The model is YOLO11n int8 from
../shared/models when present (inference dominates, as on a Pi), else the default detector."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accel.compare.comparison import compare
from accel.plan.config import load_config

SHARED_YOLO = Path(__file__).resolve().parents[2] / "shared" / "models" / "yolo11n_full_integer_quant_416.tflite"


@pytest.mark.parametrize("delegate", ["xnnpack", "null"])
def test_pipelined_vs_serial(benchmark: Any, delegate: str, tmp_path: Path, produced: Callable[..., None]) -> None:
    model = str(SHARED_YOLO) if SHARED_YOLO.is_file() else ""
    cfg = load_config(None, {"model.path": model, "delegates": [delegate], "pipeline.kernels": ["opencv"],
                             "pipeline.execution": ["serial", "pipelined"], "pipeline.frames": 200,
                             "pipeline.seconds": 0.0, "pipeline.warmup": 10, "power.meter": "none",
                             "output.formats": [], "delegates.xnnpack.threads": [1]}, env={})

    def run() -> dict[str, Any]:
        doc, _ = compare(cfg, result_path=tmp_path / "result.json")
        return {v["execution"]: v for v in doc["variants"]}

    benchmark.group = "pipelined vs serial"
    runs = benchmark.pedantic(run, rounds=1, iterations=1)
    serial, pipelined = runs["serial"], runs["pipelined"]
    benchmark.extra_info.update({
        "model": Path(model).name if model else "default_detector.tflite", "variant": pipelined["variant"],
        "serial_fps": serial["fps"], "pipelined_fps": pipelined["fps"], "bound_fps": pipelined["bound_fps"],
        "bound_stage": pipelined["bound_stage"], "fps_over_bound": pipelined["fps"] / pipelined["bound_fps"],
        "speedup": pipelined["fps"] / serial["fps"], "pipelined_e2e_p50_ms": pipelined["e2e_ms"]["p50"],
        "serial_e2e_p50_ms": serial["e2e_ms"]["p50"], "cores_busy": pipelined["usage"]["cpu_cores_busy"]})
    produced(benchmark.extra_info, "serial_fps", "pipelined_fps", "bound_fps", "fps_over_bound", "speedup")
