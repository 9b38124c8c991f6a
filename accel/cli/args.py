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
    add_remote_flags(c)
    w = sub.add_parser("watch", help="run one variant continuously and show it live: a web page (the stream with "
                       "its detections, the figures) and a terminal panel", epilog=WATCH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(w, watch=True)
    add_watch_arguments(w)
    add_remote_flags(w, watch=True)
    _add_tools(sub)
    co = sub.add_parser("collect", help="fetch the results of a remote run (compare --on/--hosts) whose boards "
                        "finished, or follow the ones still running, and write the merged report again")
    co.add_argument("folder", help="the run's folder here (it holds boards.json)")
    co.add_argument("--ssh-config", metavar="FILE", help="ssh client config (default: the one the run used, else "
                    "~/.ssh/config)")
    b = sub.add_parser("board", help="what a remote run asks of a board (run there by --on/--hosts over ssh)")
    bsub = b.add_subparsers(dest="board_command", metavar="ACTION", required=True)
    bi = bsub.add_parser("info", help="this machine as a board: accel's version and code digest, Python, CPU, "
                         "room in its accel folder (JSON)")
    bi.add_argument("--dir", help="the board's accel folder (default $XDG_CACHE_HOME/accel/remote)")
    bi.add_argument("--prune", action="store_true", help="first prune that folder: its cache to 512 MiB, least "
                    "recently used first (never what was used in the last hour), the finished runs past the 20 "
                    "newest")
    return ap


def add_remote_flags(p: argparse.ArgumentParser, watch: bool = False) -> None:
    """--on, --hosts and what goes with them: run on boards over ssh instead of here (watch: on one board, its
    page forwarded to --host:--port here)."""
    g = p.add_argument_group("remote boards (over ssh; needs accel[remote])")
    g.add_argument("--on", action="append", metavar="HOST", help=(
        "run on this board instead of here: anything ssh accepts (pi@pi5.local, an ~/.ssh/config alias, "
        "ssh://user@host:port); " + ("the page is forwarded over ssh to --host:--port here" if watch else
                                     "repeat for several boards, which run in parallel; one merged result "
                                     "comes back here")))
    g.add_argument("--hosts", metavar="FILE", help="run on the boards of an Ansible inventory (YAML or INI: groups, "
                   "ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file, "
                   "ansible_python_interpreter)")
    g.add_argument("--limit", metavar="PATTERN", help="with --hosts: only these groups or hosts (Ansible's "
                   "patterns: pi5, 'pis:!pi4', 'pi*')")
    g.add_argument("--ssh-config", metavar="FILE", help="ssh client config to use instead of ~/.ssh/config "
                   "(as ssh -F)")
    g.add_argument("--accept-new-host-keys", action="store_true", help="trust a board whose host key is not in "
                   "known_hosts yet and add it there (OpenSSH's StrictHostKeyChecking=accept-new); a changed "
                   "key is refused anyway")
    g.add_argument("--install", action="store_true", help="where a board lacks this accel (or has another "
                   "version), build a wheel of it here and install it into a venv in the board's accel folder "
                   "(--system-site-packages, so Picamera2 stays visible); dependencies from the board's index")
    g.add_argument("--wheelhouse", metavar="DIR", help="with --install: install the dependencies from these wheels "
                   "(for the board's platform and Python) instead of the board's index, for a board without network")
    if not watch:
        g.add_argument("--one-at-a-time", action="store_true", help="run the boards one after another (they "
                       "share a power meter or a supply) instead of in parallel")


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


