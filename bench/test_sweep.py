"""A model sweep over the real detectors in ../shared/models (skipped when absent): every model on the same
replayed frames, XNNPACK on one thread, each variant in its own worker as `accel compare` runs it. Records
each model's FPS and inference p50, and the sweep's own cost: the time outside the variants' measured windows
(capturing the frames once, reading and checking every model, starting workers, loading models, warm-up,
writing the result and the reports), in seconds and as a share of the whole. Recorded, not asserted."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accel.cli.args import parser
from accel.compare.comparison import compare
from accel.plan.config import load_config
from accel.plan.flags import FLAG_OF, overrides

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


def test_sweep_over_the_shared_models(benchmark: Any, tmp_path: Path, produced: Callable[..., None]) -> None:
    models = sorted(SHARED_MODELS.glob("*.tflite")) if SHARED_MODELS.is_dir() else []
    if not models:
        pytest.skip(f"no .tflite models in {SHARED_MODELS}: the sweep bench runs over the shared detectors")
    argv = ["compare", "--model", str(SHARED_MODELS), "--delegates", "xnnpack", "--threads", "1", "--kernels",
            "numpy", "--frames", "60", "--seconds", "0", "--warmup", "5", "--power-meter", "none"]
    (tmp_path / "accel.toml").write_text("")
    config = load_config(tmp_path / "accel.toml", overrides(parser().parse_args(argv)), env={}, flags=FLAG_OF)
    out: dict[str, Any] = {}

    def sweep() -> None:
        t0 = time.monotonic()
        doc, _ = compare(config, isolate=True, result_path=tmp_path / "sweep" / "result.json")
        out.update(doc=doc, wall=time.monotonic() - t0)

    benchmark.group = "sweep"
    benchmark.pedantic(sweep, rounds=1, iterations=1)
    doc, wall = out["doc"], out["wall"]
    ran = [v for v in doc["variants"] if v.get("status") == "ok" and v.get("window")]
    windows = sum(v["window"]["end"] - v["window"]["start"] for v in ran)
    info = benchmark.extra_info
    info.update({"models": len(doc["models"]), "jobs": len(doc["variants"]), "ran": len(ran), "sweep_s": wall,
                 "windows_s": windows, "overhead_s": wall - windows, "overhead_share": (wall - windows) / wall,
                 "overhead_s_per_job": (wall - windows) / max(len(doc["variants"]), 1)})
    for v in doc["variants"]:
        if v in ran:
            info[f"fps[{v['model']}]"] = v["fps"]
            info[f"inference_p50_ms[{v['model']}]"] = v["stages"]["inference"]["p50"]
        else:
            info[f"status[{v['model']}]"] = f"{v.get('status')}: {v.get('error', '')}"
    produced(info, "sweep_s", "windows_s", "overhead_s", "overhead_share", *(f"fps[{v['model']}]" for v in ran))
    assert ran, "at least one shared model ran"
