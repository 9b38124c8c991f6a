"""Markdown: a paste-ready table per run (the columns of a hand-made benchmark table), the machine it ran on,
for several runs a side-by-side table with ratios against the first run, and last the seed article's model table
(name, size, parameters, AP, inference s, GFLOPs: one row per run's model).

The row builders here (``summary_rows``, ``compare_rows``, ``model_rows``) also feed the HTML and terminal views.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from accel.report import figures as f
from accel.report.decide import decision_lines, target_of
from accel.results.record import VariantRecord

Rows = list[list[str]]
#: The summary table's text columns (model, variant, exec), left-aligned; the figures follow.
SUMMARY_LEFT = 3


def summary_rows(run: f.Run) -> tuple[list[str], Rows, list[str]]:
    """Headers, one row per variant, and footnotes (errors of variants that did not run, throttling)."""
    doc = run.doc
    accuracy = f.has_accuracy([run])
    fixed = [f.model_name(doc), *_model_cells(doc)]
    live = f.live(run)
    headers = ["model", "variant", "exec", "size MB", "params M", "GFLOPs", f.quality_header(accuracy),
               "inference ms (p50)", "e2e ms (p50)", *(LIVE_HEADERS if live else ()), "FPS", "W", "J/frame",
               "FPS/W"]
    rows: Rows = []
    notes: list[str] = []
    for r in run.records:
        label = f.name(r)
        if not r.ok:
            notes.append(f"{label}: {r.status.value}: {r.error or 'no error recorded'}")
            rows.append([fixed[0], label, r.execution, *fixed[1:], f"{r.status.value}[^{len(notes)}]",
                         *[""] * (len(headers) - 7)])
            continue
        throttled = f.throttle(r)
        if throttled:
            notes.append(f"{label}: {throttled} during the run; its figures may be low")
            label += f" (throttled[^{len(notes)}])"
        rows.append([fixed[0], label, r.execution, *fixed[1:], f.quality(r, accuracy),
                     f.num(f.inference_p50(r), "{:.2f}"), f.num(f.e2e(r).p50, "{:.2f}"),
                     *(live_cells(r) if live else ()), f.num(f.fps(r), "{:.1f}"),
                     *f.power_cells(r, f.estimated(doc, r))])
    return headers, rows, notes


#: The columns a live run adds after e2e, and their cells.
LIVE_HEADERS = ("frame age ms (p50)", "dropped")


def live_cells(r: VariantRecord) -> list[str]:
    return [f.num(f.frame_age(r).p50, "{:.2f}"), f.num(f.dropped(r), "{:d}")]


def exec_legend(run: f.Run) -> str:
    """What the exec, e2e and (live) frame age and dropped columns mean."""
    text = ("exec = serial (one frame through every stage at a time) or pipelined (the stages as concurrent "
            "threads joined by queues). e2e = from a frame's capture to its detections being ready (replay: from "
            "when the loop took the frame)")
    if f.live(run):
        text += ("; frame age = from a frame's capture to the start of its preprocessing; dropped = frames the "
                 "source delivered that the pipeline never took")
    return text


def legend(run: f.Run) -> str:
    """What the columns mean, in one paragraph."""
    doc = run.doc
    replay = (doc.get("source") or {}).get("replay", True)
    fps = ("FPS = frames / wall time of " + ("preprocess + inference + postprocess on replayed frames"
                                               if replay else "capture + preprocess + inference + postprocess (live)"))
    if f.has_accuracy([run]):
        quality = "AP / AP50 = COCO average precision at IoU 0.5:0.95 / 0.5"
    elif f.get(doc, "model", "accuracy_na"):
        quality = f"accuracy on the dataset: n/a ({f.get(doc, 'model', 'accuracy_na')}); agreement as without one"
    else:
        ties = f.has_ties(doc)
        quality = ("agreement = share of detections matching cpu-reference's (same class, IoU >= 0.5"
                   + ("; ties at a score cut, `at_cut`, not counted)" if ties else ")"))
    if f.has_meter(run):
        meter = f.get(doc, "power", "meter")
        power = (f"W = mean power in the measured window ({meter}, {f.idle_line(doc)}); J/frame = energy / "
                 "frames; FPS/W = FPS / W")
        if any(f.estimated(doc, r) for r in run.records):
            power += "; ~ = estimated from CPU load, not measured"
    else:
        power = f"power: n/a ({f.power_why(doc)})"
    return f"{fps}. {exec_legend(run)}. {quality}. {power}. {gflops_legend(doc)}."


def gflops_legend(doc: dict[str, Any]) -> str:
    why = f.costs_why(doc)
    return "GFLOPs = 2 x MACs" if why is None else f"GFLOPs: n/a ({why})"


def _model_cells(doc: dict[str, Any]) -> list[str]:
    """size MB, params M, GFLOPs: the figures of the model itself."""
    return [f.num(_scaled(f.get(doc, "model", "size_bytes"), 1e6), "{:.2f}"),
            f.num(_scaled(f.params(doc), 1e6), "{:.2f}"), f.num(f.gflops(doc), "{:.2f}")]


#: The seed article's columns; the AP and inference cells are those of the variant the last column names.
MODEL_HEADERS = ["name", "size MB", "params M", "AP", "AP50", "inference s", "GFLOPs", "fastest variant"]


def model_rows(runs: Sequence[f.Run]) -> tuple[list[str], Rows]:
    """The seed article's table: one row per run (a run measures one model) with the AP and inference time of
    its fastest variant, the one with the lowest inference p50 (the null delegate runs no model: never it);
    a "run" column first when there are several runs."""
    rows: Rows = []
    for i, run in enumerate(runs):
        size, params, gflops = _model_cells(run.doc)
        best = fastest(run)
        with_dataset = bool(run.doc.get("dataset")) or f.has_accuracy([run])
        acc = (best.accuracy if best is not None else None) or {}
        ap = [_percent(acc.get(k)) if with_dataset else "n/a (no dataset)" for k in ("AP", "AP50")]
        inference = _seconds(f.inference_p50(best))
        variant = "none ran" if best is None else f"{f.name(best)}, {best.execution}" + (
            " (throttled: its figures may be low)" if f.throttle(best) else "")
        rows.append([*([str(i + 1)] if len(runs) > 1 else []), f.model_name(run.doc), size, params, *ap, inference,
                     gflops, variant])
    return (["run", *MODEL_HEADERS] if len(runs) > 1 else list(MODEL_HEADERS)), rows


def fastest(run: f.Run) -> VariantRecord | None:
    """The variant that ran the model with the lowest inference p50 (the first of equals), None if none ran."""
    ran = [r for r in run.records if r.ok and r.delegate != "null" and f.inference_p50(r) is not None]
    return min(ran, key=lambda r: f.inference_p50(r) or 0.0) if ran else None


MODEL_LEGEND = ("One row per run's model; its AP and inference time are those of its fastest variant (lowest "
                "inference p50; the null delegate, which runs no model, excluded), named in the last column. size MB "
                "= file size / 1e6; params M = weights and biases of the multiply-accumulate ops / 1e6 (every "
                "constant tensor, for a result without model costs); AP, AP50 = COCO average precision at IoU "
                "0.5:0.95 / 0.5 in %, on the run's --dataset; inference s = the inference ms (p50) above in seconds "
                "(the runtime call with its input and output copies); GFLOPs = 2 x MACs / 1e9.")


def is_sweep(docs: Sequence[dict[str, Any]]) -> bool:
    """Whether ``docs`` are the models of one sweep document (``results.document.per_model``'s parts)."""
    return len(docs) > 1 and all(d.get("sweep") for d in docs)


def sweep_rows(runs: Sequence[f.Run]) -> tuple[list[str], Rows]:
    """The article's table, measured: one row per model of a sweep with its size, parameters, GFLOPs, AP and
    AP50 (with a dataset), its inference ms p50 under every configuration (a column each), the FPS and
    J/frame of its fastest variant, and whether it ran (or why not)."""
    configs = [k for k, _ in f.matched(runs)]
    with_dataset = any(bool(run.doc.get("dataset")) for run in runs) or f.has_accuracy(runs)
    headers = ["model", "size MB", "params M", "GFLOPs", *(ACCURACY_COLUMNS if with_dataset else ()),
               *(f"{v} + {k}" + (f", {e}" if e != "serial" else "") + " ms" for v, k, e in configs),
               "FPS (fastest)", "J/frame (fastest)", "status"]
    rows: Rows = []
    for run in runs:
        by = {f.configuration(r): r for r in run.records}
        best = fastest(run)
        acc = (best.accuracy if best is not None else None) or {}
        cells = [_seconds_ms(by.get(k)) for k in configs]
        failed = [r for r in run.records if not r.ok]
        status = "ran" if best is not None else (f"refused: {failed[0].error}" if failed else "none ran")
        if best is not None and failed:
            status = f"ran; {len(failed)} not: " + "; ".join(f"{f.name(r)}: {r.status.value}" for r in failed[:3])
        floor = f.get(run.doc, "config", "accuracy", "min_agreement")
        below = [r for r in run.records if r.ok and r.agreement is not None and r.agreement.score is not None
                 and isinstance(floor, int | float) and r.agreement.score < floor]
        if best is not None and below:
            status += "; accuracy check failed: " + "; ".join(
                f"{f.name(r)} agrees {r.agreement.score:.2f} with {r.agreement.reference} (< {floor:g})"
                for r in below[:3] if r.agreement is not None)
        if best is not None and f.get(run.doc, "model", "accuracy_na"):
            status += f"; accuracy n/a: {f.get(run.doc, 'model', 'accuracy_na')}"
        size, params, gflops = _model_cells(run.doc)
        rows.append([f.model_name(run.doc), size, params, gflops,
                     *((_percent(acc.get(k)) for k in ACCURACY_COLUMNS) if with_dataset else ()), *cells,
                     f.num(f.fps(best), "{:.1f}") if best is not None else "n/a",
                     f.num(f.j_per_frame(best), "{:.3f}") if best is not None else "n/a", status])
    return headers, rows


#: The accuracy a sweep's models table shows with a dataset (the fastest variant's, in %).
ACCURACY_COLUMNS = ("AP", "AP50", "precision", "recall")


def _seconds_ms(r: VariantRecord | None) -> str:
    if r is None:
        return "not run"
    return f.num(f.inference_p50(r), "{:.2f}") if r.ok else r.status.value


SWEEP_LEGEND = ("One row per model of the sweep, measured on the same frames: size MB = file size / 1e6; params M "
                "= weights and biases of the multiply-accumulate ops / 1e6; GFLOPs = 2 x MACs / 1e9; AP, AP50 = "
                "COCO average precision (IoU 0.5:0.95 / 0.5, %) of the fastest variant, precision and recall (%) at "
                "its score threshold and IoU 0.5, with --dataset; a column "
                "per configuration: its inference ms (p50); FPS and J/frame of the fastest variant (lowest "
                "inference p50; null excluded); status: ran, ran with the variants that did not, ran but the "
                "accuracy check failed (a variant's agreement with the model's cpu-reference under [accuracy] "
                "min_agreement), or refused, with why.")


def _percent(value: Any) -> str:
    return f.num(value * 100 if isinstance(value, int | float) and not isinstance(value, bool) else None, "{:.1f}")


def _seconds(ms: float | None) -> str:
    """A figure of the ms tables (to 0.01 ms) in seconds, trailing zeros dropped: 18.25 ms -> 0.01825."""
    if ms is None:
        return "n/a"
    return format((Decimal(f"{ms:.2f}") / 1000).normalize(), "f")


def compare_rows(runs: Sequence[f.Run]) -> tuple[list[str], Rows]:
    """One row per (variant, run) for several runs; "(1.15x)" = this run's value / the first run's."""
    accuracy = f.has_accuracy(runs)
    headers = ["variant", "run", "inference ms (p50)", "FPS", "W", "J/frame", f.quality_header(accuracy)]
    rows: Rows = []
    for k, per_run in f.matched(runs):
        first = per_run[0]
        for i, r in enumerate(per_run):
            label = (f"{k[0]} + {k[1]}" + (f", {k[2]}" if k[2] != "serial" else "")) if i == 0 else ""
            if r is None:
                rows.append([label, str(i + 1), "not run", "", "", "", ""])
                continue
            if not r.ok:
                rows.append([label, str(i + 1), r.status.value, "", "", "", ""])
                continue
            mark = f.estimated(runs[i].doc, r)
            good = first if first is not None and first.ok and i > 0 else None
            rows.append([
                label, str(i + 1),
                _with_ratio(f.inference_p50(r), f.inference_p50(good), "{:.2f}"),
                _with_ratio(f.fps(r), f.fps(good), "{:.1f}"),
                f.power_cells(r, mark)[0],
                _with_ratio(f.j_per_frame(r), f.j_per_frame(good), "{:.3f}", "~" if mark else ""),
                f.quality(r, accuracy),
            ])
    return headers, rows


def render_markdown(docs: Sequence[dict[str, Any]], target_fps: float | None = None) -> str:
    """The Markdown report of one run, or of several side by side followed by each run's own table; the
    decision (``accel.report.decide``) for ``target_fps``, else the documents' ``[report] target_fps``."""
    runs = [f.Run.of(d) for d in docs]
    parts: list[str] = []
    sweep = is_sweep(docs)
    if sweep:  # the article's table first: one row per model
        headers, rows = sweep_rows(runs)
        parts += ["## Models", "", _table(headers, rows, left=1, tail=1), "", SWEEP_LEGEND, ""]
    decision = decision_lines(runs, target_of(docs, target_fps))
    if decision:
        parts += ["## Which configuration?", "", *(f"- {_cell(line)}" for line in decision), ""]
    if len(docs) > 1:
        parts.append("## Runs compared\n")
        parts.extend(f"{i + 1}. {_cell(f.run_label(d))}" for i, d in enumerate(docs))
        headers, rows = compare_rows(runs)
        parts += ["", _table(headers, rows, left=2), "",
                  "(1.15x) = this run's figure / run 1's. Variants are matched by variant label and kernel set.", ""]
    for i, run in enumerate(runs):
        doc = run.doc
        title = f"{f.model_name(doc)} on {f.host(doc)}, {doc.get('created', '?')}"
        if len(docs) > 1:
            title = f"Run {i + 1}: {title}"
        headers, rows, notes = summary_rows(run)
        parts += [f"## {_cell(title)}", "", _table(headers, rows, left=SUMMARY_LEFT), "",
                  f"**Machine:** {_cell(f.machine_line(run))}", "", legend(run)]
        if not doc.get("complete", True):
            parts += ["", "**Incomplete run:** the comparison did not finish; the variants above are those measured."]
        if notes:
            parts.append("")
            parts += [f"[^{n + 1}]: {_cell(text)}" for n, text in enumerate(notes)]
        parts.append("")
    if not sweep:
        headers, rows = model_rows(runs)
        parts += ["## Models", "", _table(headers, rows, left=len(headers) - len(MODEL_HEADERS) + 1, tail=1), "",
                  MODEL_LEGEND, ""]
    return "\n".join(parts)


def _with_ratio(value: Any, first: Any, fmt: str, prefix: str = "") -> str:
    text = f.num(value, fmt)
    if text == "n/a":
        return text
    r = f.ratio(value, first)
    return f"{prefix}{text}" + (f" ({r:.2f}x)" if r is not None else "")


def _scaled(value: Any, by: float) -> float | None:
    return value / by if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: Rows, left: int, tail: int = 0) -> str:
    """A GitHub table; the first ``left`` and the last ``tail`` columns left-aligned, the figures right-aligned."""
    text = [i < left or i >= len(headers) - tail for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(":---" if t else "---:" for t in text) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
