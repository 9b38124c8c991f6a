"""Side by side: the inference latency `accel compare` reports for xnnpack vs LiteRT's own
`ai_edge_litert/tools/benchmark_litert_model.py`, same model, same thread count, interleaved rounds.

    python tools/vs_litert_benchmark.py [--model M] [--threads 1,2] [--rounds 3] [--runs 200]

Both are run as a user would run them (two subprocesses, alternating so machine noise hits both). The
ratio printed is accel's mean inference ms / the tool's average ms.
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
        return float(json.loads(out.read_text())["latency"]["avg_ms"])


def accel_ms(model: str, threads: int, runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "accel.json"
        subprocess.run([sys.executable, "-m", "accel", "compare", "--model", model, "--delegates", "xnnpack",
                        "--threads", str(threads), "--frames", str(runs), "--seconds", "0", "--warmup", "5",
                        "--json", str(out)], check=True, capture_output=True)
        variant = json.loads(out.read_text())["variants"][0]
        return float(variant["stages"]["inference"]["mean"])


def compare(model: str, threads: int, rounds: int, runs: int) -> dict[str, float]:
    """Median over interleaved rounds of each side's mean inference ms, and their ratio."""
    ours, theirs = [], []
    for _ in range(rounds):
        theirs.append(litert_tool_ms(model, threads, runs))
        ours.append(accel_ms(model, threads, runs))
    a, b = statistics.median(ours), statistics.median(theirs)
    return {"threads": threads, "accel_ms": a, "litert_tool_ms": b, "ratio": a / b}


def main() -> int:
    from accel.model import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    print(f"model: {args.model}")
    print("threads  accel compare (ms)  benchmark_litert_model (ms)  ratio")
    for t in (int(v) for v in args.threads.split(",")):
        r = compare(args.model, t, args.rounds, args.runs)
        print(f"{t:>7}  {r['accel_ms']:>18.3f}  {r['litert_tool_ms']:>27.3f}  {r['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
