"""Charts of pipelined runs: serial vs pipelined FPS per variant, and a Gantt timeline of the first frames'
stage spans (a pipelined record's ``trace``).

Only documents with pipelined variants have them: for one without, ``plots.chart`` raises ``NotApplicable``
and the HTML page leaves them out altogether, so serial-only pages are drawn as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from accel.report import figures as f
from accel.report.canvas import NotApplicable, colour, new_figure  # one look for every chart of the page
from accel.results.record import VariantRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The charts only a document with pipelined variants has.
PIPELINED = ("execution", "trace")
#: Pipelined variants whose trace the page draws; the others are named in a line, to keep the page small.
TRACES_SHOWN = 3
#: What to look for in each chart, for the page's caption.
CAPTIONS = {
    "execution": "Each variant run serially (one frame through every stage at a time) and pipelined (the stages "
                 "as concurrent threads joined by queues). The dashed line is the rate the pipelined run's slowest "
                 "stage allows alone (bound, from a serial calibration): a pipelined bar near it has hidden every "
                 "other stage behind that one; well short of it, the stages get in each other's way (shared cores, "
                 "the GIL, queue hand-offs).",
    "trace": "One bar per frame per stage, coloured by frame (its number inside), x in ms after the measured "
             "window began. Bars in different rows at the same x are stages working on different frames at once: "
             "the overlap pipelining buys. White space in a row is that stage idle, waiting for the stage before "
             "it or for room in the queue after it; the row with the least white space (the highest busy %) sets "
             "the pace.",
}
_SERIAL, _PIPELINED = "tab:blue", "tab:orange"


class Span(NamedTuple):
    """One frame's time in one stage, ms after the measured window's start."""

    frame: int
    stage: str
    start: float
    end: float


def pipelined(run: f.Run) -> list[VariantRecord]:
    """The document's pipelined variants, failed ones included."""
    return [r for r in run.records if r.execution == "pipelined"]


def pairs(run: f.Run) -> list[tuple[VariantRecord, VariantRecord]]:
    """(serial, pipelined) runs of each configuration (variant label and kernel set) that ran both
    successfully, in order of first appearance."""
    found: dict[tuple[str, str], dict[str, VariantRecord]] = {}
    for r in run.records:
        if r.ok and f.fps(r) is not None:
            found.setdefault(f.key(r), {}).setdefault(r.execution, r)
    return [(runs["serial"], runs["pipelined"]) for runs in found.values() if {"serial", "pipelined"} <= set(runs)]


def execution_chart(run: f.Run) -> tuple[Figure, str | None]:
    """Grouped bars per configuration: serial FPS, pipelined FPS, and the pipelined run's bound as a line."""
    both = pairs(run)
    if not both:
        if not pipelined(run):
            raise NotApplicable("no variant ran pipelined (accel compare --execution serial,pipelined runs both)")
        raise NotApplicable("no variant ran both serially and pipelined successfully: nothing to set side by side "
                            "(accel compare --execution serial,pipelined runs both)")
    fig, (ax,) = new_figure(1, height=1.1 + 0.75 * len(both))
    right = 0.0
    for i, (serial, piped) in enumerate(both):
        s_fps, p_fps = float(f.fps(serial) or 0.0), float(f.fps(piped) or 0.0)
        flow = f.flow(piped)
        bound = flow.bound_fps if flow is not None else None
        ax.barh(i - 0.2, s_fps, height=0.38, color=_SERIAL, label="serial" if i == 0 else None)[0].set_gid(
            f"serial-{i}")
        ax.barh(i + 0.2, p_fps, height=0.38, color=_PIPELINED, label="pipelined" if i == 0 else None)[0].set_gid(
            f"pipelined-{i}")
        text = f"  {p_fps:.1f}" + (f" ({p_fps / s_fps:.2f}x serial)" if s_fps else "")
        if bound is not None:
            ax.plot([bound, bound], [i - 0.02, i + 0.44], color="black", ls="--", lw=1.2,
                    label="bound: the slowest stage alone" if i == 0 else None, gid=f"bound-{i}")
            text += f"; bound {bound:.1f}" + (f" ({flow.bound_stage})" if flow is not None and flow.bound_stage else "")
        else:
            text += "; bound n/a"
        edge = max(p_fps, bound or 0.0)  # the pipelined label clears the bound line
        ax.text(s_fps, i - 0.2, f"  {s_fps:.1f}", va="center", ha="left", fontsize=8)
        ax.text(edge, i + 0.2, text, va="center", ha="left", fontsize=8)
        right = max(right, s_fps, edge)
    ax.set_xlim(0, right * 1.6 or 1.0)  # room for the value labels right of the bars
    ax.set_yticks(np.arange(len(both)), [f.name(s) for s, _ in both])
    ax.invert_yaxis()
    ax.set_xlabel("FPS")
    ax.set_title("serial vs pipelined FPS per variant", loc="left")
    fig.legend(fontsize=7, frameon=False, loc="outside lower center", ncols=3)
    return fig, None


def traced(run: f.Run) -> list[VariantRecord]:
    """The pipelined variants that ran, whose trace the page would draw (a missing trace is drawn as n/a)."""
    return [r for r in pipelined(run) if r.ok]


def first_trace(run: f.Run) -> tuple[Figure, str | None]:
    """The timeline of the first pipelined variant with a trace (``save_chart_png``'s "trace")."""
    ran = traced(run)
    if not ran:
        raise NotApplicable("no pipelined variant in this document ran successfully" if pipelined(run)
                            else "no variant ran pipelined (accel compare --execution serial,pipelined runs both)")
    return trace_chart(next((r for r in ran if spans(r)), ran[0]))  # none traced: the first says why


def spans(r: VariantRecord) -> list[Span]:
    """The record's trace entries ``[frame, stage, start_ms, end_ms]`` as spans; malformed ones left out."""
    flow = f.flow(r)
    out = []
    for entry in (flow.trace if flow is not None else None) or []:
        if (isinstance(entry, list | tuple) and len(entry) == 4 and isinstance(entry[0], int)
                and isinstance(entry[1], str) and all(isinstance(x, int | float) for x in entry[2:])
                and entry[3] >= entry[2]):
            out.append(Span(entry[0], entry[1], float(entry[2]), float(entry[3])))
    return out


def rows(trace: list[Span]) -> list[tuple[str, list[Span]]]:
    """One row per stage in pipeline order; a stage whose spans overlap (several inference streams) gets one
    row per stream, each span in the first row free at its start."""
    order = [s for s in f.STAGES if any(x.stage == s for x in trace)]
    order += sorted({x.stage for x in trace} - set(order))
    out: list[tuple[str, list[Span]]] = []
    for stage in order:
        lanes: list[list[Span]] = []
        for span in sorted((x for x in trace if x.stage == stage), key=lambda x: x.start):
            lane = next((ln for ln in lanes if ln[-1].end <= span.start), None)
            if lane is None:
                lanes.append([span])
            else:
                lane.append(span)
        out += [(stage if len(lanes) == 1 else f"{stage} #{k + 1}", lane) for k, lane in enumerate(lanes)]
    return out


def trace_chart(r: VariantRecord) -> tuple[Figure, str | None]:
    """The Gantt timeline of ``r``'s trace: a row per stage, a bar per span coloured by frame."""
    trace = spans(r)
    if not trace:
        raise NotApplicable(f"{f.label(r)}: no stage trace in this document (a pipelined run records its first "
                            "frames' stage spans as trace)")
    t0, t1 = min(x.start for x in trace), max(x.end for x in trace)
    extent = (t1 - t0) or 1.0
    lanes = rows(trace)
    fig, (ax,) = new_figure(1, height=1.2 + 0.45 * len(lanes))
    drawn = 0
    for y, (_, lane) in enumerate(lanes):
        for span in lane:
            width = span.end - span.start
            bar = ax.barh(y, width, left=span.start, height=0.6, color=colour(span.frame), edgecolor="white",
                          linewidth=0.5)[0]
            bar.set_gid(f"span-{drawn}-frame-{span.frame}")  # the SVG element's id: one per span
            drawn += 1
            if width >= 0.025 * extent:
                ax.text(span.start + width / 2, y, str(span.frame), ha="center", va="center", fontsize=7,
                        color="white")
    busy = [sum(x.end - x.start for x in lane) / extent for _, lane in lanes]
    ax.set_yticks(np.arange(len(lanes)), [f"{name}\n{b:.0%} busy" for (name, _), b in zip(lanes, busy, strict=True)])
    ax.set_xlim(left=min(0.0, t0))  # from the window's start: the wait for the first frame shows too
    ax.invert_yaxis()
    ax.set_xlabel("ms after the measured window's start")
    flow = f.flow(r)
    how = [f"queue depth {flow.queue_depth}" if flow is not None and flow.queue_depth else "",
           f"{flow.inference_streams} inference stream{'s' * (flow.inference_streams != 1)}"
           if flow is not None and flow.inference_streams else ""]
    frames = len({x.frame for x in trace})
    ax.set_title(f"the first {frames} frames through the stages, pipelined"
                 + (f" ({', '.join(h for h in how if h)})" if any(how) else ""), loc="left")
    skipped = len(flow.trace or []) - len(trace) if flow is not None else 0
    return fig, (f"{skipped} trace entries are not [frame, stage, start_ms, end_ms] and are left out"
                 if skipped else None)
