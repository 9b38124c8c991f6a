"""CSV and JSON: one flat row per variant (per run), scalar columns only, empty (null) where not measured.

Columns are the same for every row of a report: the fixed ones below, one per stage statistic for every stage
any variant timed, the e2e p50 (and, when any variant ran live, the frame age p50 and frames dropped), and one
per accuracy figure any variant has. With several runs each row says its run and
carries ratios against the first run's same variant.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from accel.report import figures as f
from accel.results.record import VariantRecord

_USAGE = ("process_cpu_percent", "system_cpu_percent", "rss_mb", "peak_rss_mb")
_POWER = ("gross_w", "net_w", "energy_j", "j_per_frame", "net_j_per_frame", "fps_per_w")
_AGREEMENT = ("reference", "score", "mean_iou", "score_drift", "frames")


def _stages(runs: Sequence[f.Run]) -> list[str]:
    found: dict[str, None] = {}
    for run in runs:
        for r in run.records:
            found.update(dict.fromkeys(r.timings.stages if r.timings is not None else {}))
    return [s for s in (*f.STAGES, "invoke") if s in found] + sorted(set(found) - {*f.STAGES, "invoke"})


def _accuracy_keys(runs: Sequence[f.Run]) -> list[str]:
    keys: set[str] = set()
    for run in runs:
        for r in run.records:
            keys.update(k for k, x in (r.accuracy or {}).items() if _scalar(x))
    first = [k for k in ("AP", "AP50", "AP75", "precision", "recall") if k in keys]
    return first + sorted(keys - set(first))


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, str | int | float | bool)


def _put(row: dict[str, Any], part: Any, names: Sequence[str], column: str = "{}") -> None:
    """Columns ``column.format(name)`` holding ``part``'s attributes ``names``; None without the part."""
    for n in names:
        row[column.format(n)] = None if part is None else getattr(part, n)


def rows(runs: Sequence[f.Run]) -> list[dict[str, Any]]:
    """Every variant of every run as one flat dict; ``None`` where the document has no figure."""
    stages, acc_keys, live = _stages(runs), _accuracy_keys(runs), any(f.live(run) for run in runs)
    firsts = {f.configuration(r): r for r in runs[0].records} if runs else {}
    out = []
    for i, run in enumerate(runs):
        for r in run.records:
            row = _row(run.doc, r, stages, acc_keys, live)
            if len(runs) > 1:
                first = firsts.get(f.configuration(r))
                first = first if first is not None and first.ok else None
                row = {"run": i + 1, "run_label": f.run_label(run.doc), **row,
                       "fps_ratio": f.ratio(f.fps(r), f.fps(first)) if i else None,
                       "inference_p50_ratio": f.ratio(f.inference_p50(r), f.inference_p50(first)) if i else None,
                       "j_per_frame_ratio": f.ratio(f.j_per_frame(r), f.j_per_frame(first)) if i else None}
            out.append(row)
    return out


def _row(doc: dict[str, Any], r: VariantRecord, stages: list[str], acc_keys: list[str],
         live: bool) -> dict[str, Any]:
    options = r.options or {}
    row: dict[str, Any] = {
        "variant": r.variant, "delegate": r.delegate, "kernels": r.kernels, "execution": r.execution,
        "options": ";".join(f"{k}={x}" for k, x in options.items()) or None,
        "status": r.status.value, "error": r.error,
    }
    _put(row, r.run, ("runtime",))
    _put(row, f.placement(r), ("accelerator", "delegated_ops", "total_ops"))
    _put(row, r.timings, ("frames_measured", "wall_s", "fps"))
    _put(row, r.run, ("inference_fps",))
    _put(row, r.startup, ("load_ms", "first_inference_ms"))
    for stage in stages:
        _put(row, f.stage(r, stage), f.STATS, f"{stage}_{{}}_ms")
    row["e2e_p50_ms"] = f.e2e(r).p50
    if live:
        row["frame_age_p50_ms"], row["frames_dropped"] = f.frame_age(r).p50, f.dropped(r)
    usage = f.usage(r)
    _put(row, usage, _USAGE)
    for k in ("mean", "min", "max"):
        row[f"cpu_mhz_{k}"] = f.get(usage.cpu_mhz if usage is not None else None, k)
    thermal = r.charged.thermal
    temp = f.get(thermal, "temp_c") or (usage.temperature_c if usage is not None else None)
    for k in ("start", "end", "max"):
        row[f"temp_c_{k}"] = f.get(temp, k)
    throttled = f.get(thermal, "throttled") or {}
    for k in ("before", "after", "seen", "flagged"):
        row[f"throttled_{k}"] = throttled.get(k) if _scalar(throttled.get(k)) else str(throttled.get(k))
    flags = throttled.get("flags")
    row["throttled_flags"] = ";".join(str(x) for x in flags) if flags else None
    power = r.power
    row["power_meter"] = (power.meter or f.get(doc, "power", "meter")) if power is not None else None
    row["power_estimated"] = f.estimated(doc, r) if power is not None else None
    _put(row, power, _POWER)
    _put(row, r.agreement, _AGREEMENT, "agreement_{}")
    for k in acc_keys:
        row[f"accuracy_{k}"] = f.get(r.accuracy, k)
    return row


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def render_csv(docs: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (RFC 4180, header first, ``\\n`` line ends)."""
    table = rows([f.Run.of(d) for d in docs])
    buf = io.StringIO()
    if not table:
        return ""
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(table[0]))
    for row in table:
        writer.writerow([_cell(x) for x in row.values()])
    return buf.getvalue()


def render_json(docs: Sequence[dict[str, Any]]) -> str:
    """``{"schema": "accel.report", "runs": [...], "variants": [rows]}`` with the same rows as the CSV; each run
    also carries its model's size, parameters and GFLOPs (null, with ``gflops_why``, where not recorded)."""
    runs = [f.Run.of(d) for d in docs]
    return json.dumps({"schema": "accel.report", "schema_version": 1,
                       "runs": [_run_head(i + 1, run) for i, run in enumerate(runs)], "variants": rows(runs)},
                      indent=1) + "\n"


def _run_head(number: int, run: f.Run) -> dict[str, Any]:
    d = run.doc
    return {"run": number, "label": f.run_label(d), "machine": d.get("machine"), "model": f.model_name(d),
            "model_size_bytes": f.get(d, "model", "size_bytes"), "model_params": f.params(d), "gflops": f.gflops(d),
            "gflops_why": f.costs_why(d), "created": d.get("created"), "complete": d.get("complete"),
            "power_meter": f.get(d, "power", "meter"), "power_why": None if f.has_meter(run) else f.power_why(d)}
