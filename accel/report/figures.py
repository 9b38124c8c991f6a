"""The figures every report format shares, read from a result document (schema 1 or 2).

A document's variants are parsed once into ``VariantRecord``s (``Run.of(doc)``); the views read them by
attribute and the document's own blocks (model, source, machine, power, ...) as the dicts they are.

A figure the document does not hold is ``None`` here and "n/a" (or an empty cell) in a view: nothing is
estimated, filled in or made up. Power and thermal fields exist only in schema 2 documents, and only where
the run had a meter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from accel.delegates import Placement
from accel.results.record import Flow, StageStats, Usage, VariantRecord

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


@dataclass(frozen=True)
class Run:
    """One result document (a run) and its variants, parsed once."""

    doc: dict[str, Any]
    records: list[VariantRecord]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Run:
        return cls(doc, [VariantRecord.from_json(v) for v in doc.get("variants", [])])


def name(r: VariantRecord) -> str:
    """``"xnnpack threads=2 + numpy"``: the variant and its kernel set ("?" for one a document lacks)."""
    return f"{'?' if r.variant is None else r.variant} + {'?' if r.kernels is None else r.kernels}"


def label(r: VariantRecord) -> str:
    """``name(r)``, marked ", pipelined" for a pipelined run: a chart's label, where no exec column tells a
    variant's two runs apart (serial runs keep the bare name, so serial-only charts read as before)."""
    return name(r) + (", pipelined" if r.execution == "pipelined" else "")


def key(r: VariantRecord) -> tuple[str, str]:
    """A variant's label and kernel set (what its serial and pipelined runs share)."""
    return (str(r.variant), str(r.kernels))


def configuration(r: VariantRecord) -> tuple[str, str, str]:
    """What makes two runs' variants the same configuration: label, kernel set and execution."""
    return (str(r.variant), str(r.kernels), str(r.execution))


# -- a variant's parts, None where it has none (a variant that did not run, an older document) ---------------


def fps(r: VariantRecord | None) -> float | None:
    return r.timings.fps if r is not None and r.timings is not None else None


def stage(r: VariantRecord | None, stage_name: str) -> StageStats | None:
    return r.timings.stages.get(stage_name) if r is not None and r.timings is not None else None


def raw_ms(r: VariantRecord) -> dict[str, list[float]]:
    return r.timings.raw_ms if r.timings is not None else {}


def e2e(r: VariantRecord) -> StageStats:
    """From a frame's capture to its detections being ready; empty statistics where not recorded."""
    return r.timings.e2e_ms if r.timings is not None and r.timings.e2e_ms is not None else StageStats()


def frame_age(r: VariantRecord) -> StageStats:
    """Live: from a frame's capture to the start of its preprocessing; empty statistics elsewhere."""
    return r.timings.frame_age_ms if r.timings is not None and r.timings.frame_age_ms is not None else StageStats()


def flow(r: VariantRecord) -> Flow | None:
    return r.outcome.measured.flow if r.outcome.measured is not None else None


def dropped(r: VariantRecord) -> int | None:
    fl = flow(r)
    return fl.frames_dropped if fl is not None else None


def live(run: Run) -> bool:
    """Whether any variant has a frame age (a live run): the views then add age and dropped columns."""
    return any(r.timings is not None and r.timings.frame_age_ms is not None for r in run.records)


def usage(r: VariantRecord) -> Usage | None:
    return r.run.usage if r.run is not None else None


def placement(r: VariantRecord) -> Placement | None:
    return r.run.placement if r.run is not None else None


def j_per_frame(r: VariantRecord | None) -> float | None:
    return r.power.j_per_frame if r is not None and r.power is not None else None


# -- the model ----------------------------------------------------------------------------------------------


def model_name(doc: dict[str, Any]) -> str:
    path = get(doc, "model", "path")
    return PurePath(path).name if path else "?"


def gflops(doc: dict[str, Any]) -> float | None:
    """The model's FLOPs (2 x MACs, ``model.costs.flops``) in billions; None where the document has none."""
    flops = get(doc, "model", "costs", "flops")
    return flops / 1e9 if isinstance(flops, int | float) and not isinstance(flops, bool) else None


def costs_why(doc: dict[str, Any]) -> str | None:
    """Why the document has no model costs (None when it has them): its own reason, or its age."""
    model = doc.get("model") or {}
    if gflops(doc) is not None:
        return None
    if "costs" not in model:
        return "not recorded: this result predates model costs in the result document"
    return str(model.get("costs_why") or "not computed")


def params(doc: dict[str, Any]) -> int | None:
    """The model's parameters: the weights and biases of its multiply-accumulate ops (``model.costs.params``,
    what published tables count), else every constant tensor (``model.params``, documents without costs)."""
    for value in (get(doc, "model", "costs", "params"), get(doc, "model", "params")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def host(doc: dict[str, Any]) -> str:
    """The board when known (a Pi says which), else the CPU; an emulated CPU says so, and that its timings
    are not a Pi's. A result pulled from a remote board (``remote.board``) is named by that board first."""
    machine = doc.get("machine") or {}
    name = str(machine.get("board") or machine.get("cpu") or "?")
    remote = doc.get("remote")
    if isinstance(remote, dict) and remote.get("board"):
        name = f"{remote['board']}: {name}"
    emulated = machine.get("emulated")
    if emulated:
        return f"{name} EMULATED ({emulated.get('cpu')} under {emulated.get('by')}: timings are not representative)"
    return name


def run_label(doc: dict[str, Any]) -> str:
    """``"Raspberry Pi 5 Model B / yolov8n.tflite / 2025-01-02T10:00:00+0000"``."""
    return f"{host(doc)} / {model_name(doc)} / {doc.get('created', '?')}"


# -- power and thermals -------------------------------------------------------------------------------------


def has_meter(run: Run) -> bool:
    """Whether the run measured (or estimated) power at all."""
    return bool(get(run.doc, "power", "meter")) or any(r.power is not None for r in run.records)


def power_why(doc: dict[str, Any]) -> str:
    """Why a document has no power figures, in the document's words when it gives them."""
    why = get(doc, "power", "why")
    if why:
        return str(why)
    if doc.get("schema_version", 1) < 2:
        return "not recorded: result schema 1 predates power measurement"
    return "no meter recorded"


def estimated(doc: dict[str, Any], r: VariantRecord) -> bool:
    return bool((r.power is not None and r.power.estimated) or get(doc, "power", "estimated"))


def watts(value: float | None, mark: bool, fmt: str) -> str:
    """A power figure as text, prefixed "~" when ``mark`` (an estimate, not a measurement)."""
    text = num(value, fmt)
    return f"~{text}" if mark and text != "n/a" else text


def power_cells(r: VariantRecord, mark: bool) -> list[str]:
    """W, J/frame and FPS/W as text, "n/a" without a power record."""
    p = r.power
    if p is None:
        return ["n/a"] * 3
    return [watts(p.gross_w, mark, "{:.2f}"), watts(p.j_per_frame, mark, "{:.3f}"),
            watts(p.fps_per_w, mark, "{:.2f}")]


def throttle(r: VariantRecord) -> str | None:
    """What throttled the variant (``"under-voltage, throttled"``) when its run was flagged, else None."""
    th = get(r.charged.thermal, "throttled")
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


def fps_stages(doc: dict[str, Any], r: VariantRecord) -> list[str]:
    """The stages whose sum is one frame's time in the FPS figure."""
    if r.run is not None and r.run.fps_stages:
        return list(r.run.fps_stages)
    live = not (doc.get("source") or {}).get("replay", True)
    return [s for s in STAGES if live or s != "capture"]


def frame_ms(doc: dict[str, Any], r: VariantRecord) -> np.ndarray:
    """Each measured frame's time in ms (the sum of its FPS stages), empty without ``raw_ms``."""
    raw = raw_ms(r)
    series = [np.asarray(raw[s], dtype=float) for s in fps_stages(doc, r) if raw.get(s)]
    if not series:
        return np.zeros(0)
    n = min(len(s) for s in series)
    return np.sum([s[:n] for s in series], axis=0)


# -- quality ------------------------------------------------------------------------------------------------


def has_ties(doc: Mapping[str, Any]) -> bool:
    """Whether the document's agreement counts detections tied at a score cut (older documents do not)."""
    return any("at_cut" in (v.get("agreement") or {}) for v in doc.get("variants", []))


def has_accuracy(runs: Sequence[Run]) -> bool:
    return any(r.accuracy for run in runs for r in run.records)


def quality(r: VariantRecord, accuracy: bool) -> str:
    """``"0.312 / 0.540"`` (AP / AP50) with a dataset, else the share of detections agreeing with
    cpu-reference."""
    if accuracy:
        acc = r.accuracy or {}
        return f"{num(acc.get('AP'), '{:.3f}')} / {num(acc.get('AP50'), '{:.3f}')}"
    return num(r.agreement.score if r.agreement is not None else None, "{:.0%}")


def quality_header(accuracy: bool) -> str:
    return "AP / AP50" if accuracy else "agreement"


# -- the machine --------------------------------------------------------------------------------------------


def runtimes(run: Run) -> list[str]:
    seen: dict[str, None] = {}
    for r in run.records:
        if r.run is not None and r.run.runtime:
            seen[str(r.run.runtime)] = None
    return list(seen)


def machine_line(run: Run) -> str:
    """Board, CPU, OS, runtimes, libraries and power meter on one line."""
    doc = run.doc
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
             f"runtime {', '.join(runtimes(run)) or 'n/a'}", f"libraries {libs or 'n/a'}", power_text]
    return "; ".join(p for p in parts if p)


# -- several runs -------------------------------------------------------------------------------------------


def matched(runs: Sequence[Run]) -> list[tuple[tuple[str, str, str], list[VariantRecord | None]]]:
    """Variants of several runs lined up by (variant label, kernels, execution), in order of first
    appearance; a run that lacks one has ``None`` in its place."""
    order: dict[tuple[str, str, str], list[VariantRecord | None]] = {}
    for i, run in enumerate(runs):
        for r in run.records:
            order.setdefault(configuration(r), [None] * len(runs))[i] = r
    return list(order.items())


def ratio(value: Any, first: Any) -> float | None:
    """``value / first``, or None where either is missing or the first is zero."""
    if not isinstance(value, int | float) or not isinstance(first, int | float) or not first:
        return None
    return float(value) / float(first)


def inference_p50(r: VariantRecord | None) -> float | None:
    stats = stage(r, "inference")
    return stats.p50 if stats is not None else None


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
