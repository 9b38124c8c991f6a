"""The run flags, declared once: every option of ``accel compare`` that says what runs or how it is measured,
with its help text, its argparse arguments and the config keys it sets. ``accel compare`` adds them all,
``accel watch`` the ones marked ``watch`` (what runs; it is always live, so a help text's "with --live: " is
dropped there). ``overrides`` turns parsed arguments into the dotted keys ``load_config`` merges over the
environment and the file, and ``FLAG_OF`` names the flag that set a key in messages."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from accel.core.errors import ConfigError

__all__ = ["FLAG_OF", "RUN_FLAGS", "Flag", "add_flags", "csv", "csv_ints", "duration", "overrides"]


def csv(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [v.strip() for v in text.split(",") if v.strip()]


def csv_ints(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def duration(text: str) -> float:
    """'90', '90s', '10m', '1h', '1h30m' -> seconds."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or parts is None or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 10m or 1h, got {text!r}")
    h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + sec


@dataclass(frozen=True)
class Flag:
    """One option: its name, the config keys it sets (none for options that are not config), its help, the
    rest of its ``add_argument`` keywords, and whether ``accel watch`` has it too."""

    name: str
    keys: tuple[str, ...]
    help: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # add_argument's other keywords
    watch: bool = False

    @property
    def dest(self) -> str:
        return str(self.kwargs.get("dest") or self.name[2:].replace("-", "_"))

    def add_to(self, parser: argparse.ArgumentParser, *, live: bool = False) -> None:
        text = self.help.removeprefix("with --live: ") if live else self.help
        parser.add_argument(self.name, help=text, **self.kwargs)


_THREADS = ("delegates.xnnpack.threads", "delegates.litert-cpu.threads")  # where the delegate is enabled

RUN_FLAGS: tuple[Flag, ...] = (
    Flag("--model", ("model.path",), "the .tflite model (default: the embedded default detector); a folder "
         "(every .tflite in it) or a quoted glob ('models/yolo*.tflite') names several; repeat it, or give several "
         "files after it, to compare several models on the same frames (a sweep)",
         {"action": "append", "nargs": "+", "metavar": "MODEL"}, watch=True),
    Flag("--labels", ("model.labels",), "labels file: one name per line, or 'ID NAME' lines; with several "
         "--model, one --labels per --model, in the same order, for every model it names (default: each "
         "model's own)",
         {"action": "append", "metavar": "LABELS"}, watch=True),
    Flag("--source", ("pipeline.source",), "synthetic[:WxH] | image:PATH (file or folder) | video:PATH | v4l2:N | "
         "picamera2[:N] (default: synthetic)", watch=True),
    Flag("--source-format", ("pipeline.source_format",), "pixel format the source delivers: RGB, RGB888 (B,G,R "
         "in memory), BGR888, XRGB8888, XBGR8888, YUV420, NV12 (default: the source's own)", watch=True),
    Flag("--source-size", ("pipeline.source_size",), "capture size WIDTHxHEIGHT, 'native' or 'auto' (default)",
         watch=True),
    Flag("--source-fps", ("pipeline.source_fps",), "with --live: the rate synthetic, image and video sources "
         "deliver at, dropping what the pipeline cannot take (default 0: synthetic 30, a video its file's rate; "
         "cameras their own)", {"type": float, "metavar": "FPS"}, watch=True),
    Flag("--frames", ("pipeline.frames",), "measured frames per variant, at least (default 100)", {"type": int}),
    Flag("--seconds", ("pipeline.seconds",), "measured seconds per variant, at least (default 2)", {"type": float}),
    Flag("--warmup", ("pipeline.warmup",), "unmeasured warm-up frames per variant (default 10)", {"type": int}),
    Flag("--delegates", ("delegates",), "only these delegates, comma-separated (e.g. xnnpack,null)",
         {"type": csv}, watch=True),
    Flag("--threads", _THREADS, "thread counts for xnnpack and litert-cpu, comma-separated (e.g. 1,2,4; at most "
         "4 per core)", {"type": csv_ints}, watch=True),
    Flag("--kernels", ("pipeline.kernels",), "kernel sets to cross with every variant (e.g. numpy,opencv)",
         {"type": csv}, watch=True),
    Flag("--execution", ("pipeline.execution",), "serial (one frame at a time: what a frame costs), pipelined "
         "(stages as concurrent threads: what a camera app gets) or serial,pipelined (default serial)",
         {"type": csv}),
    Flag("--resize", ("pipeline.resize",), "how frames are fitted to the input (auto: letterbox for YOLO, "
         "stretch otherwise)", {"choices": ["auto", "stretch", "letterbox"]}, watch=True),
    Flag("--threshold", ("pipeline.score_threshold",), "detection score threshold (default 0.3)",
         {"type": float}, watch=True),
    Flag("--live", ("pipeline.live",), "each variant pulls frames from the source itself (capture cost counts "
         "in its FPS)", {"action": "store_true", "default": None}),
    Flag("--dataset", ("accuracy.dataset",), "a COCO dataset (folder or instances JSON) or an Ultralytics YOLO "
         "dataset (folder or data.yaml; [accuracy] split, default val): every variant's accuracy (AP, AP50, "
         "AP75, precision, recall) on its images"),
    Flag("--power-meter", ("power.meter",), "power meter: auto (the first found: pi5-pmic, hwmon, rapl, "
         "battery), none, pi5-pmic, hwmon, rapl, battery, command, csv, estimate (default auto)", watch=True),
    Flag("--power-command", ("power.command.command",), "with --power-meter command: a shell command that prints "
         "watts", watch=True),
    Flag("--power-log", ("power.csv.path",), "with --power-meter csv: an external meter's CSV log, aligned by "
         "wall clock", watch=True),
    Flag("--sustained", ("thermal.sustained_s",), "run each variant this long (e.g. 90s, 10m, 1h): FPS and "
         "temperature over time, first vs last minute, time until throttling",
         {"type": duration, "metavar": "DURATION"}),
    Flag("--cool-down", ("thermal.cool_down_c",), "before each variant, wait until the SoC is below this "
         "temperature (thermal.max_wait_s)", {"type": float, "metavar": "CELSIUS"}),
    Flag("--target-fps", ("report.target_fps",), "the rate the application needs: the reports name the most "
         "accurate configuration (model, variant, kernels, execution) that sustains it here (with --dataset; "
         "without one, the fastest, ranked by speed)", {"type": float, "metavar": "FPS"}),
    Flag("--json", (), "write the result JSON here, reports beside it: a file path (a symlink is followed; a "
         "folder, device or pipe is refused) (default results/<time>/result.json)", {"dest": "json_path"}),
    Flag("--config", (), "config file (default: $ACCEL_CONFIG, else ./accel.toml if present)", watch=True),
    Flag("--in-process", (), "run variants in this process (no isolation)", {"action": "store_true"}),
)

#: The flag that sets each config key, for messages ("option --threshold").
FLAG_OF: dict[str, str] = {key: flag.name for flag in RUN_FLAGS for key in flag.keys} | {"models": "--model"}

# An option that implies its meter; naming another meter beside it is a contradiction.
_IMPLIES_METER = (("--power-command", "command"), ("--power-log", "csv"))


def add_flags(parser: argparse.ArgumentParser, *, watch: bool = False) -> None:
    """Add the run flags to ``parser``: all of them for compare, the ``watch`` ones for ``accel watch``."""
    for flag in RUN_FLAGS:
        if flag.watch or not watch:
            flag.add_to(parser, live=watch)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted config keys the given flags set (``load_config``'s overrides); a flag left out sets nothing.
    Raises ``ConfigError`` for flags that contradict each other and thread counts below 1."""
    out: dict[str, Any] = {}
    groups, labels = getattr(args, "model", None) or [], getattr(args, "labels", None) or []
    if len(labels) > max(len(groups), 1) or (len(groups) > 1 and labels and len(labels) != len(groups)):
        raise ConfigError(f"option --labels: {len(labels)} labels files for {len(groups)} --model options; give one "
                          "--labels per --model, in the same order, or none (each model's own labels)")
    # each --model may name several files (the shell's expansion of a glob); its --labels is theirs
    pairs = [(m, labels[i] if labels else "") for i, group in enumerate(groups) for m in group]
    models = [m for m, _ in pairs]
    threads = getattr(args, "threads", None)
    if threads is not None and (not threads or min(threads) < 1):
        raise ConfigError(f"option --threads: expected integers >= 1, got {threads}")
    for flag in RUN_FLAGS:
        value = getattr(args, flag.dest, None)
        if value is not None and flag.name not in ("--model", "--labels"):
            out.update(dict.fromkeys(flag.keys, value))
    if len(models) > 1:
        out["models"] = pairs
    else:
        out.update({k: v[0] for k, v in (("model.path", models), ("model.labels", labels)) if v})
    meter = getattr(args, "power_meter", None)
    for name, implied in _IMPLIES_METER:
        if getattr(args, name[2:].replace("-", "_"), None):
            if (meter or implied) != implied:
                raise ConfigError(f"option {name} needs --power-meter {implied}, not {meter!r}")
            out["power.meter"] = implied
    return out
