"""Documents the report tests share: the hand-written schema-2 fixture and variants of it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "result_v2.json"
GOLDEN = HERE / "golden"


def v2() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def v1() -> dict[str, Any]:
    """The fixture as schema 1 wrote it: no clock, power, thermal or window anywhere."""
    doc = v2()
    doc["schema_version"] = 1
    for k in ("clock", "power", "thermal"):
        doc.pop(k)
    for v in doc["variants"]:
        for k in ("power", "thermal", "window", "frame_end"):
            v.pop(k, None)
    return doc


def second_run() -> dict[str, Any]:
    """Another run: a Pi 4, threads=1 twice as fast at 0.8x the energy per frame, threads=2 not run."""
    doc = copy.deepcopy(v2())
    doc["machine"]["board"] = "Raspberry Pi 4 Model B Rev 1.5"
    doc["created"] = "2025-03-02T09:00:00+0100"
    t1 = doc["variants"][0]
    t1["fps"] = 50.0
    t1["stages"]["inference"]["p50"] = 15.25
    t1["power"]["j_per_frame"] = 0.128
    doc["variants"] = [t1, doc["variants"][2]]
    return doc


def write(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


#: A hand-written trace of three frames through three stages (9 spans, ms after the window's start): frame k's
#: preprocess runs as soon as the preprocess thread is free and the queue has room, inference (32 ms) never
#: idles after frame 0, so preprocess and postprocess wait: 15, 96 and 9 ms busy of the 104 ms traced.
TRACE = [[0, "preprocess", 0.0, 5.0], [0, "inference", 5.0, 37.0], [0, "postprocess", 37.0, 40.0],
         [1, "preprocess", 5.0, 10.0], [1, "inference", 37.0, 69.0], [1, "postprocess", 69.0, 72.0],
         [2, "preprocess", 37.0, 42.0], [2, "inference", 69.0, 101.0], [2, "postprocess", 101.0, 104.0]]


def stats(p50: float) -> dict[str, float]:
    return {"mean": p50, "p50": p50, "p90": p50, "p99": p50 + 2.0, "stdev": 1.0, "min": p50 - 1.0, "max": p50 + 2.0}


def pipelined() -> dict[str, Any]:
    """The fixture plus xnnpack threads=1 run pipelined (second, after its serial run): 60 frames in 2.0 s =
    30.0 FPS against a bound of 31.25 FPS (1000 / 32 ms mean inference), e2e p50 70 ms, and ``TRACE``."""
    doc = v2()
    piped = copy.deepcopy(doc["variants"][0])
    piped.update(execution="pipelined", frames_measured=60, fps=30.0, e2e_ms=stats(70.0), queue_depth=2,
                 inference_streams=1, bound_fps=31.25, bound_stage="inference", trace=copy.deepcopy(TRACE))
    doc["variants"].insert(1, piped)
    return doc


def live() -> dict[str, Any]:
    """``pipelined()`` from a live source: frame age p50 12.5, 40 and 8.25 ms and 3, 7 and 0 frames dropped
    for threads=1 serial, threads=1 pipelined and threads=2 (the failed gpu-delegate has neither)."""
    doc = pipelined()
    doc["source"].update(replay=False, live=True)
    for v, age, dropped in zip(doc["variants"][:3], (12.5, 40.0, 8.25), (3, 7, 0), strict=True):
        v.update(frame_age_ms=stats(age), frames_dropped=dropped)
    return doc


# (model, variant, FPS, AP or None, J/frame): the hand-made sweep. At 10 FPS: a's threads=2 (AP 0.30, 12 FPS)
# is the most accurate of those at >= 10 (b's 0.40 runs at 8); at 5: b; at 40: none (c's 30 is the fastest).
# The front (no other both at least as accurate and at least as fast): b 0.40@8, a/2 0.30@12, c 0.25@30;
# a/1 (0.30@10) is beaten by a/2 and c/1 (0.20@9) by a/2 as well.
SWEEP = [("a.tflite", "xnnpack threads=1", 10.0, 0.30, 0.50), ("a.tflite", "xnnpack threads=2", 12.0, 0.30, 0.45),
         ("b.tflite", "xnnpack threads=2", 8.0, 0.40, 0.70), ("c.tflite", "xnnpack threads=1", 9.0, 0.20, 0.60),
         ("c.tflite", "xnnpack threads=2", 30.0, 0.25, 0.20)]


def sweep(with_ap: bool = True, host: str | None = None) -> dict[str, Any]:
    """``SWEEP`` as a schema-3 document: the fixture's first variant for each row, its FPS, J/frame and (with
    ``with_ap``) accuracy; ``host`` names the board."""
    doc = v2()
    base = doc["variants"][0]
    doc["schema_version"] = 3
    names = dict.fromkeys(m for m, *_ in SWEEP)
    doc["models"] = [{**doc["model"], "name": m, "path": f"/home/pi/models/{m}"} for m in names]
    doc["model"] = doc["models"][0]
    doc["variants"] = []
    for model, variant, fps, ap, joules in SWEEP:
        v = copy.deepcopy(base)
        v.update(model=model, variant=variant, fps=fps)
        v["power"]["j_per_frame"] = joules
        if with_ap:
            v["accuracy"] = {"AP": ap, "AP50": ap + 0.2, "precision": 0.8, "recall": ap + 0.3}
        doc["variants"].append(v)
    if host is not None:
        doc["machine"]["board"] = host
    return doc
