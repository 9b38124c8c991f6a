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
