"""Terminal views of a result document and of a model (rich tables). Every figure comes from the document;
a figure that was not measured prints as "n/a"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from accel.report import figures as f
from accel.results.record import StageStats, Usage, VariantRecord


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _accuracy(acc: dict[str, Any] | None) -> tuple[str, ...]:
    if not acc:
        return ("n/a",) * 4
    return tuple(f"{acc[k]:.3f}" for k in ("AP50", "AP", "precision", "recall"))


def variants_table(doc: dict[str, Any]) -> Table:
    """One row per variant: stage latencies, FPS, CPU, memory, power (with a meter), agreement and op
    placement."""
    run = f.Run.of(doc)
    model = doc.get("model", {})
    source = doc.get("source", {})
    mode = "replay" if source.get("replay", True) else "live"
    title = (f"{model.get('path', '?').rsplit('/', 1)[-1]} on {f.host(doc)} "
             f"- {source.get('kind', '?')} source, {mode}")
    t = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    accuracy = any(r.accuracy is not None for r in run.records)
    live = f.live(run)
    t.add_column("variant", no_wrap=True)
    t.add_column("kernels", no_wrap=True)
    t.add_column("exec", no_wrap=True)
    quality = ("AP50", "AP", "P", "R") if accuracy else ("agree",)
    metered = f.has_meter(run)
    power_cols = ("W", "J/frame", "FPS/W") if metered else ()
    live_cols = ("age p50", "dropped") if live else ()
    columns = ("infer ms p50", "p99", "pre ms", "post ms", "e2e p50", *live_cols, "FPS", "of bound", "CPU %",
               "cores %", "RSS MB", *power_cols, *quality, "on accel")
    for name in columns:
        t.add_column(name, justify="right")
    notes: list[str] = []
    for r in run.records:
        if not r.ok:
            notes.append(f"{r.variant} + {r.kernels}: {r.status.value}: {r.error or ''}")
            t.add_row(r.variant, r.kernels, r.execution, Text(r.status.value, style="red"),
                      *[""] * (len(columns) - 1))
            continue
        throttled = f.throttle(r)
        if throttled:
            notes.append(f"{r.variant} + {r.kernels}: {throttled} during the run: its figures may be low")
        power = f.power_cells(r, f.estimated(doc, r)) if metered else []
        t.add_row(*_ok_row(r, throttled, power, accuracy, live))
    if notes:
        t.caption = "\n".join(notes)
        t.caption_justify = "left"
    return t


def _ok_row(r: VariantRecord, throttled: str | None, power: list[str], accuracy: bool,
            live: bool) -> list[str | Text]:
    """The cells of a variant that ran: label, kernels, execution, latencies, FPS, usage, ``power``, quality,
    placement."""
    label = r.variant
    if r.outcome.adapter is not None and r.outcome.adapter.software:
        label += " [software GPU]"
    place = f.placement(r)
    if place is not None and "fell back" in (place.detail or ""):
        label += " [CPU fallback]"
    inference, pre, post = (f.stage(r, s) or StageStats() for s in ("inference", "preprocess", "postprocess"))
    usage = f.usage(r) or Usage()
    agree = r.agreement.score if r.agreement is not None else None
    flow, e2e = f.flow(r), f.e2e(r)
    fps, bound = f.fps(r), flow.bound_fps if flow is not None else None
    live_cells = [_num(f.frame_age(r).p50, "{:.2f}"), _num(f.dropped(r), "{:d}")] if live else []
    cores = "/".join(f"{c:.0f}" for c in usage.cpu_cores_busy) if usage.cpu_cores_busy else "n/a"
    return [
        Text(label + (f" [{throttled}]" if throttled else ""), style="yellow" if throttled else ""),
        r.kernels, r.execution, _num(inference.p50, "{:.2f}"), _num(inference.p99, "{:.2f}"), _num(pre.mean, "{:.2f}"),
        _num(post.mean, "{:.2f}"), _num(e2e.p50, "{:.2f}"), *live_cells, _num(fps),
        _num(fps / bound if fps is not None and bound else None, "{:.0%}"), _num(usage.process_cpu_percent, "{:.0f}"),
        cores, _num(usage.peak_rss_mb, "{:.0f}"), *power,
        *(_accuracy(r.accuracy) if accuracy else (_num(agree, "{:.0%}"),)),
        f"{place.delegated_ops}/{place.total_ops}" if place is not None else "0/0",
    ]


def legend(doc: dict[str, Any]) -> str:
    """What the columns mean, for the line under the table."""
    source = doc.get("source", {})
    capture = source.get("capture_ms") or []
    if source.get("replay", True):
        mean = f"{sum(capture) / len(capture):.2f} ms" if capture else "n/a"
        fps = (f"FPS = frames / wall time of preprocess + inference + postprocess; frames were captured once "
               f"({mean} per frame) and replayed identically to every variant")
    else:
        fps = "FPS = frames / wall time of capture + preprocess + inference + postprocess (live)"
    if "dataset" in doc and (doc.get("model") or {}).get("accuracy_na"):
        quality = f"accuracy on the dataset: n/a ({doc['model']['accuracy_na']}). "
    elif "dataset" in doc:
        thr = doc.get("config", {}).get("pipeline", {}).get("score_threshold")
        quality = (f"AP50, AP = COCO average precision at IoU 0.5 and 0.5:0.95 (pycocotools) over "
                   f"{doc['dataset']['images']} images; P, R = precision and recall at score >= {thr}. ")
    else:
        ties = f.has_ties(doc)
        quality = "agree = detections matching cpu-reference's (same class, IoU >= 0.5" + (
            "; near-equal scores kept apart only at a score cut are ties, not counted). " if ties else "). ")
    return (f"{fps}. exec = serial (one frame through every stage at a time: what a frame costs) or pipelined "
            "(the stages as concurrent threads joined by queues: what a camera app gets). e2e = from a frame's "
            "capture to its detections being ready (replay: from when the loop took the frame)"
            + ("; age = capture to the start of its preprocessing; dropped = frames the source delivered that the "
               "pipeline never took" if f.live(f.Run.of(doc)) else "")
            + ". of bound = FPS / the rate the slowest stage allows alone (a serial calibration). "
            "CPU % = this variant's process (100 = one core); cores % = each core busy over the window. "
            f"RSS = its peak resident memory, replayed frames included. {quality}"
            f"on accel = ops the delegate took / all ops. {power_legend(doc)}")


def power_legend(doc: dict[str, Any]) -> str:
    """What the power columns mean, or why there are none."""
    run = f.Run.of(doc)
    if not f.has_meter(run):
        return f"power: n/a ({f.power_why(doc)})."
    meter = f.get(doc, "power", "meter") or "?"
    text = (f"W = mean power over the variant's measured window ({meter}; {f.idle_line(doc)}); J/frame = energy / "
            "frames; FPS/W = FPS / W.")
    if any(f.estimated(doc, r) for r in run.records):
        text += " ~ = estimated from CPU load by a model, not measured."
    return text


def compare_table(docs: Sequence[dict[str, Any]]) -> Table:
    """Several runs side by side: one row per (variant, run), ratios against the first run."""
    from accel.report.markdown import compare_rows

    headers, rows = compare_rows([f.Run.of(d) for d in docs])
    t = Table(title="runs compared (x = this run / run 1)", title_justify="left", header_style="bold",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in rows:
        t.add_row(*row)
    t.caption = "\n".join(f"run {i + 1}: {f.run_label(d)}" for i, d in enumerate(docs))
    t.caption_justify = "left"
    return t


def sweep_table(docs: Sequence[dict[str, Any]]) -> Table:
    """A sweep's models, one row each (``markdown.sweep_rows``): what the terminal shows first."""
    from accel.report.markdown import SWEEP_LEGEND, sweep_rows

    headers, rows = sweep_rows([f.Run.of(d) for d in docs])
    t = Table(title="models", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i == 0 or i == len(headers) - 1 else "right", no_wrap=i == 0)
    for row in rows:
        t.add_row(*row)
    t.caption, t.caption_justify = SWEEP_LEGEND, "left"
    return t


def model_table(info: dict[str, Any]) -> list[Table]:
    """Tables for ``accel inspect``: summary, tensors, op histogram."""
    summary = Table(show_header=False, title="model", title_justify="left")
    summary.add_column("key", style="bold")
    summary.add_column("value")
    summary.add_row("file", info["path"])
    summary.add_row("size", f"{info['size_bytes'] / 1e6:.2f} MB ({info['size_bytes']} bytes)")
    summary.add_row("sha256", info["sha256"])
    summary.add_row("family", info["family"])
    summary.add_row("parameters", f"{info['params'] / 1e6:.3f} M ({info['params']})")
    costs = info.get("costs")
    if costs:
        summary.add_row("MACs", f"{costs['macs'] / 1e6:.1f} M ({costs['flops'] / 1e9:.3f} GFLOPs = 2 x MACs)")
        if costs.get("other_flops"):
            summary.add_row("other FLOPs", f"{costs['other_flops'] / 1e6:.1f} M (element-wise, pooling, activations)")
    elif info.get("costs_why"):
        summary.add_row("MACs", Text(f"n/a: {info['costs_why']}"))
    gpu = info.get("gpu_delegate")
    if gpu:
        summary.add_row("GPU delegate", f"{gpu['gpu_ops']}/{gpu['total_ops']} ops it can take"
                        + ("" if gpu["fully_delegated"] else f"; on CPU: {', '.join(sorted(gpu['cpu']))}"))
    summary.add_row("ops", str(sum(info["ops"].values())))
    if info.get("description"):
        summary.add_row("description", info["description"])
    if info.get("roles"):
        summary.add_row("output roles", ", ".join(f"{k}=output {v}" for k, v in info["roles"].items()))
    if info.get("runtime"):
        summary.add_row("runtime", info["runtime"])
    tensors = Table(title="tensors", title_justify="left", header_style="bold")
    for col in ("", "name", "shape", "dtype", "scale", "zero point"):
        tensors.add_column(col)
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            q = t.get("quantization", {})
            tensors.add_row(kind[:-1], t["name"], str(t["shape"]), t["dtype"],
                            f"{q['scale']:.6g}" if q else "-", str(q["zero_point"]) if q else "-")
    ops = Table(title="op histogram", title_justify="left", header_style="bold")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    ops.add_column("MACs", justify="right")
    ops.add_column("GPU delegate")
    macs = (info.get("costs") or {}).get("macs_by_op", {})
    on_gpu = (info.get("gpu_delegate") or {}).get("gpu", {})
    for name, count in sorted(info["ops"].items(), key=lambda kv: (-kv[1], kv[0])):
        ops.add_row(name, str(count), f"{macs[name] / 1e6:.1f} M" if macs.get(name) else "",
                    ("yes" if name in on_gpu else "no") if info.get("gpu_delegate") else "")
    return [summary, tensors, ops, *_readiness_table(info)]


def _readiness_table(info: dict[str, Any]) -> list[Table]:
    """``accel inspect``'s GPU readiness: what the GPU path cannot take, why, what to do."""
    if "gpu_readiness" not in info:
        return []
    table = Table(title="GPU readiness (litert-gpu)", title_justify="left", header_style="bold")
    for col in ("what", "why", "what to do", "by default"):
        table.add_column(col, overflow="fold")
    for item in info["gpu_readiness"]:
        table.add_row(item["what"], item["why"], item["fix"], "repaired" if item["repaired"] else "not repaired")
    if not info["gpu_readiness"]:
        table.add_row("nothing found", "every op has a GPU kernel in the TFLite GPU delegate's table", "", "")
    return [table]
