"""Per-op profiles: the sums of accel.results.profile checked on hand-made events (every figure worked out
by hand below), and LiteRT's own profiler reached through its C API (accel.delegates.litert_profile) on the
default model, in a child process (a fault in the C library must not take pytest down): its outputs are the
ones LiteRT's Python CompiledModel gives on the same input, and the ops it says the builtin kernels ran are,
by node index, the file's own ops there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace as E

import pytest

from accel.model.flatbuffer import Flatbuffer
from accel.results.profile import profile_of

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "accel" / "data" / "default_detector.tflite"


def ev(tag: str, type_: int, us: int, index: int = 0) -> E:
    return E(tag=tag, type=type_, elapsed_us=us, index=index)


def run(invoke_us: int, conv0: int) -> list[E]:
    return [ev("LiteRT::Run[buffer registration]", 1, 5), ev("Invoke", 1, invoke_us),
            ev("CAST", 2, 100, 0), ev("Conv", 8, conv0, 0), ev("Add", 8, 100, 1),
            ev("Conv", 8, 200, 0),  # index 0 again: a second XNNPACK partition
            ev("POST", 2, 200, 5), ev("LiteRT::Run[Buffer sync]", 1, 7)]


def test_the_tables_of_hand_made_events() -> None:
    preparation = [ev("AllocateTensors", 1, 3000), ev("CAST", 2, 999, 0)]  # before the first invoke: dropped
    profile = profile_of(preparation + run(1000, 300) + run(1200, 500))
    assert profile is not None and profile.runs == 2
    # means: CAST 0.1, Conv 0.4 (300, 500), Add 0.1, Conv 0.2, POST 0.2 = 1.0 ms of ops; invoke (1.0 + 1.2) / 2
    assert profile.ops_mean_ms == pytest.approx(1.0) and profile.invoke_mean_ms == pytest.approx(1.1)
    assert profile.coverage == pytest.approx(1.0 / 1.1)
    rows = [(r.op, r.kind, r.node, r.partition, round(r.mean_ms, 6), round(r.p50_ms, 6), round(r.percent, 6),
             round(r.cdf_percent, 6), r.times_called) for r in profile.run_order]
    assert rows == [("CAST", "builtin", 0, None, 0.1, 0.1, 10.0, 10.0, 2),
                    ("Conv", "xnnpack", None, 0, 0.4, 0.4, 40.0, 50.0, 2),
                    ("Add", "xnnpack", None, 0, 0.1, 0.1, 10.0, 60.0, 2),
                    ("Conv", "xnnpack", None, 1, 0.2, 0.2, 20.0, 80.0, 2),
                    ("POST", "builtin", 5, None, 0.2, 0.2, 20.0, 100.0, 2)]
    types = [(t.op, t.count, round(t.avg_ms, 6), round(t.percent, 6), round(t.cdf_percent, 6), t.times_called)
             for t in profile.by_type]
    assert types == [("Conv", 2, 0.6, 60.0, 60.0, 4), ("POST", 1, 0.2, 20.0, 80.0, 2),
                     ("CAST", 1, 0.1, 10.0, 90.0, 2), ("Add", 1, 0.1, 10.0, 100.0, 2)]
    assert [(r.op, r.node) for r in profile.left_to_cpu] == [("CAST", 0), ("POST", 5)]
    top = profile.top(2)  # the slowest first; ties in run order
    assert [(r.op, r.partition, round(r.cdf_percent, 6)) for r in top] == [("Conv", 0, 40.0), ("Conv", 1, 60.0)]
    assert profile_of(preparation) is None


CHILD = """
import json, sys
import numpy as np
from accel.delegates import get_delegate
from accel.delegates.litert_profile import ProfiledModel
from accel.model import load_model
from accel.results.profile import profile_of

model = load_model(sys.argv[1])
tensor = model.inputs[0]
dtype = np.dtype(tensor.dtype)
rng = np.random.default_rng(7)
x = rng.integers(0, 256, tensor.shape).astype(dtype) if dtype.kind in "ui" else \\
    rng.random(tensor.shape).astype(dtype)
delegate = get_delegate("litert-cpu")
variant = delegate.variants({"threads": [1]})[0]
reference = delegate.open(model, variant)
expected = reference.run([x])
profiled = ProfiledModel(model.path, threads=1)
got = [profiled.run([x], expected) for _ in range(5)][-1]
profile = profile_of(profiled.events())
profiled.close()
print(json.dumps({"equal": [bool(np.array_equal(a, b)) for a, b in zip(expected, got)],
                  "profile": profile.to_json()}))
"""


def test_litert_profiler_through_the_c_api_on_the_default_model() -> None:
    pytest.importorskip("ai_edge_litert")
    done = subprocess.run([sys.executable, "-c", CHILD, str(MODEL)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(result["equal"]) and len(result["equal"]) == 4  # what LiteRT's Python API gives, bit for bit
    profile = result["profile"]
    assert profile["runs"] == 5
    ops = Flatbuffer(MODEL.read_bytes()).ops
    left = [(r["node"], r["op"]) for r in profile["left_to_cpu"]]
    assert left and all(ops[node].name == op for node, op in left)  # the file's own op at that node index
    assert {op for _, op in left} == {"CAST", "TFLite_Detection_PostProcess"}  # what XNNPACK does not take
    assert any(r["kind"] == "xnnpack" for r in profile["run_order"])
    assert 0 < profile["coverage"] <= 1.05  # ops are timed inside the invoke; the ratio is recorded raw
