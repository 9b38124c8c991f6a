"""The command line: parses, calls library functions, prints. No experiment logic lives here.

Every ``AccelError`` becomes one line on stderr and its exit code; any other traceback is a bug.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accel.errors import AccelError, ConfigError
from accel.watch.command import add_parser as add_watch_parser

if TYPE_CHECKING:
    from accel.config import Config
    from accel.record import VariantRecord

_EPILOG = """precedence: command-line flags > ACCEL_* environment > accel.toml (or --config) > defaults.
exit codes: 0 ok, 1 some variant failed, 2 bad input (config, model, source), 3 backend unavailable, 130 interrupted."""


def _csv_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    return values


def _duration(text: str) -> float:
    """'90', '90s', '10m', '1h', '1h30m' -> seconds."""
    import re

    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or parts is None or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 10m or 1h, got {text!r}")
    h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + sec


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="accel", description="Run a .tflite detector every configured way on the "
                                 "same camera frames and compare speed, cost and answers.", epilog=_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser("compare", help="run every enabled backend on the same frames (the main job)",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--model", help="the .tflite model (default: the embedded default detector)")
    c.add_argument("--labels", help="labels file: one name per line, or 'ID NAME' lines")
    c.add_argument("--source", help="synthetic[:WxH] | image:PATH (file or folder) | video:PATH | v4l2:N | "
                   "picamera2[:N] (default: synthetic)")
    c.add_argument("--source-format", help="pixel format the source delivers: RGB, RGB888 (B,G,R in memory), "
                   "BGR888, XRGB8888, XBGR8888, YUV420, NV12 (default: the source's own)")
    c.add_argument("--source-size", help="capture size WIDTHxHEIGHT, 'native' or 'auto' (default)")
    c.add_argument("--source-fps", type=float, metavar="FPS",
                   help="with --live: the rate synthetic, image and video sources deliver at, dropping what the "
                   "pipeline cannot take (default 0: synthetic 30, a video its file's rate; cameras their own)")
    c.add_argument("--frames", type=int, help="measured frames per variant, at least (default 100)")
    c.add_argument("--seconds", type=float, help="measured seconds per variant, at least (default 2)")
    c.add_argument("--warmup", type=int, help="unmeasured warm-up frames per variant (default 10)")
    c.add_argument("--delegates", type=_csv, help="only these delegates, comma-separated (e.g. xnnpack,null)")
    c.add_argument("--threads", type=_csv_ints,
                   help="thread counts for xnnpack and litert-cpu, comma-separated (e.g. 1,2,4)")
    c.add_argument("--kernels", type=_csv, help="kernel sets to cross with every variant (e.g. numpy,opencv)")
    c.add_argument("--execution", type=_csv, help="serial (one frame at a time: what a frame costs), pipelined "
                   "(stages as concurrent threads: what a camera app gets) or serial,pipelined (default serial)")
    c.add_argument("--resize", choices=["auto", "stretch", "letterbox"],
                   help="how frames are fitted to the input (auto: letterbox for YOLO, stretch otherwise)")
    c.add_argument("--threshold", type=float, help="detection score threshold (default 0.3)")
    c.add_argument("--live", action="store_true", default=None,
                   help="each variant pulls frames from the source itself (capture cost counts in its FPS)")
    c.add_argument("--dataset", help="a COCO dataset (folder or instances JSON) or an Ultralytics YOLO dataset "
                   "(folder or data.yaml; [accuracy] split, default val): every variant's accuracy (AP, AP50, "
                   "AP75, precision, recall) on its images")
    c.add_argument("--power-meter", help="power meter: auto (the first found: pi5-pmic, hwmon, rapl, battery), none, "
                   "pi5-pmic, hwmon, rapl, battery, command, csv, estimate (default auto)")
    c.add_argument("--power-command", help="with --power-meter command: a shell command that prints watts")
    c.add_argument("--power-log", help="with --power-meter csv: an external meter's CSV log, aligned by wall clock")
    c.add_argument("--sustained", type=_duration, metavar="DURATION",
                   help="run each variant this long (e.g. 90s, 10m, 1h): FPS and temperature over time, first "
                   "vs last minute, time until throttling")
    c.add_argument("--cool-down", type=float, metavar="CELSIUS",
                   help="before each variant, wait until the SoC is below this temperature (thermal.max_wait_s)")
    c.add_argument("--json", dest="json_path", help="write the result JSON here (default results/<time>/result.json)")
    c.add_argument("--config", help="config file (default: $ACCEL_CONFIG, else ./accel.toml if present)")
    c.add_argument("--in-process", action="store_true", help="run variants in this process (no isolation)")
    add_watch_parser(sub, c)  # compare's run options, and its own
    i = sub.add_parser("inspect", help="what a model is: tensors, quantization, ops, parameters, family")
    i.add_argument("model", help="the .tflite file")
    i.add_argument("--family", default="auto", help="force the family (ssd, ssd-raw, yolov5, yolov8, classifier)")
    i.add_argument("--json", action="store_true", help="print JSON instead of tables")
    mo = sub.add_parser("models", help="architecture-faithful benchmark models (untrained; needs the build extra)")
    msub = mo.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", help="the models `accel models build` can write")
    mb = msub.add_parser("build", help="write a model: same ops, shapes and cost as the published one")
    mb.add_argument("name", help="a name from `accel models list`")
    mb.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8, or several comma-separated")
    mb.add_argument("--out", default="models", help="a .tflite path or a folder (default ./models)")
    mb.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    ds = sub.add_parser("dataset", help="datasets: write the synthetic scenes as a COCO dataset")
    dsub = ds.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    synth = dsub.add_parser("synth", help="write synthetic scenes (PNG) and their boxes (COCO JSON) to a folder")
    synth.add_argument("--out", required=True, help="the dataset folder to write")
    synth.add_argument("--frames", type=int, default=200, help="number of scenes (default 200)")
    synth.add_argument("--seed", type=int, default=1000,
                       help="scene seed (default 1000; the default model was trained on other seeds)")
    synth.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    r = sub.add_parser("report", help="a result JSON (or several, side by side) as a table, Markdown, CSV, "
                       "JSON or a self-contained HTML page")
    r.add_argument("results", nargs="+", metavar="RESULT.json",
                   help="result documents; with several, the first is the baseline of the ratios")
    r.add_argument("--format", choices=["html", "md", "csv", "json"],
                   help="report format (default: from --out's suffix; without --out: terminal tables)")
    r.add_argument("--out", help="write the report here (default: print it)")
    d = sub.add_parser("delegates", help="every known inference backend: available here or not, and why")
    d.add_argument("--json", action="store_true", help="print JSON")
    k = sub.add_parser("kernels", help="every known pre/post-processing kernel set: available or not, and why")
    k.add_argument("--json", action="store_true", help="print JSON")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accel`` and ``python -m accel``; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    try:
        handler = {"compare": _compare, "inspect": _inspect, "delegates": _delegates, "kernels": _kernels,
                   "dataset": _dataset, "models": _models, "report": _report, "watch": _watch}
        return handler[args.command](args)
    except AccelError as exc:
        # escaped: messages name config tables such as [accuracy], which rich would take for markup
        err.print(f"[bold red]accel: error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("accel: interrupted; variants finished so far are in the result JSON")
        return 130


def _compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from accel.compare import compare
    from accel.record import Status
    from accel.report import legend, variants_table

    config = _run_config(args)
    console = Console()
    if not console.is_terminal:  # logs and pipes: don't squeeze the table into 80 columns
        console = Console(width=190)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("capturing frames", total=None)
        reports: dict[str, str] = {}
        records: list[VariantRecord] = []

        def on_event(kind: str, data: Any) -> None:
            if kind == "start":
                bar.update(task, description=f"[{data['index'] + 1}/{data['total']}] {data['variant']} + "
                           f"{data['kernels']}, {data['execution']}", completed=0, total=None)
            elif kind == "idle":
                bar.update(task, description=f"idle power baseline ({data['seconds']:g} s, {data['meter']})")
            elif kind == "cool_down":
                bar.update(task, description="cooling down" + (f" below {data['target_c']:g} C"
                                                                 if data["target_c"] else f" {data['pause_s']:g} s"))
            elif kind == "reports":
                reports.update(data)
            elif kind == "progress":
                bar.update(task, completed=data["n"], total=max(data["n"], data["total"]))
            elif kind in ("done", "skipped"):
                records.append(data)
                console.print(f"  {data.variant} + {data.kernels}, {data.execution}: {_outcome_line(data)}",
                              highlight=False)

        doc, path = compare(config, on_event=on_event, isolate=not args.in_process, result_path=args.json_path)
    console.print(variants_table(doc))
    console.print(legend(doc), style="dim", highlight=False)
    console.print(f"results: {path}", highlight=False)
    written = [p for p in reports.values() if p.endswith((".md", ".csv", ".html", ".json"))]
    if written:
        console.print(f"reports: {', '.join(written)}", highlight=False)
    for fmt, why in reports.items():
        if why not in written:
            console.print(f"report {fmt} not written: {why}", style="yellow", highlight=False)
    failed = [r for r in records if r.status in (Status.FAILED, Status.CRASHED, Status.TIMEOUT)]
    return 1 if failed else 0


def _run_config(args: argparse.Namespace) -> Config:
    """The config ``compare`` and ``watch`` run with: the command's flags over the environment and accel.toml."""
    from accel.config import load_config

    overrides: dict[str, Any] = {
        "model.path": args.model, "model.labels": args.labels, "pipeline.source": args.source,
        "pipeline.source_format": args.source_format, "pipeline.source_size": args.source_size,
        "pipeline.source_fps": args.source_fps,
        "pipeline.frames": args.frames, "pipeline.seconds": args.seconds, "pipeline.warmup": args.warmup,
        "pipeline.kernels": args.kernels, "pipeline.execution": args.execution, "pipeline.resize": args.resize,
        "pipeline.score_threshold": args.threshold,
        "pipeline.live": args.live, "delegates": args.delegates, "accuracy.dataset": args.dataset,
        "power.meter": args.power_meter, "power.command.command": args.power_command,
        "power.csv.path": args.power_log, "thermal.sustained_s": args.sustained, "thermal.cool_down_c": args.cool_down,
    }
    implied = (("--power-command", args.power_command, "command"), ("--power-log", args.power_log, "csv"))
    for flag, value, meter in implied:
        if value:  # the option implies its meter; naming another one is a contradiction
            if (args.power_meter or meter) != meter:
                raise ConfigError(f"option {flag} needs --power-meter {meter}, not {args.power_meter!r}")
            overrides["power.meter"] = meter
    config = load_config(args.config, overrides)
    if args.threads is not None:
        if not args.threads or min(args.threads) < 1:
            raise ConfigError(f"option --threads: expected integers >= 1, got {args.threads}")
        for name in ("xnnpack", "litert-cpu"):
            if name in config.delegates:
                config.delegates[name]["threads"] = args.threads
    return config


def _watch(args: argparse.Namespace) -> int:
    from accel.watch.command import run

    return run(args, _run_config(args))


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
    from accel.results import load_result

    paths = [Path(p) for p in args.results]
    docs = [load_result(p) for p in paths]
    fmt = args.format
    if fmt is None and args.out:
        suffixes = {".html": "html", ".htm": "html", ".md": "md", ".csv": "csv", ".json": "json"}
        fmt = suffixes.get(Path(args.out).suffix.lower())
        if fmt is None:
            raise ConfigError(f"option --out: cannot tell the format from {args.out!r}; add --format html|md|csv|json")
    if fmt is None:
        console = Console() if Console().is_terminal else Console(width=190)
        for doc in docs:
            console.print(variants_table(doc))
            console.print(legend(doc), style="dim", highlight=False)
        if len(docs) > 1:
            console.print(compare_table(docs))
        return 0
    text = render(docs, fmt, [p.parent for p in paths])
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
    precisions = _csv(args.precision)
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

    from accel.dataset import write_synthetic

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

    from accel.model import gpu_support, load_model, model_costs
    from accel.report import model_table

    model = load_model(args.model, args.family)
    info = model.to_json()
    info["costs"] = model_costs(model.path).to_json()
    info["gpu_delegate"] = gpu_support(model.ops)
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
