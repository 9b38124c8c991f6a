"""The command line's arguments: ``parser()`` builds the ``accel`` argument parser (every subcommand, its
flags and help texts); ``accel.cli.main`` runs what it parses."""

from __future__ import annotations

import argparse

from accel.watch.command import add_parser as add_watch_parser

__all__ = ["csv", "parser"]

_EPILOG = """precedence: command-line flags > ACCEL_* environment > accel.toml (or --config) > defaults.
exit codes: 0 ok, 1 some variant failed, 2 bad input (config, model, source), 3 backend, kernel or power meter
unavailable, 4 the result cannot be written (output path, full disk); stopped by a signal: 128 + its number
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after saving what was measured."""



def _csv_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _duration(text: str) -> float:
    """'90', '90s', '10m', '1h', '1h30m' -> seconds."""
    import re

    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or parts is None or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 10m or 1h, got {text!r}")
    h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + sec


def csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
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
    c.add_argument("--delegates", type=csv, help="only these delegates, comma-separated (e.g. xnnpack,null)")
    c.add_argument("--threads", type=_csv_ints,
                   help="thread counts for xnnpack and litert-cpu, comma-separated (e.g. 1,2,4; at most 4 per core)")
    c.add_argument("--kernels", type=csv, help="kernel sets to cross with every variant (e.g. numpy,opencv)")
    c.add_argument("--execution", type=csv, help="serial (one frame at a time: what a frame costs), pipelined "
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
    c.add_argument("--json", dest="json_path", help="write the result JSON here, reports beside it: a file path (a "
                   "symlink is followed; a folder, device or pipe is refused) (default results/<time>/result.json)")
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


