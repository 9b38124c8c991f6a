"""Side by side: the inference latency `accel compare` reports vs LiteRT's own
`ai_edge_litert/tools/benchmark_litert_model.py`, same model, same thread count, interleaved rounds.

The like-for-like figure is accel's `litert-cpu` delegate (the same CompiledModel API the tool times) on
model-sized frames; the table adds the same delegate inside the 640x480 camera pipeline, and `xnnpack`
(the classic Interpreter, a different runtime path) for reference.

    python tools/vs_litert_benchmark.py [--model M] [--threads 1,2] [--rounds 3] [--runs 200]

Both are run as a user would run them (two subprocesses, alternating so machine noise hits both). The
ratio printed is accel's median inference ms (p50 in its result) / the tool's median ms. Medians, because
the mean of a few hundred runs on a shared machine moves with a handful of outliers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def litert_tool_ms(model: str, threads: int, runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "litert.json"
        subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", "--model", model,
                        "--num_threads", str(threads), "--num_runs", str(runs), "--result_json", str(out)],
                       check=True, capture_output=True)
        return float(json.loads(out.read_text())["latency"]["median_ms"])


def accel_ms(model: str, threads: int, runs: int, pipeline: bool, delegate: str = "litert-cpu") -> float:
    """accel's median inference ms for ``delegate``. ``pipeline=False`` feeds model-sized RGB frames, so
    preprocessing is almost nothing, as in the tool's loop; ``pipeline=True`` is the default 640x480 YUV420
    camera pipeline, whose preprocessing between inferences evicts caches the network then has to refill."""
    from accel.model import load_model
    from accel.results.record import VariantRecord

    h, w = load_model(model).input_size
    source = [] if pipeline else ["--source", f"synthetic:{w}x{h}", "--source-format", "RGB"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "accel.json"
        subprocess.run([sys.executable, "-m", "accel", "compare", "--model", model, "--delegates", delegate,
                        "--threads", str(threads), "--frames", str(runs), "--seconds", "0", "--warmup", "5",
                        *source, "--json", str(out)], check=True, capture_output=True)
        record = VariantRecord.from_json(json.loads(out.read_text())["variants"][0])
    if record.timings is None:
        raise SystemExit(f"accel compare did not measure {delegate}: {record.status.value}: {record.error}")
    # The tool times run_by_name alone (its input is written once, its outputs never read): compare with
    # accel's "invoke" stage, the same call; the README also gives the whole inference stage.
    stages = record.timings.stages
    return float((stages.get("invoke") or stages["inference"]).p50 or 0.0)


def compare(model: str, threads: int, rounds: int, runs: int) -> dict[str, float]:
    """Median over interleaved rounds of each side's median inference ms, and the ratios."""
    ours, pipe, interp, theirs = [], [], [], []
    for _ in range(rounds):
        theirs.append(litert_tool_ms(model, threads, runs))
        ours.append(accel_ms(model, threads, runs, pipeline=False))
        pipe.append(accel_ms(model, threads, runs, pipeline=True))
        interp.append(accel_ms(model, threads, runs, pipeline=False, delegate="xnnpack"))
    a, p, x, b = (statistics.median(v) for v in (ours, pipe, interp, theirs))
    return {"threads": threads, "accel_ms": a, "accel_pipeline_ms": p, "accel_xnnpack_ms": x, "litert_tool_ms": b,
            "ratio": a / b, "pipeline_ratio": p / b, "xnnpack_ratio": x / b}


def main() -> int:
    from accel.model import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    print(f"model: {args.model}")
    print("| threads | benchmark_litert_model | accel litert-cpu, model-sized RGB | ratio | "
          "accel litert-cpu, 640x480 YUV420 pipeline | ratio | accel xnnpack (Interpreter), model-sized RGB | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for t in (int(v) for v in args.threads.split(",")):
        r = compare(args.model, t, args.rounds, args.runs)
        print(f"| {t} | {r['litert_tool_ms']:.3f} ms | {r['accel_ms']:.3f} ms | {r['ratio']:.3f} | "
              f"{r['accel_pipeline_ms']:.3f} ms | {r['pipeline_ratio']:.3f} | {r['accel_xnnpack_ms']:.3f} ms | "
              f"{r['xnnpack_ratio']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
