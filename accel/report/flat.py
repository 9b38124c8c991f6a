"""CSV and JSON: one flat row per variant (per run), scalar columns only, empty (null) where not measured.

Columns are the same for every row of a report: the fixed ones below, one per stage statistic for every stage
any variant timed, and one per accuracy figure any variant has. With several runs each row says its run and
carries ratios against the first run's same variant.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from accel.report import figures as f

_USAGE = ("process_cpu_percent", "system_cpu_percent", "rss_mb", "peak_rss_mb")
_POWER = ("gross_w", "net_w", "energy_j", "j_per_frame", "net_j_per_frame", "fps_per_w")
_AGREEMENT = ("reference", "score", "mean_iou", "score_drift", "frames")


def _stages(docs: Sequence[dict[str, Any]]) -> list[str]:
    found: dict[str, None] = {}
    for doc in docs:
        for v in doc.get("variants", []):
            found.update(dict.fromkeys(v.get("stages") or {}))
    return [s for s in (*f.STAGES, "invoke") if s in found] + sorted(set(found) - {*f.STAGES, "invoke"})


def _accuracy_keys(docs: Sequence[dict[str, Any]]) -> list[str]:
    keys: set[str] = set()
    for doc in docs:
        for v in doc.get("variants", []):
            keys.update(k for k, x in (v.get("accuracy") or {}).items() if _scalar(x))
    first = [k for k in ("AP", "AP50", "AP75", "precision", "recall") if k in keys]
    return first + sorted(keys - set(first))


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, str | int | float | bool)


def rows(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every variant of every run as one flat dict; ``None`` where the document has no figure."""
    stages, acc_keys = _stages(docs), _accuracy_keys(docs)
    firsts = {f.key(v): v for v in docs[0].get("variants", [])} if docs else {}
    out = []
    for i, doc in enumerate(docs):
        for v in doc.get("variants", []):
            row = _row(doc, v, stages, acc_keys)
            if len(docs) > 1:
                first = firsts.get(f.key(v))
                first = first if first is not None and f.ok(first) else None
                row = {"run": i + 1, "run_label": f.run_label(doc), **row,
                       "fps_ratio": f.ratio(v.get("fps"), f.get(first, "fps")) if i else None,
                       "inference_p50_ratio": f.ratio(f.inference_p50(v), f.inference_p50(first)) if i else None,
                       "j_per_frame_ratio": f.ratio(f.get(v, "power", "j_per_frame"),
                                                    f.get(first, "power", "j_per_frame")) if i else None}
            out.append(row)
    return out


def _row(doc: dict[str, Any], v: dict[str, Any], stages: list[str], acc_keys: list[str]) -> dict[str, Any]:
    g = f.get
    options = v.get("options") or {}
    row: dict[str, Any] = {
        "variant": v.get("variant"), "delegate": v.get("delegate"), "kernels": v.get("kernels"),
        "options": ";".join(f"{k}={x}" for k, x in options.items()) or None,
        "status": v.get("status"), "error": v.get("error"), "runtime": v.get("runtime"),
        "accelerator": g(v, "placement", "accelerator"), "delegated_ops": g(v, "placement", "delegated_ops"),
        "total_ops": g(v, "placement", "total_ops"), "frames_measured": v.get("frames_measured"),
        "wall_s": v.get("wall_s"), "fps": v.get("fps"), "inference_fps": v.get("inference_fps"),
        "load_ms": v.get("load_ms"), "first_inference_ms": v.get("first_inference_ms"),
    }
    for stage in stages:
        for stat in f.STATS:
            row[f"{stage}_{stat}_ms"] = g(v, "stages", stage, stat)
    for k in _USAGE:
        row[k] = g(v, "usage", k)
    for k in ("mean", "min", "max"):
        row[f"cpu_mhz_{k}"] = g(v, "usage", "cpu_mhz", k)
    temp = g(v, "thermal", "temp_c") or g(v, "usage", "temperature_c")
    for k in ("start", "end", "max"):
        row[f"temp_c_{k}"] = g(temp, k)
    throttled = g(v, "thermal", "throttled") or {}
    for k in ("before", "after", "seen", "flagged"):
        row[f"throttled_{k}"] = throttled.get(k) if _scalar(throttled.get(k)) else str(throttled.get(k))
    flags = throttled.get("flags")
    row["throttled_flags"] = ";".join(str(x) for x in flags) if flags else None
    has_power = bool(v.get("power"))
    row["power_meter"] = g(v, "power", "meter") or (g(doc, "power", "meter") if has_power else None)
    row["power_estimated"] = f.estimated(doc, v) if has_power else None
    for k in _POWER:
        row[k] = g(v, "power", k)
    for k in _AGREEMENT:
        row[f"agreement_{k}"] = g(v, "agreement", k)
    for k in acc_keys:
        row[f"accuracy_{k}"] = g(v, "accuracy", k)
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
    table = rows(docs)
    buf = io.StringIO()
    if not table:
        return ""
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(table[0]))
    for row in table:
        writer.writerow([_cell(x) for x in row.values()])
    return buf.getvalue()


def render_json(docs: Sequence[dict[str, Any]]) -> str:
    """``{"schema": "accel.report", "runs": [...], "variants": [rows]}`` with the same rows as the CSV."""
    runs = [{"run": i + 1, "label": f.run_label(d), "machine": d.get("machine"), "model": f.model_name(d),
             "created": d.get("created"), "complete": d.get("complete"), "power_meter": f.get(d, "power", "meter"),
             "power_why": None if f.has_meter(d) else f.power_why(d)} for i, d in enumerate(docs)]
    return json.dumps({"schema": "accel.report", "schema_version": 1, "runs": runs, "variants": rows(docs)},
                      indent=1) + "\n"
