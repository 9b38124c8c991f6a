"""Terminal views of a result document and of a model (rich tables). Every figure comes from the document;
a figure that was not measured prints as "n/a"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from accel.report import figures as f


def _ms(stats: dict[str, Any] | None, key: str = "mean") -> str:
    if not stats or stats.get(key) is None:
        return "n/a"
    return f"{stats[key]:.2f}"


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _accuracy(acc: dict[str, Any] | None) -> tuple[str, ...]:
    if not acc:
        return ("n/a",) * 4
    return tuple(f"{acc[k]:.3f}" for k in ("AP50", "AP", "precision", "recall"))


def variants_table(doc: dict[str, Any]) -> Table:
    """One row per variant: stage latencies, FPS, CPU, memory, power (with a meter), agreement and op
    placement."""
    model = doc.get("model", {})
    source = doc.get("source", {})
    mode = "replay" if source.get("replay", True) else "live"
    title = (f"{model.get('path', '?').rsplit('/', 1)[-1]} on {f.host(doc)} "
             f"- {source.get('kind', '?')} source, {mode}")
    t = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    accuracy = any("accuracy" in v for v in doc.get("variants", []))
    t.add_column("variant", no_wrap=True)
    t.add_column("kernels", no_wrap=True)
    quality = ("AP50", "AP", "P", "R") if accuracy else ("agree",)
    metered = f.has_meter(doc)
    power_cols = ("W", "J/frame", "FPS/W") if metered else ()
    for name in ("infer ms p50", "p99", "pre ms", "post ms", "FPS", "CPU %", "RSS MB", *power_cols, *quality,
                 "on accel"):
        t.add_column(name, justify="right")
    notes: list[str] = []
    for v in doc.get("variants", []):
        if v.get("status") != "ok":
            notes.append(f"{v['variant']} + {v['kernels']}: {v['status']}: {v.get('error', '')}")
            t.add_row(v["variant"], v["kernels"], Text(v["status"], style="red"),
                      *[""] * (7 + len(power_cols) + len(quality)))
            continue
        st = v["stages"]
        usage = v.get("usage", {})
        label = v["variant"]
        if (v.get("adapter") or {}).get("software"):
            label += " [software GPU]"
        if "fell back" in (v.get("placement") or {}).get("detail", ""):
            label += " [CPU fallback]"
        throttled = f.throttle(v)
        if throttled:
            notes.append(f"{v['variant']} + {v['kernels']}: {throttled} during the run: its figures may be low")
        mark = f.estimated(doc, v)
        power = (f.watts(v, mark, "{:.2f}", "gross_w"), f.watts(v, mark, "{:.3f}", "j_per_frame"),
                 f.watts(v, mark, "{:.2f}", "fps_per_w")) if metered else ()
        agree = v.get("agreement", {}).get("score")
        place = v.get("placement", {})
        t.add_row(
            Text(label + (f" [{throttled}]" if throttled else ""), style="yellow" if throttled else ""),
            v["kernels"], _ms(st["inference"], "p50"), _ms(st["inference"], "p99"),
            _ms(st["preprocess"]), _ms(st["postprocess"]), f"{v['fps']:.1f}",
            _num(usage.get("process_cpu_percent"), "{:.0f}"), _num(usage.get("peak_rss_mb"), "{:.0f}"), *power,
            *(_accuracy(v.get("accuracy")) if accuracy else (_num(agree, "{:.0%}"),)),
            f"{place.get('delegated_ops', 0)}/{place.get('total_ops', 0)}",
        )
    if notes:
        t.caption = "\n".join(notes)
        t.caption_justify = "left"
    return t


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
    if "dataset" in doc:
        thr = doc.get("config", {}).get("pipeline", {}).get("score_threshold")
        quality = (f"AP50, AP = COCO average precision at IoU 0.5 and 0.5:0.95 (pycocotools) over "
                   f"{doc['dataset']['images']} images; P, R = precision and recall at score >= {thr}. ")
    else:
        quality = "agree = detections matching cpu-reference's (same class, IoU >= 0.5). "
    return (f"{fps}. CPU % = this variant's process (100 = one core). "
            f"RSS = its peak resident memory, replayed frames included. {quality}"
            f"on accel = ops the delegate took / all ops. {power_legend(doc)}")


def power_legend(doc: dict[str, Any]) -> str:
    """What the power columns mean, or why there are none."""
    if not f.has_meter(doc):
        return f"power: n/a ({f.power_why(doc)})."
    meter = f.get(doc, "power", "meter") or "?"
    text = (f"W = mean power over the variant's measured window ({meter}; {f.idle_line(doc)}); J/frame = energy / "
            "frames; FPS/W = FPS / W.")
    if any(f.estimated(doc, v) for v in doc.get("variants", [])):
        text += " ~ = estimated from CPU load by a model, not measured."
    return text


def compare_table(docs: Sequence[dict[str, Any]]) -> Table:
    """Several runs side by side: one row per (variant, run), ratios against the first run."""
    from accel.report.markdown import compare_rows

    headers, rows = compare_rows(docs)
    t = Table(title="runs compared (x = this run / run 1)", title_justify="left", header_style="bold",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in rows:
        t.add_row(*row)
    t.caption = "\n".join(f"run {i + 1}: {f.run_label(d)}" for i, d in enumerate(docs))
    t.caption_justify = "left"
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
    return [summary, tensors, ops]
