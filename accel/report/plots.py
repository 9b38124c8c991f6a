"""Charts of a result document (matplotlib, the optional ``plots`` extra).

Figures are built with matplotlib's object API (``Figure`` + the Agg canvas), never pyplot, so nothing global
(backend, interactive state) changes. A chart the document cannot support raises ``NotApplicable`` with the
reason, which the HTML page shows in the chart's place.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from accel.core.errors import ConfigError
from accel.report import figures as f
from accel.report.canvas import RC, NotApplicable, colour, new_figure
from accel.results.record import StageStats, VariantRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Every chart name, in page order; "execution" and "trace" (``timeline.PIPELINED``) only for documents with
#: pipelined variants, "trace" once per pipelined variant.
PAGE = ("fps", "execution", "stages", "trace", "threads", "latency", "timeline", "pareto")
#: The charts every run's page has (drawn, or n/a and why).
CHARTS = ("fps", "stages", "threads", "latency", "timeline", "pareto")
PLOTS_HINT = "pip install 'accel[plots]'"


def require() -> None:
    """Raise ``ConfigError`` with the fix when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"charts need matplotlib, which is not installed: {PLOTS_HINT}") from exc


def chart(runs: Sequence[f.Run], name: str) -> tuple[Figure, str | None]:
    """Chart ``name`` of ``runs[0]`` (``"compare"``: FPS of every run side by side; ``"accuracy"``: AP against
    FPS, and J/frame, over every configuration of every run; ``"trace"``: the first pipelined variant's) and
    a caveat to print under it (e.g. power missing beside a temperature curve), or raise ``NotApplicable``."""
    require()
    from accel.report import timeline  # it draws with this module's helpers

    builders = {"fps": _fps, "stages": _stages, "threads": _threads, "latency": _latency, "timeline": _timeline,
                "pareto": _pareto, "execution": timeline.execution_chart, "trace": timeline.first_trace}
    if name == "compare":
        return _compare(runs), None
    if name == "accuracy":
        return _accuracy(runs), None
    if name not in builders:
        raise ConfigError(f"unknown chart {name!r}; valid: {', '.join(PAGE)}")
    return builders[name](runs[0])


def svg(fig: Figure, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element, its ids prefixed so several charts share one page."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m[1]}"', text)
    return re.sub(r'(href="#|url\(#)([^")]+)', lambda m: m[1] + (f"{prefix}-{m[2]}" if m[2] in ids else m[2]),
                  text)


def png(fig: Figure, path: Path | None = None, dpi: int = 120) -> bytes:
    """The figure as PNG bytes (Agg), written to ``path`` too when given."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=dpi)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def save_chart_png(doc: dict[str, Any], chart_name: str, path: str | Path) -> Path:
    """Write one chart of ``doc`` as a PNG (for docs/). Raises ``ConfigError`` when matplotlib is missing, the
    name is unknown, or the document cannot support the chart (the message says why)."""
    try:
        fig, _ = chart([f.Run.of(doc)], chart_name)
    except NotApplicable as exc:
        raise ConfigError(f"chart {chart_name}: n/a: {exc}") from None
    out = Path(path)
    png(fig, out)
    return out


# -- the charts ---------------------------------------------------------------------------------------------


def _ok(run: f.Run) -> list[VariantRecord]:
    return [r for r in run.records if r.ok]


def _need(records: list[Any], what: str) -> None:
    if not records:
        raise NotApplicable(f"no variant ran successfully{what}")


def _fps(run: f.Run) -> tuple[Figure, str | None]:
    vs = [(r, fps) for r in _ok(run) if (fps := f.fps(r)) is not None]
    _need(vs, "")
    fig, (ax,) = new_figure(1, height=0.9 + 0.42 * len(vs))
    y = np.arange(len(vs))
    ax.barh(y, [fps for _, fps in vs], color=[colour(i) for i in range(len(vs))], height=0.6)
    for i, (r, fps) in enumerate(vs):
        ms = f.frame_ms(run.doc, r)
        right = fps
        if ms.size:
            lo, hi = 1000 / np.percentile(ms, 99), 1000 / np.percentile(ms, 50)
            ax.errorbar([hi], [i], xerr=[[hi - lo], [0]], fmt="|", color="black", capsize=3, lw=1)
            right = max(right, hi)
        ax.text(right, i, f"  {fps:.1f}", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, [f.label(r) for r, _ in vs])
    ax.invert_yaxis()
    ax.set_xlabel("FPS (whisker: from the p99 to the p50 frame time, as FPS)")
    ax.set_title("end-to-end FPS per variant", loc="left")
    return fig, None


def _stages(run: f.Run) -> tuple[Figure, str | None]:
    vs = [r for r in _ok(run) if r.timings is not None and r.timings.stages]
    _need(vs, " with stage times")
    replay = (run.doc.get("source") or {}).get("replay", True)
    fig, (ax,) = new_figure(1, height=1.1 + 0.42 * len(vs))
    left = np.zeros(len(vs))
    for i, stage in enumerate(f.STAGES):
        means = np.array([(f.stage(r, stage) or StageStats()).mean or 0.0 for r in vs])
        if not means.any():
            continue
        label = f"{stage} (once, replayed)" if stage == "capture" and replay else stage
        ax.barh(np.arange(len(vs)), means, left=left, height=0.6, label=label, color=colour(i),
                hatch="//" if stage == "capture" and replay else None)
        left += means
    ax.set_yticks(np.arange(len(vs)), [f.label(r) for r in vs])
    ax.invert_yaxis()
    ax.set_xlabel("mean ms per frame")
    ax.set_title("where a frame's time goes", loc="left")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return fig, None


def _threads(run: f.Run) -> tuple[Figure, str | None]:
    groups: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in _ok(run):  # a serial and a pipelined run of one configuration are two lines, never one zigzag
        threads, fps = f.get(r.options, "threads"), f.fps(r)
        if isinstance(threads, int) and fps is not None:
            groups.setdefault((str(r.delegate), str(r.kernels), r.execution), []).append((threads, fps))
    if not groups:
        raise NotApplicable("no variant that ran has a threads option")
    fig, (ax,) = new_figure(1, height=2.8)
    ticks: set[int] = set()
    for i, ((delegate, kernels, execution), pts) in enumerate(sorted(groups.items(), key=_serial_first)):
        pts.sort()
        ticks.update(p[0] for p in pts)
        label = f"{delegate} + {kernels}" + (", pipelined" if execution == "pipelined" else "")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colour(i), label=label)
    ax.set_xticks(sorted(ticks))
    ax.set_xlabel("threads")
    ax.set_ylabel("FPS")
    ax.set_ylim(bottom=0)
    ax.set_title("FPS vs threads", loc="left")
    ax.legend(fontsize=7, frameon=False)
    return fig, None


def _serial_first(item: tuple[tuple[str, str, str], Any]) -> tuple[str, str, bool]:
    (delegate, kernels, execution), _ = item
    return delegate, kernels, execution != "serial"


def _latency(run: f.Run) -> tuple[Figure, str | None]:
    vs = [r for r in _ok(run) if f.raw_ms(r).get("inference")]
    _need(vs, " with per-frame times (raw_ms)")
    fig, axes = new_figure(1, height=2.8, ncols=2)
    series = [("inference ms", [np.asarray(f.raw_ms(r)["inference"], float) for r in vs]),
              ("frame ms (" + " + ".join(f.fps_stages(run.doc, vs[0])) + ")", [f.frame_ms(run.doc, r) for r in vs])]
    for ax, (title, data) in zip(axes, series, strict=True):
        values = np.concatenate([d for d in data if d.size]) if any(d.size for d in data) else np.zeros(1)
        hi = float(np.percentile(values, 99.5)) * 1.05 or 1.0
        bins = np.linspace(0, hi, 40)
        for i, d in enumerate(data):
            if d.size:
                ax.hist(np.minimum(d, hi), bins=bins.tolist(), histtype="step", color=colour(i), label=f.label(vs[i]))
        ax.set_xlabel(title)
        ax.set_ylabel("frames")
    axes[0].set_title("latency per frame (the slowest 0.5% piled at the right edge)", loc="left", fontsize=8)
    axes[1].legend(fontsize=6, frameon=False)
    return fig, None


def _timeline(run: f.Run) -> tuple[Figure, str | None]:
    doc = run.doc
    power = [s for s in (f.get(doc, "power", "samples") or []) if s and s[1] is not None]
    thermal = [s for s in (f.get(doc, "thermal", "samples") or []) if s and len(s) > 1 and s[1] is not None]
    if not power and not thermal:
        why = f.power_why(doc) if not f.has_meter(run) else "the meter recorded no samples"
        raise NotApplicable(f"no power or temperature samples in this document (power: {why})")
    windows = [(r, w) for r in _ok(run) if (w := r.window) is not None]
    starts = [s[0] for s in power + thermal] + [w.start for _, w in windows]
    t0 = f.get(doc, "clock", "monotonic") or min(starts)
    panels = [(p, label) for p, label in ((power, "W"), (thermal, "°C")) if p]
    fig, axes = new_figure(len(panels), height=1.2 + 1.6 * len(panels))
    for ax, (samples, label) in zip(axes, panels, strict=True):
        ax.plot([s[0] - t0 for s in samples], [s[1] for s in samples], color="black", lw=1)
        ax.set_ylabel(label)
        for i, (r, w) in enumerate(windows):
            ax.axvspan(w.start - t0, w.end - t0, color=colour(i), alpha=0.2,
                       label=f.label(r) if ax is axes[0] else None)
    axes[-1].set_xlabel("seconds since the run started")
    axes[0].set_title("power and temperature over the run (shaded: each variant's measured window)", loc="left")
    if windows:
        fig.legend(fontsize=7, frameon=False, loc="outside lower center", ncols=min(3, len(windows)))
    note = None if power else f"power: n/a ({f.power_why(doc) if not f.has_meter(run) else 'no samples'})"
    return fig, note


def _pareto(run: f.Run) -> tuple[Figure, str | None]:
    if not f.has_meter(run):
        raise NotApplicable(f"power: n/a ({f.power_why(run.doc)})")
    pts = [(f.label(r), float(fps), float(j)) for r in _ok(run)
           if (fps := f.fps(r)) is not None and (j := f.j_per_frame(r)) is not None]
    if not pts:
        raise NotApplicable("no variant that ran has an energy per frame")
    front, dominated = f.pareto(pts)
    fig, (ax,) = new_figure(1, height=3.2)
    on = sorted((j, fps) for n, fps, j in pts if n in front)
    ax.plot([p[0] for p in on], [p[1] for p in on], color="tab:green", marker="o", lw=1.2, label="worth using")
    off = [(j, fps) for n, fps, j in pts if n in dominated]
    if off:
        ax.scatter([p[0] for p in off], [p[1] for p in off], color="grey", marker="x",
                   label="never worth using (another is faster for less energy)")
    for n, fps, j in pts:
        ax.annotate(n, (j, fps), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.margins(0.25)
    est = any(f.estimated(run.doc, r) for r in _ok(run))
    ax.set_xlabel("J/frame" + (" (estimated)" if est else "") + " (lower is better)")
    ax.set_ylabel("FPS (higher is better)")
    ax.set_title("speed vs energy: the Pareto front", loc="left")
    ax.legend(fontsize=7, frameon=False)
    return fig, None


def _compare(runs: Sequence[f.Run]) -> Figure:
    lines = f.matched(runs)
    fig, (ax,) = new_figure(1, height=1.0 + 0.3 * len(lines) * len(runs))
    h = 0.8 / len(runs)
    for i in range(len(runs)):
        fps = [f.fps(r) if r is not None and r.ok else None for r in (per_run[i] for _, per_run in lines)]
        y = np.arange(len(lines)) + i * h
        ax.barh(y, [x or 0.0 for x in fps], height=h, color=colour(i), label=f"run {i + 1}")
    ax.set_yticks(np.arange(len(lines)) + 0.4 - h / 2,
                  [f"{k[0]} + {k[1]}" + (f", {k[2]}" if k[2] != "serial" else "") for k, _ in lines])
    ax.invert_yaxis()
    ax.set_xlabel("FPS (missing bar: not run or failed)")
    ax.set_title("FPS per variant, runs side by side", loc="left")
    ax.legend(fontsize=7, frameon=False)
    return fig


def _accuracy(runs: Sequence[f.Run]) -> Figure:
    """AP against FPS over every model x variant that has both (one colour per model), the front (no other is
    as accurate and as fast) joined and labelled; beside it AP against J/frame when energy was measured."""
    from accel.report.decide import accuracy_front, choices

    found = [c for c in choices(runs) if c.ap is not None]
    if not found:
        raise NotApplicable("accuracy needs a dataset: run with --dataset (COCO or Ultralytics YOLO)")
    energy = [c for c in found if c.j_per_frame is not None]
    fig, axes = new_figure(1, height=3.6, ncols=2 if energy else 1)
    models = list(dict.fromkeys(c.model for c in found))
    front, _ = accuracy_front(found)
    ax = axes[0]
    for i, m in enumerate(models):
        mine = [c for c in found if c.model == m]
        ax.scatter([c.fps for c in mine], [100 * (c.ap or 0.0) for c in mine], color=colour(i), s=18, label=m)
    line = sorted(front, key=lambda c: c.fps)
    ax.plot([c.fps for c in line], [100 * (c.ap or 0.0) for c in line], color="black", lw=1.0, ls="--",
            marker="o", mfc="none", ms=8, label="Pareto front (nothing is both more accurate and faster)")
    for c in line:
        ax.annotate(f"{f.name(c.record)}, {c.record.execution}", (c.fps, 100 * (c.ap or 0.0)), fontsize=6,
                    xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("FPS (higher is better)")
    ax.set_ylabel("AP % (IoU 0.5:0.95)")
    ax.set_title("accuracy vs speed, every model x variant", loc="left")
    ax.margins(0.15)
    ax.legend(fontsize=6, frameon=False, loc="best")
    if energy:
        _accuracy_energy(axes[1], energy, models)
    return fig


def _accuracy_energy(ax: Any, found: list[Any], models: list[str]) -> None:
    """AP against J/frame; its front: no other is as accurate for at most as much energy."""
    on, _ = f.pareto([(str(i), c.ap or 0.0, c.j_per_frame or 0.0) for i, c in enumerate(found)])
    front = [found[int(i)] for i in on]
    for i, m in enumerate(models):
        mine = [c for c in found if c.model == m]
        ax.scatter([c.j_per_frame for c in mine], [100 * (c.ap or 0.0) for c in mine], color=colour(i), s=18)
    line = sorted(front, key=lambda c: c.j_per_frame or 0.0)
    ax.plot([c.j_per_frame for c in line], [100 * (c.ap or 0.0) for c in line], color="black", lw=1.0, ls="--",
            marker="o", mfc="none", ms=8)
    est = any(c.estimated for c in found)
    ax.set_xlabel("J/frame" + (" (estimated from CPU load)" if est else "") + " (lower is better)")
    ax.set_title("accuracy vs energy", loc="left")
    ax.margins(0.15)
