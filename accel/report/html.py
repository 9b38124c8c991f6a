"""HTML: one self-contained page (inline CSS, charts as inline SVG, images as data: URIs, no script, no
external request) with the charts, the tables, the machine and the detections preview of one or more runs."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accel.report import decide, markdown, plots, preview, timeline
from accel.report import figures as f
from accel.results.record import StageStats, Usage

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; } th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; }
.na { color: #8a4b00; background: #fff4e5; padding: 4px 8px; border-left: 3px solid #f0a040; }
.legend, .machine { color: #555; font-size: 13px; }
.strip img { max-width: 100%; display: block; } .strip figcaption { font-size: 12px; color: #555; }
"""
_TITLES = {"fps": "FPS per variant", "stages": "Stage breakdown", "threads": "FPS vs threads",
           "latency": "Latency histograms", "timeline": "Power and temperature over time",
           "pareto": "FPS vs J/frame (Pareto front)", "execution": "Serial vs pipelined",
           "trace": "Stage timeline, pipelined"}


def render_html(docs: Sequence[dict[str, Any]], bases: Sequence[Path | None], target_fps: float | None = None) -> str:
    """The page for ``docs``; ``bases[i]`` is the folder of run i's result.json (for its saved frames);
    the decision for ``target_fps`` (default: the documents' ``[report] target_fps``)."""
    plots.require()
    runs = [f.Run.of(d) for d in docs]
    title = (f"{f.model_name(docs[0])} on {f.host(docs[0])}" if len(docs) == 1
             else f"{len(docs)} models on {f.host(docs[0])}" if markdown.is_sweep(docs)
             else f"{len(docs)} runs compared")
    body = [f"<h1>accel report: {_e(title)}</h1>"]
    sweep = markdown.is_sweep(docs)
    if sweep:  # the article's table first: one row per model
        headers, rows = markdown.sweep_rows(runs)
        body.append(f"<h2>Models</h2>{_table(headers, rows, 1, 1)}<p class=\"legend\">{_e(markdown.SWEEP_LEGEND)}</p>")
    body.append(_decision(runs, decide.target_of(docs, target_fps), sweep))
    if len(runs) > 1:
        body.append(_compare(runs))
    for i, (run, base) in enumerate(zip(runs, bases, strict=True)):
        body.append(_run(run, base, f"r{i + 1}", f"Run {i + 1}: " if len(runs) > 1 else ""))
    if not sweep:
        headers, rows = markdown.model_rows(runs)
        body.append(f"<h2>Models</h2>{_table(headers, rows, len(headers) - len(markdown.MODEL_HEADERS) + 1, 1)}"
                    f"<p class=\"legend\">{_e(markdown.MODEL_LEGEND)}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def _decision(runs: Sequence[f.Run], target: float | None, sweep: bool) -> str:
    """The recommendation and the accuracy-vs-FPS chart (n/a and why when no configuration has an AP), for a
    sweep, a run with a dataset or a target; nothing otherwise."""
    lines = decide.decision_lines(runs, target)
    if not (sweep or lines):
        return ""
    parts = ["<h2>Which configuration?</h2>"]
    if lines:
        parts.append("<ul class=\"decision\">" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>")
    title = "Accuracy vs FPS (and J/frame), every model x variant"
    try:
        fig, _ = plots.chart(runs, "accuracy")
    except plots.NotApplicable as exc:
        parts.append(_na(title, "accuracy", str(exc)))
    else:
        parts.append(_figure(_Chart("accuracy", title), fig, "acc"))
    return "".join(parts)


def _compare(runs: Sequence[f.Run]) -> str:
    headers, rows = markdown.compare_rows(runs)
    labels = "".join(f"<li>{_e(f.run_label(run.doc))}</li>" for run in runs)
    fig, _ = plots.chart(runs, "compare")
    return (f"<h2>Runs compared</h2><ol>{labels}</ol>{_table(headers, rows, 2)}"
            "<p class=\"legend\">(1.15x) = this run's figure / run 1's; variants matched by variant label and "
            f"kernel set.</p>{_figure(_Chart('compare', 'FPS per variant, runs side by side'), fig, 'cmp')}")


def _run(run: f.Run, base: Path | None, prefix: str, heading: str) -> str:
    doc = run.doc
    headers, rows, notes = markdown.summary_rows(run)
    parts = [f"<h2>{_e(heading)}{_e(f.model_name(doc))} on {_e(f.host(doc))}, {_e(str(doc.get('created', '?')))}</h2>"]
    if not doc.get("complete", True):
        parts.append("<p class=\"na\">Incomplete run: the comparison did not finish; shown are the variants "
                     "measured.</p>")
    parts += [f"<p class=\"machine\"><b>Machine:</b> {_e(f.machine_line(run))}</p>",
              _table(headers, rows, markdown.SUMMARY_LEFT),
              f"<p class=\"legend\">{_e(markdown.legend(run))}</p>"]
    if notes:
        parts.append("<ol class=\"legend\">" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ol>")
    piped = bool(timeline.pipelined(run))
    for name in plots.PAGE:
        if name in timeline.PIPELINED and not piped:
            continue  # a serial-only page has no empty pipelined charts
        if name == "trace":
            parts += _traces(run, prefix)
            continue
        try:
            fig, note = plots.chart([run], name)
        except plots.NotApplicable as exc:
            parts.append(_na(_TITLES[name], f"{prefix}-{name}", str(exc)))
            continue
        parts.append(_figure(_Chart(name, _TITLES[name], note, timeline.CAPTIONS.get(name)), fig, prefix))
    parts.append(_detail_table(run))
    parts.append("<h3>Detections preview</h3>")
    strips, note = preview.strips(run, base)
    if note:
        parts.append(f"<p class=\"na\">{_e(note)}</p>")
    for label, data in strips:
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(f"<figure class=\"strip\"><img alt=\"{_e(label)} detections\" src=\"{uri}\">"
                     f"<figcaption>{_e(label)}</figcaption></figure>")
    return "\n".join(parts)


def _traces(run: f.Run, prefix: str) -> list[str]:
    """The stage timeline of each of the first ``TRACES_SHOWN`` pipelined variants that ran."""
    ran = timeline.traced(run)
    if not ran:
        return [_na(_TITLES["trace"], f"{prefix}-trace", "no pipelined variant in this document ran successfully")]
    parts = []
    for i, r in enumerate(ran[:timeline.TRACES_SHOWN], start=1):
        title = f"{_TITLES['trace']}: {f.name(r)}"
        try:
            fig, note = timeline.trace_chart(r)
        except plots.NotApplicable as exc:
            parts.append(_na(title, f"{prefix}-trace-{i}", str(exc)))
            continue
        parts.append(_figure(_Chart(f"trace-{i}", title, note, timeline.CAPTIONS["trace"], "trace"), fig, prefix))
    if len(ran) > timeline.TRACES_SHOWN:
        rest = ", ".join(f.name(r) for r in ran[timeline.TRACES_SHOWN:])
        parts.append(f"<p class=\"legend\">Not drawn, to keep the page small: the timelines of {_e(rest)} "
                     f"(the page draws the first {timeline.TRACES_SHOWN} pipelined variants').</p>")
    return parts


def _na(title: str, ident: str, why: str) -> str:
    return f"<h3>{_e(title)}</h3><p class=\"na\" id=\"{ident}-na\">n/a: {_e(why)}</p>"


@dataclass(frozen=True)
class _Chart:
    """A chart's place on the page: ``name`` (``chart``: the chart it is one of, e.g. "trace" for "trace-2"),
    its title, a note under it and a legend caption."""

    name: str
    title: str
    note: str | None = None
    caption: str | None = None
    chart: str | None = None


def _figure(c: _Chart, fig: Any, prefix: str) -> str:
    """The figure ``fig`` as the chart ``c`` under its title."""
    name, title, note, caption, chart = c.name, c.title, c.note, c.caption, c.chart
    svg = plots.svg(fig, f"{prefix}-{name}")
    cap = f"<figcaption class=\"legend\">{_e(caption)}</figcaption>" if caption else ""
    extra = f"<p class=\"na\">{_e(note)}</p>" if note else ""
    return (f"<h3>{_e(title)}</h3><figure class=\"chart\" id=\"{prefix}-chart-{name}\" "
            f"data-chart=\"{chart or name}\">{svg}{cap}</figure>{extra}")


def _detail_table(run: f.Run) -> str:
    """Every stage's statistics, CPU, memory, placement: the terminal table's figures."""
    live = f.live(run)
    headers = ["variant", "exec", "status", *(f"{s} ms p50 / p99" for s in f.STAGES), "e2e ms p50 / p99",
               *(("frame age ms p50 / p99", "dropped") if live else ()), "FPS", "CPU %", "peak RSS MB", "on accel",
               "temp °C max"]
    rows = []
    for r in run.records:
        if not r.ok:
            rows.append([f.name(r), r.execution, r.status.value, *[""] * (len(headers) - 3)])
            continue
        stats = [f.stage(r, s) or StageStats() for s in f.STAGES] + [f.e2e(r)] + ([f.frame_age(r)] if live else [])
        cells = [f"{f.num(st.p50, '{:.2f}')} / {f.num(st.p99, '{:.2f}')}" for st in stats]
        place, usage = f.placement(r), f.usage(r) or Usage()
        temp = f.get(r.charged.thermal, "temp_c", "max") or f.get(usage.temperature_c, "max")
        on = f"{place.delegated_ops}/{place.total_ops}" if place is not None else "n/a"
        rows.append([f.name(r), r.execution, r.status.value, *cells, *([f.num(f.dropped(r), "{:d}")] if live else []),
                     f.num(f.fps(r)), f.num(usage.process_cpu_percent, "{:.0f}"), f.num(usage.peak_rss_mb, "{:.0f}"),
                     on, f.num(temp)])
    return "<h3>Every variant in detail</h3>" + _table(headers, rows, 3)


def _table(headers: list[str], rows: list[list[str]], left: int, tail: int = 0) -> str:
    """The first ``left`` and the last ``tail`` columns are text, the others figures (right-aligned)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    number = [left <= i < len(headers) - tail for i in range(len(headers))]
    body = "".join("<tr>" + "".join(_td(c, number[i]) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: str, number: bool) -> str:
    cell = re.sub(r"\[\^(\d+)\]", r"<sup>\1</sup>", _e(text))  # Markdown footnote marks -> the notes list
    return f"<td class=\"n\">{cell}</td>" if number else f"<td>{cell}</td>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
