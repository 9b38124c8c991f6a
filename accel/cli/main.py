"""The command line: parses, calls library functions, prints. No experiment logic lives here.

Every ``AccelError`` becomes one line on stderr and its exit code; any other traceback is a bug.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accel.cli.args import parser
from accel.core.errors import AccelError, ConfigError
from accel.plan.flags import csv

if TYPE_CHECKING:
    from accel.plan.config import Config
    from accel.results.record import VariantRecord

def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accel`` and ``python -m accel``; returns the exit code."""
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    from rich.console import Console
    from rich.markup import escape

    from accel.run.interrupt import Interrupted, stop_on_signals

    err = Console(stderr=True)
    try:
        handler = {"compare": _compare, "inspect": _inspect, "delegates": _delegates, "kernels": _kernels,
                   "dataset": _dataset, "models": _models, "report": _report, "watch": _watch,
                   "collect": _collect, "board": _board}
        with stop_on_signals(linger=True):  # SIGTERM and SIGHUP stop a run as Ctrl-C does, keeping what it measured
            return handler[args.command](args)
    except AccelError as exc:
        # escaped: messages name config tables such as [accuracy], which rich would take for markup
        err.print(f"[bold red]accel: error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        stop = Interrupted.of(exc)
        line = stop.saved_line() if args.command == "compare" else f"accel: interrupted by {stop.name}"
        err.print(escape(line), highlight=False, soft_wrap=True)
        return stop.exit_code


def _compare(args: argparse.Namespace) -> int:
    """``compare`` under a progress bar, then the table. An interrupt once it has returned (while the bar
    closes or the table prints) points to the complete result."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from accel.compare.comparison import compare, finished
    from accel.run.interrupt import Interrupted

    config = _run_config(args)
    from accel.remote.command import run_compare, wants_remote

    if wants_remote(args):
        return run_compare(args, config)
    console = Console()
    if not console.is_terminal:  # logs and pipes: don't squeeze the table into 80 columns
        console = Console(width=190)
    if args.dry_run:
        from accel.plan.job import build_plan

        for line in build_plan(config).lines():
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        return 0
    reports: dict[str, str] = {}
    records: list[VariantRecord] = []
    result: tuple[dict[str, Any], Path] | None = None
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("capturing frames", total=None)

            def on_event(kind: str, data: Any) -> None:
                step = progress_line(kind, data)
                if step is not None:
                    bar.update(task, description=step, completed=0 if kind == "start" else None)
                    if not console.is_terminal:  # a log or a pipe: the bar is not drawn, so say what starts
                        console.print(step, highlight=False, markup=False)
                if kind == "reports":
                    reports.update(data)
                elif kind == "progress":
                    bar.update(task, completed=data["n"], total=max(data["n"], data["total"]))
                elif kind in ("done", "skipped"):
                    records.append(data)
                    model = f"{data.model}: " if data.model and len(config.models) > 1 else ""
                    console.print(f"  {model}{data.variant} + {data.kernels}, {data.execution}: "
                                  f"{_outcome_line(data)}", highlight=False)

            result = compare(config, on_event=on_event, isolate=not args.in_process, result_path=args.json_path)
        return _printed(console, *result, args, reports, records)
    except KeyboardInterrupt as exc:
        if result is None:  # compare itself said what it saved
            raise
        raise finished(Interrupted.of(exc), result[1], len(records)) from None


def _printed(console: Any, doc: dict[str, Any], path: Path, args: argparse.Namespace, reports: dict[str, str],
             records: list[VariantRecord]) -> int:
    """The finished comparison's table, legend and where its files are; the exit code."""
    from accel.report import compare_table, legend, variants_table
    from accel.report.terminal import sweep_table
    from accel.results.document import per_model
    from accel.results.record import Status

    parts = per_model(doc)
    if len(parts) > 1:
        console.print(sweep_table(parts))
    for part in parts:
        console.print(variants_table(part))
        console.print(legend(part), style="dim", highlight=False)
    if len(parts) > 1:
        console.print(compare_table(parts))
    _print_decision(console, parts, None)
    via = f" (through the symlink {args.json_path})" if args.json_path and Path(args.json_path).is_symlink() else ""
    console.print(f"results: {path}{via}", highlight=False, markup=False)
    written = [p for p in reports.values() if p.endswith((".md", ".csv", ".html", ".json"))]
    if written:
        console.print(f"reports: {', '.join(written)}", highlight=False)
    for fmt, why in reports.items():
        if why not in written:
            console.print(f"report {fmt} not written: {why}", style="yellow", highlight=False)
    failed = [r for r in records if r.status in (Status.FAILED, Status.CRASHED, Status.TIMEOUT)]
    return 1 if failed else 0


def _print_decision(console: Any, docs: list[dict[str, Any]], target_fps: float | None) -> None:
    """The recommendation for the target FPS (the flag, else ``[report] target_fps``) and the accuracy front."""
    from accel.report import figures
    from accel.report.decide import decision_lines, target_of

    for line in decision_lines([figures.Run.of(d) for d in docs], target_of(docs, target_fps)):
        console.print(line, style="bold", highlight=False, markup=False)


def progress_line(kind: str, data: Any) -> str | None:
    """What the run is doing now, for the progress bar (and a line of its own in a log)."""
    if kind == "capture":
        return f"capturing frames from {data['source']}" + (" (live: each variant reads it)" if data["live"] else "")
    if kind == "start":
        what = f"{data['variant']} + {data['kernels']}, {data['execution']}"
        if data.get("models", 1) > 1:
            what = (f"model {data['model_index'] + 1} of {data['models']} {data['model']}, variant "
                    f"{data['variant_index'] + 1} of {data['variants']}: {what}")
        left = data.get("left_s")
        return f"[{data['index'] + 1}/{data['total']}] {what}" + (f" ({_clock(left)} left)" if left is not None else "")
    if kind == "idle":
        return f"idle power baseline ({data['seconds']:g} s, {data['meter']})"
    if kind == "cool_down":
        return "cooling down" + (f" below {data['target_c']:g} C" if data["target_c"] else f" {data['pause_s']:g} s")
    return None


def _clock(seconds: float) -> str:
    """A duration as a person reads it: ``45 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _run_config(args: argparse.Namespace) -> Config:
    """The config ``compare`` and ``watch`` run with: the command's flags over the environment and accel.toml."""
    from accel.plan.config import load_config
    from accel.plan.flags import FLAG_OF, overrides

    return load_config(args.config, overrides(args), flags=FLAG_OF)


def _collect(args: argparse.Namespace) -> int:
    from accel.remote.command import collect

    return collect(args)


def _board(args: argparse.Namespace) -> int:
    import time

    from accel.remote.board import info

    print(json.dumps(info(args.dir, time.time() if args.prune else None), indent=2))
    return 0


def _watch(args: argparse.Namespace) -> int:
    from accel.remote.command import boards_of, wants_remote
    from accel.watch.command import run

    config = _run_config(args)
    if wants_remote(args):
        from accel.remote.live import watch_on

        return watch_on(args, config, boards_of(args))
    return run(args, config)


def _outcome_line(record: VariantRecord) -> str:
    """One variant's result as the run goes: its speed and start-up cost, or how it failed."""
    timings, startup = record.timings, record.startup
    if not record.ok or timings is None or startup is None:
        return f"{record.status.value}: {record.error or ''}"
    line = (f"{timings.fps:.1f} FPS, inference {_ms(timings.stages['inference'].p50, '.2f')} ms p50 "
            f"(model load {_ms(startup.load_ms, '.0f')} ms, "
            f"first inference {_ms(startup.first_inference_ms, '.1f')} ms)")
    second = record.cache.second_start if record.cache is not None else None
    if second is not None and second.load_ms is not None:
        line += (f"; second start with its cache: load {second.load_ms:.0f} ms, first inference "
                 f"{_ms(second.first_inference_ms, '.1f')} ms")
    return line


def _ms(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from accel.report import compare_table, legend, render, variants_table
    from accel.results.document import load_result, per_model

    loaded = [(Path(p), load_result(p)) for p in args.results]  # a sweep's models side by side, as runs are
    paths = [p for p, doc in loaded for _ in per_model(doc)]
    docs = [part for _, doc in loaded for part in per_model(doc)]
    fmt = args.format
    if fmt is None and args.out:
        suffixes = {".html": "html", ".htm": "html", ".md": "md", ".csv": "csv", ".json": "json"}
        fmt = suffixes.get(Path(args.out).suffix.lower())
        if fmt is None:
            raise ConfigError(f"option --out: cannot tell the format from {args.out!r}; add --format html|md|csv|json")
    if fmt is None:
        from accel.report.markdown import is_sweep
        from accel.report.terminal import sweep_table

        console = Console() if Console().is_terminal else Console(width=190)
        if is_sweep(docs):
            console.print(sweep_table(docs))
        for doc in docs:
            console.print(variants_table(doc))
            console.print(legend(doc), style="dim", highlight=False)
        if len(docs) > 1:
            console.print(compare_table(docs))
        _print_decision(console, docs, args.target_fps)
        return 0
    text = render(docs, fmt, [p.parent for p in paths], args.target_fps)
    if not args.out:
        print(text, end="")
        return 0
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"option --out: cannot write {args.out}: {exc}") from exc
    print(f"wrote {args.out}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from accel import zoo

    if args.models_command == "list":
        t = Table(header_style="bold")
        t.add_column("name")
        t.add_column("twin of")
        for name in zoo.NAMES:
            t.add_row(name, zoo.describe(name))
        Console().print(t)
        return 0
    precisions = csv(args.precision)
    bad = [p for p in precisions if p not in zoo.PRECISIONS]
    if bad or not precisions:
        raise ConfigError(f"option --precision: expected {', '.join(zoo.PRECISIONS)}, got {args.precision!r}")
    out = args.out
    if len(precisions) > 1 and out.endswith(".tflite"):
        raise ConfigError("option --out: several precisions need a folder, not a .tflite path")
    for precision in precisions:
        path = zoo.build(args.name, precision, Path(out), seed=args.seed)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def _dataset(args: argparse.Namespace) -> int:
    import re

    from accel.dataset.coco import write_synthetic

    if not re.fullmatch(r"\d+x\d+", args.size):
        raise ConfigError(f"option --size: expected WIDTHxHEIGHT, got {args.size!r}")
    if args.frames < 1:
        raise ConfigError(f"option --frames: expected >= 1, got {args.frames}")
    w, h = (int(v) for v in args.size.split("x"))
    path = write_synthetic(args.out, args.frames, args.seed, (w, h))
    print(f"wrote {args.frames} scenes and {path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from rich.console import Console

    from accel.model import costs_or_why, gpu_support, load_model, read_model_file, verify_model
    from accel.model.flatbuffer import Flatbuffer
    from accel.model.gpu_ready import gpu_readiness
    from accel.report import model_table

    buf = read_model_file(args.model)  # once: the model may come from a pipe
    model = load_model(args.model, args.family, content=buf)
    verify_model(buf, args.model)
    fb = Flatbuffer(buf, args.model)
    info = {**model.to_json(), **costs_or_why(fb)}
    info["gpu_delegate"] = gpu_support(model.ops)
    info["gpu_readiness"] = [f.to_json() for f in gpu_readiness(fb)]
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    for table in model_table(info):
        console.print(table)
    return 0


def _plugins(kind: str, as_json: bool) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = []
    if kind == "delegates":
        from accel.delegates import REGISTRY, get_delegate

        for name in REGISTRY.names():
            try:
                d = get_delegate(name)
                a = d.probe()
                rows.append({"name": name, "available": a.ok, "detail": a.reason, "summary": d.summary})
            except AccelError as exc:
                rows.append({"name": name, "available": False, "detail": str(exc), "summary": ""})
    else:
        from accel.kernels import REGISTRY as KREG

        for name in KREG.names():
            try:
                ks = KREG.load(name)()
                a = ks.probe()
                rows.append({"name": name, "available": a.ok, "detail": a.reason,
                             "summary": (type(ks).__doc__ or "").strip().splitlines()[0]})
            except Exception as exc:  # a broken third-party plugin is reported by name, not raised
                rows.append({"name": name, "available": False, "detail": str(exc), "summary": ""})
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    t = Table(header_style="bold")
    for col in ("name", "available", "why / runtime", "what it is"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], "[green]yes[/]" if r["available"] else "[red]no[/]", r["detail"], r["summary"])
    Console().print(t)
    return 0


def _delegates(args: argparse.Namespace) -> int:
    return _plugins("delegates", args.json)


def _kernels(args: argparse.Namespace) -> int:
    return _plugins("kernels", args.json)
