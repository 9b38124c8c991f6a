"""The command line's arguments: ``parser()`` builds the ``accel`` argument parser (every subcommand, its
flags and help texts); ``accel.cli.main`` runs what it parses."""

from __future__ import annotations

import argparse
from typing import Any

from accel.plan.flags import add_flags
from accel.watch.command import EPILOG as WATCH_EPILOG
from accel.watch.command import add_arguments as add_watch_arguments

__all__ = ["parser"]

_EPILOG = """precedence: command-line flags > ACCEL_* environment > accel.toml (or --config) > defaults.
exit codes: 0 ok, 1 some variant failed, 2 bad input (config, model, source), 3 backend, kernel or power meter
unavailable, 4 the result cannot be written (output path, full disk); stopped by a signal: 128 + its number
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after saving what was measured."""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="accel", description="Run a .tflite detector every configured way on the "
                                 "same camera frames and compare speed, cost and answers.", epilog=_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser("compare", help="run every enabled backend on the same frames (the main job)",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(c)
    c.add_argument("--dry-run", action="store_true", help="print the plan and exit: every job that would run "
                   "(model, variant, kernels, execution) and every skipped backend with why; nothing is measured")
    w = sub.add_parser("watch", help="run one variant continuously and show it live: a web page (the stream with "
                       "its detections, the figures) and a terminal panel", epilog=WATCH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(w, watch=True)
    add_watch_arguments(w)
    _add_tools(sub)
    return ap


def _add_tools(sub: Any) -> None:
    """The subcommands around a comparison: inspect, models, dataset, report, delegates, kernels."""
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
    r.add_argument("--target-fps", type=float, metavar="FPS",
                   help="name the most accurate configuration that sustains FPS on each machine (with a "
                   "dataset; else the fastest) (default: the run's [report] target_fps)")
    d = sub.add_parser("delegates", help="every known inference backend: available here or not, and why")
    d.add_argument("--json", action="store_true", help="print JSON")
    k = sub.add_parser("kernels", help="every known pre/post-processing kernel set: available or not, and why")
    k.add_argument("--json", action="store_true", help="print JSON")


