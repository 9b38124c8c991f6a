"""The figures every report format shares, read from a result document (schema 1 or 2).

A figure the document does not hold is ``None`` here and "n/a" (or an empty cell) in a view: nothing is
estimated, filled in or made up. Power and thermal fields exist only in schema 2 documents, and only where
the run had a meter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

#: The pipeline stages a frame goes through, in order.
STAGES = ("capture", "preprocess", "inference", "postprocess")
STATS = ("mean", "p50", "p90", "p99", "stdev", "min", "max")


def get(obj: Any, *keys: str) -> Any:
    """``obj[k0][k1]...`` or ``None`` where any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def num(value: Any, fmt: str = "{:.1f}", na: str = "n/a") -> str:
    """``value`` formatted, or ``na`` when it was not measured."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return na
    return fmt.format(value)


def ok(v: dict[str, Any]) -> bool:
    return v.get("status") == "ok"


def name(v: dict[str, Any]) -> str:
    """``"xnnpack threads=2 + numpy"``: the variant and its kernel set."""
    return f"{v.get('variant', '?')} + {v.get('kernels', '?')}"


def key(v: dict[str, Any]) -> tuple[str, str]:
    """What makes two runs' variants the same configuration: the variant label and the kernel set."""
    return (str(v.get("variant")), str(v.get("kernels")))


def model_name(doc: dict[str, Any]) -> str:
    path = get(doc, "model", "path")
    return PurePath(path).name if path else "?"


def host(doc: dict[str, Any]) -> str:
    """The board when known (a Pi says which), else the CPU."""
    machine = doc.get("machine") or {}
    return str(machine.get("board") or machine.get("cpu") or "?")


def run_label(doc: dict[str, Any]) -> str:
    """``"Raspberry Pi 5 Model B / yolov8n.tflite / 2025-01-02T10:00:00+0000"``."""
    return f"{host(doc)} / {model_name(doc)} / {doc.get('created', '?')}"


# -- power and thermals -------------------------------------------------------------------------------------


def has_meter(doc: dict[str, Any]) -> bool:
    """Whether the run measured (or estimated) power at all."""
    return bool(get(doc, "power", "meter")) or any(v.get("power") for v in doc.get("variants", []))


def power_why(doc: dict[str, Any]) -> str:
    """Why a document has no power figures, in the document's words when it gives them."""
    why = get(doc, "power", "why")
    if why:
        return str(why)
    if doc.get("schema_version", 1) < 2:
        return "not recorded: result schema 1 predates power measurement"
    return "no meter recorded"


def estimated(doc: dict[str, Any], v: dict[str, Any]) -> bool:
    return bool(get(v, "power", "estimated") or get(doc, "power", "estimated"))


def power(v: dict[str, Any]) -> dict[str, Any]:
    """The variant's power record (empty without one)."""
    return v.get("power") or {}


def watts(v: dict[str, Any], mark: bool, fmt: str, field: str) -> str:
    """A power figure as text, prefixed "~" when ``mark`` (an estimate, not a measurement)."""
    text = num(power(v).get(field), fmt)
    return f"~{text}" if mark and text != "n/a" else text


def throttle(v: dict[str, Any]) -> str | None:
    """What throttled the variant (``"under-voltage, throttled"``) when its run was flagged, else None."""
    th = get(v, "thermal", "throttled")
    if not isinstance(th, dict) or not th.get("flagged"):
        return None
    flags = th.get("flags") or []
    return ", ".join(str(f) for f in flags) if flags else "throttled"


def idle_line(doc: dict[str, Any]) -> str:
    idle = get(doc, "power", "idle") or {}
    if idle.get("watts") is None:
        return "idle baseline n/a"
    return f"idle {idle['watts']:.2f} W over {num(idle.get('seconds'), '{:.0f}')} s"


# -- latency ------------------------------------------------------------------------------------------------


def fps_stages(doc: dict[str, Any], v: dict[str, Any]) -> list[str]:
    """The stages whose sum is one frame's time in the FPS figure."""
    if v.get("fps_stages"):
        return list(v["fps_stages"])
    live = not (doc.get("source") or {}).get("replay", True)
    return [s for s in STAGES if live or s != "capture"]


def frame_ms(doc: dict[str, Any], v: dict[str, Any]) -> np.ndarray:
    """Each measured frame's time in ms (the sum of its FPS stages), empty without ``raw_ms``."""
    raw = v.get("raw_ms") or {}
    series = [np.asarray(raw[s], dtype=float) for s in fps_stages(doc, v) if raw.get(s)]
    if not series:
        return np.zeros(0)
    n = min(len(s) for s in series)
    return np.sum([s[:n] for s in series], axis=0)


# -- quality ------------------------------------------------------------------------------------------------


def has_accuracy(docs: Sequence[dict[str, Any]]) -> bool:
    return any(v.get("accuracy") for d in docs for v in d.get("variants", []))


def quality(v: dict[str, Any], accuracy: bool) -> str:
    """``"0.312 / 0.540"`` (AP / AP50) with a dataset, else the share of detections agreeing with
    cpu-reference."""
    if accuracy:
        acc = v.get("accuracy") or {}
        return f"{num(acc.get('AP'), '{:.3f}')} / {num(acc.get('AP50'), '{:.3f}')}"
    return num(get(v, "agreement", "score"), "{:.0%}")


def quality_header(accuracy: bool) -> str:
    return "AP / AP50" if accuracy else "agreement"


# -- the machine --------------------------------------------------------------------------------------------


def runtimes(doc: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for v in doc.get("variants", []):
        if v.get("runtime"):
            seen[str(v["runtime"])] = None
    return list(seen)


def machine_line(doc: dict[str, Any]) -> str:
    """Board, CPU, OS, runtimes, libraries and power meter on one line."""
    m = doc.get("machine") or {}
    cpu = ", ".join(x for x in (
        str(m["cpu"]) if m.get("cpu") and m.get("board") else "",
        str(m.get("arch") or ""),
        f"{m['cores']} cores" if m.get("cores") else "",
        f"{m['memory_gb']} GB" if m.get("memory_gb") else "",
        f"governor {m['governor']}" if m.get("governor") else "",
    ) if x)
    system = ", ".join(x for x in (str(m.get("os") or ""), f"kernel {m['kernel']}" if m.get("kernel") else "",
                                   f"Python {m['python']}" if m.get("python") else "") if x)
    libs = ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items())
    meter = get(doc, "power", "meter")
    if meter:
        kind = "estimated by" if get(doc, "power", "estimated") else "meter"
        power_text = f"power: {kind} {meter}, {idle_line(doc)}"
    else:
        power_text = f"power: n/a ({power_why(doc)})"
    parts = [f"{host(doc)} ({cpu})" if cpu else host(doc), system,
             f"runtime {', '.join(runtimes(doc)) or 'n/a'}", f"libraries {libs or 'n/a'}", power_text]
    return "; ".join(p for p in parts if p)


# -- several runs -------------------------------------------------------------------------------------------


def matched(docs: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, str], list[dict[str, Any] | None]]]:
    """Variants of several runs lined up by (variant label, kernels), in order of first appearance; a run
    that lacks one has ``None`` in its place."""
    order: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    for i, doc in enumerate(docs):
        for v in doc.get("variants", []):
            order.setdefault(key(v), [None] * len(docs))[i] = v
    return list(order.items())


def ratio(value: Any, first: Any) -> float | None:
    """``value / first``, or None where either is missing or the first is zero."""
    if not isinstance(value, int | float) or not isinstance(first, int | float) or not first:
        return None
    return float(value) / float(first)


def inference_p50(v: dict[str, Any] | None) -> Any:
    return get(v, "stages", "inference", "p50")


def pareto(points: Sequence[tuple[str, float, float]]) -> tuple[list[str], list[str]]:
    """Split ``(name, fps, j_per_frame)`` points into the front and the dominated: a configuration is never
    worth using when another one is at least as fast for at most as much energy per frame, and better in
    one of the two."""
    front: list[str] = []
    dominated: list[str] = []
    for n, fps, j in points:
        beaten = any(o_fps >= fps and o_j <= j and (o_fps > fps or o_j < j) for _, o_fps, o_j in points)
        (dominated if beaten else front).append(n)
    return front, dominated
