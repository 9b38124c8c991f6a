"""accel.toml, ``ACCEL_*`` environment variables and CLI flags, merged into one validated ``Config``.

Precedence (highest first): CLI flags > ``ACCEL_*`` environment > accel.toml > defaults. The file is
``--config PATH``, else ``$ACCEL_CONFIG``, else ``./accel.toml`` when it exists, else none (defaults).
Unknown keys, wrong types and impossible values raise ``ConfigError`` naming the key path and, for the
file, its line.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accel.core.errors import ConfigError, OptionError, SourceError
from accel.model import Family
from accel.plan.config_file import Where, read_config_file
from accel.sources import MAX_PIXELS, SIZE, parse_source

__all__ = ["Config", "ENV_VARS", "load_config"]

#: Environment variables and the config key each sets.
ENV_VARS = {
    "ACCEL_MODEL": "model.path",
    "ACCEL_LABELS": "model.labels",
    "ACCEL_SOURCE": "pipeline.source",
    "ACCEL_SOURCE_FPS": "pipeline.source_fps",
    "ACCEL_FRAMES": "pipeline.frames",
    "ACCEL_SECONDS": "pipeline.seconds",
    "ACCEL_WARMUP": "pipeline.warmup",
    "ACCEL_KERNELS": "pipeline.kernels",
    "ACCEL_EXECUTION": "pipeline.execution",
    "ACCEL_DELEGATES": "delegates",
    "ACCEL_OUTPUT_DIR": "output.dir",
    "ACCEL_DATASET": "accuracy.dataset",
    "ACCEL_POWER_METER": "power.meter",
}

_DAY_S, _WEEK_S = 86_400, 604_800


def _range(lo: float, hi: float, note: str = "") -> tuple[Any, str]:
    """A check that a number lies in lo..hi, and what it wants, for ``_SCHEMA``."""
    return (lambda v: lo <= v <= hi), f"{lo}..{hi}" + (f" ({note})" if note else "")


# key -> (type, default, check, what the check wants). Types: int, float, bool, str, list[str], list[int],
# list[float]. Numbers have an upper bound too: a value past it is a typo or an attack, not a plan, and would
# otherwise run silently until the variant's timeout (or allocate until the machine gives up).
_SCHEMA: dict[str, dict[str, tuple[str, Any, Any, str]]] = {
    "model": {
        "path": ("str", "", None, ""),
        "labels": ("str", "", None, ""),
        "family": ("str", "auto", ("auto", *(f.value for f in Family)), ""),
        "input_range": ("str", "auto", ("auto", "0,1", "-1,1", "0,255"), ""),
    },
    "pipeline": {
        "source": ("str", "synthetic", None, ""),
        "source_format": ("str", "auto", ("auto", "RGB", "RGB888", "BGR888", "XRGB8888", "XBGR8888",
                                          "YUV420", "NV12"), ""),
        "source_size": ("str", "auto", lambda v: v in ("auto", "native") or re.fullmatch(r"[1-9]\d*x[1-9]\d*", v),
                        "'auto', 'native' or WIDTHxHEIGHT (each at least 1)"),
        "source_fps": ("float", 0.0, lambda v: 0 <= v <= 10_000, "frames per second >= 0, at most 10000 "
                       "(0: the source's own rate)"),
        "buffer_count": ("int", 4, *_range(1, 256)),
        "max_pixels": ("int", MAX_PIXELS, *_range(1, 1 << 40, "pixels a frame or picture may have")),
        "frames": ("int", 100, *_range(1, 10_000_000, "for longer runs set thermal.sustained_s")),
        "seconds": ("float", 2.0, *_range(0, _DAY_S, "for longer runs set thermal.sustained_s")),
        "warmup": ("int", 10, *_range(0, 1_000_000)),
        "live": ("bool", False, None, ""),
        "resize": ("str", "auto", ("auto", "stretch", "letterbox"), ""),
        "fill": ("int", 114, lambda v: 0 <= v <= 255, "0..255"),
        "score_threshold": ("float", 0.3, lambda v: 0 <= v <= 1, "0..1"),
        "top_k": ("int", 5, *_range(1, 10_000)),
        "kernels": ("list[str]", ["opencv"], lambda v: len(v) >= 1, "a non-empty list"),
        "execution": ("list[str]", ["serial"], lambda v: len(v) >= 1 and len(set(v)) == len(v)
                      and all(x in ("serial", "pipelined") for x in v), "serial, pipelined or both (a list)"),
        "queue_depth": ("int", 2, lambda v: 1 <= v <= 64, "1..64"),
        "inference_streams": ("int", 1, lambda v: 1 <= v <= 16, "1..16"),
        "seed": ("int", 0, *_range(0, 2**63 - 1)),
        "timeout_s": ("float", 600.0, lambda v: 0 < v <= _WEEK_S, f"0 < value <= {_WEEK_S} (a week)"),
    },
    "decode": {
        "iou_threshold": ("float", 0.5, lambda v: 0 < v <= 1, "0 < value <= 1"),
        "max_detections": ("int", 100, *_range(1, 100_000)),
        "box_scales": ("list[float]", [], lambda v: len(v) == 0 or (len(v) == 4 and min(v) > 0),
                       "[] (auto) or four positive numbers [y, x, h, w]"),
        "box_order": ("str", "auto", ("auto", "yxhw", "xywh", "xyxy", "yxyx"), ""),
        "score_activation": ("str", "auto", ("auto", "sigmoid", "softmax", "none"), ""),
        "background_class": ("str", "auto", ("auto", "yes", "no"), ""),
        "anchors": ("str", "auto", ("auto", "model", "generate"), ""),
        "anchor_min_scale": ("float", 0.2, lambda v: 0 < v <= 1, "0 < value <= 1"),
        "anchor_max_scale": ("float", 0.95, lambda v: 0 < v <= 1, "0 < value <= 1"),
        "anchor_aspect_ratios": ("list[float]", [1.0, 2.0, 0.5, 3.0, 0.3333],
                                 lambda v: 1 <= len(v) <= 64 and min(v) > 0, "1 to 64 positive numbers"),
        "anchor_feature_maps": ("list[int]", [], lambda v: len(v) <= 16 and all(1 <= x <= 4096 for x in v),
                                "up to 16 sizes 1..4096"),
        "anchor_reduce_lowest": ("bool", True, None, ""),
        "anchor_interpolated_scale": ("float", 1.0, *_range(0, 100)),
    },
    "accuracy": {
        "dataset": ("str", "", None, ""),
        "split": ("str", "val", lambda v: bool(v.strip()), "a split of the dataset's data.yaml: val, train, test"),
        "eval_score_threshold": ("float", 0.01, lambda v: 0 <= v <= 1, "0..1"),
        "iou": ("float", 0.5, lambda v: 0 < v <= 1, "0 < value <= 1"),
        "tie_margin": ("float", 0.01, lambda v: 0 <= v <= 1, "0..1"),
    },
    "output": {
        "dir": ("str", "results", None, ""),
        "json": ("str", "", None, ""),
        "save_detections": ("int", 20, *_range(0, 10_000_000)),
        "formats": ("list[str]", ["md", "csv", "html"],
                    lambda v: all(f in ("md", "csv", "html") for f in v), "a list of md, csv, html"),
        "preview_frames": ("int", 4, *_range(0, 1000)),
    },
    "power": {
        "meter": ("str", "auto", lambda v: bool(re.fullmatch(r"[\w.-]+", v)), "auto, none or a meter name"),
        "rate_hz": ("float", 10.0, lambda v: 0 < v <= 1000, "0 < value <= 1000"),
        "idle_s": ("float", 3.0, *_range(0, _DAY_S)),
    },
    "thermal": {
        "cool_down_c": ("float", 0.0, lambda v: 0 <= v <= 150, ">= 0 and <= 150 (0: do not wait for a temperature)"),
        "pause_s": ("float", 0.0, *_range(0, _DAY_S)),
        "max_wait_s": ("float", 300.0, *_range(0, _DAY_S)),
        "sustained_s": ("float", 0.0, lambda v: 0 <= v <= _WEEK_S, f">= 0 and <= {_WEEK_S} (a week; 0: off)"),
    },
}
_DEFAULT_DELEGATES: dict[str, dict[str, Any]] = {
    "cpu-reference": {"enabled": True},
    "xnnpack": {"enabled": True},
    "null": {"enabled": False},
}


@dataclass(frozen=True)
class Config:
    """The merged, validated configuration. ``delegates`` maps an enabled delegate's name to its options
    (without ``enabled``), in file order. ``origins`` maps a dotted key set by the environment or a flag to
    where it came from ("environment ACCEL_FRAMES", "option --threshold"); ``where`` names any key's place."""

    model: dict[str, Any]
    pipeline: dict[str, Any]
    decode: dict[str, Any]
    accuracy: dict[str, Any]
    output: dict[str, Any]
    delegates: dict[str, dict[str, Any]]
    kernels: dict[str, dict[str, Any]] = field(default_factory=dict)  # [kernels.NAME] constructor options
    power: dict[str, Any] = field(default_factory=dict)
    meters: dict[str, dict[str, Any]] = field(default_factory=dict)  # [power.NAME] meter options
    thermal: dict[str, Any] = field(default_factory=dict)
    source_file: str = ""
    origins: dict[str, str] = field(default_factory=dict)
    source_text: str = field(default="", repr=False, compare=False)  # the file as read (it may be a pipe)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "pipeline": self.pipeline, "decode": self.decode,
                "accuracy": self.accuracy, "output": self.output, "kernels": self.kernels,
                "delegates": self.delegates, "power": {**self.power, **self.meters}, "thermal": self.thermal,
                "config_file": self.source_file}

    def where(self, section: str, key: str | None = None) -> str:
        """Where ``section.key`` was set, for messages: the flag or environment variable that set it, else the
        file and line ('accel.toml: delegates.xnnpack.threads (line 12)'), else the dotted key alone."""
        dotted = f"{section}.{key}" if key else section
        if dotted in self.origins:
            return self.origins[dotted]
        return Where(Path(self.source_file) if self.source_file else None, self.source_text)(section, key)

    def locate(self, exc: OptionError) -> ConfigError:
        """A plugin's ``OptionError`` ('delegates.xnnpack.threads: ...') as a ``ConfigError`` naming its place."""
        section = exc.where.removesuffix(f".{exc.key}") if exc.key else exc.where
        return ConfigError(f"{self.where(section, exc.key)}: {exc.problem}")


def _check(value: Any, spec: tuple[str, Any, Any, str], where: str) -> Any:
    kind, _, check, wants = spec
    if kind == "list[str]" and isinstance(value, str):  # execution = "pipelined": a list of one
        value = [value]
    ok_type = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "list[int]": isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        "list[float]": isinstance(value, list)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value),
    }[kind]
    if not ok_type:
        names = {"list[str]": "a list of strings", "list[int]": "a list of integers",
                 "list[float]": "a list of numbers"}
        raise ConfigError(f"{where}: expected {names.get(kind, kind)}, got {value!r}")
    items = value if isinstance(value, list) else [value]
    if kind in ("float", "list[float]") and not all(math.isfinite(v) for v in items):
        raise ConfigError(f"{where}: expected {'finite numbers' if kind != 'float' else 'a finite number'}, "
                          f"got {value!r}")
    if kind in ("str", "list[str]") and any("\0" in v for v in items):
        raise ConfigError(f"{where}: expected text without NUL characters, got {value!r}")
    if kind == "float":
        value = float(value)
    elif kind == "list[float]":
        value = [float(v) for v in value]
    if isinstance(check, tuple):
        if value not in check:
            raise ConfigError(f"{where}: expected one of {', '.join(check)}, got {value!r}")
    elif check is not None and not check(value):
        raise ConfigError(f"{where}: expected {wants}, got {value!r}")
    return value


def _parse_env(name: str, raw: str, kind: str) -> Any:
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError:
        raise ConfigError(f"environment {name}: expected {kind}, got {raw!r}") from None
    if kind == "list[str]":
        return [p.strip() for p in raw.split(",") if p.strip()]
    return raw


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None, flags: Mapping[str, str] | None = None) -> Config:
    """Merge defaults, the config file, the environment and ``overrides`` (dotted keys from CLI flags,
    e.g. ``{"pipeline.frames": 300, "delegates": ["xnnpack"]}``). ``flags`` names the flag that sets a key,
    for messages, where it is not ``--`` and the key's last part (``{"pipeline.score_threshold": "--threshold"}``)."""
    env = os.environ if env is None else env
    chosen = path or env.get("ACCEL_CONFIG") or ("accel.toml" if Path("accel.toml").is_file() else None)
    data: dict[str, Any] = {}
    text = ""
    if chosen:
        data, text = read_config_file(Path(chosen))
    where = Where(Path(chosen) if chosen else None, text)
    values, meters = _sections(data, where)
    delegates = _delegate_tables(data.get("delegates", {}), where)
    kernel_options = data.get("kernels", {})
    if not isinstance(kernel_options, dict) or not all(isinstance(v, dict) for v in kernel_options.values()):
        raise ConfigError(f"{where('kernels')}: expected tables like [kernels.opencl]")
    origins: dict[str, str] = {}
    only: list[str] | None = None
    options: dict[tuple[str, str], Any] = {}  # delegates.NAME.KEY: for the delegate, where it is enabled
    for name, dotted in ENV_VARS.items():
        if name in env:
            if dotted == "delegates":
                only = _parse_env(name, env[name], "list[str]")
            else:
                section, key = dotted.split(".")
                spec = _SCHEMA[section][key]
                values[section][key] = _check(_parse_env(name, env[name], spec[0]), spec, f"environment {name}")
            origins[dotted] = f"environment {name}"
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        flag = (flags or {}).get(dotted) or "--" + dotted.rsplit(".", 1)[-1].replace("_", "-")
        origins[dotted] = f"option {flag}"
        if dotted == "delegates":
            only = list(value)
        elif dotted.startswith("delegates."):  # a delegate option: delegates.NAME.KEY (--threads)
            _, name, key = dotted.split(".")
            options[name, key] = value
        elif dotted.count(".") == 2:  # a meter option: power.NAME.KEY (--power-command)
            _, name, key = dotted.split(".")
            meters.setdefault(name, {})[key] = value
        else:
            section, key = dotted.split(".")
            values[section][key] = _check(value, _SCHEMA[section][key], origins[dotted])
    if only is not None:
        delegates = {n: dict(delegates.get(n, {})) for n in only}
    for (name, key), value in options.items():
        if name in delegates:
            delegates[name][key] = value
        else:
            del origins[f"delegates.{name}.{key}"]
    config = Config(values["model"], values["pipeline"], values["decode"], values["accuracy"], values["output"],
                    delegates, {k: dict(v) for k, v in kernel_options.items()}, values["power"], meters,
                    values["thermal"], str(chosen or ""), origins, text)
    _check_together(config)
    return config


def _sections(data: dict[str, Any], where: Where) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every ``_SCHEMA`` section's values (defaults filled in), and the ``[power.NAME]`` meter tables."""
    known_sections = [*_SCHEMA, "delegates", "kernels"]
    for section in data:
        if section not in known_sections:
            raise ConfigError(f"{where(section)}: unknown section; known: {', '.join(known_sections)}")
    values: dict[str, dict[str, Any]] = {}
    meters: dict[str, dict[str, Any]] = {}
    for section, keys in _SCHEMA.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where(section)}: expected a table [{section}]")
        if section == "power":  # [power.NAME] tables hold a meter's own options (checked by the meter)
            meters = {k: dict(v) for k, v in table.items() if isinstance(v, dict)}
            table = {k: v for k, v in table.items() if not isinstance(v, dict)}
        for key in table:
            if key not in keys:
                raise ConfigError(f"{where(section, key)}: unknown key; known: {', '.join(keys)}")
        values[section] = {k: _check(table[k], spec, where(section, k)) if k in table else spec[1]
                           for k, spec in keys.items()}
    return values, meters


def _check_together(config: Config) -> None:
    """Keys that are fine alone and impossible together: a frame size over ``max_pixels``, a measuring time no
    variant can finish within its timeout."""
    p = config.pipeline
    sizes = [("source_size", p["source_size"])]
    try:
        kind, target = parse_source(p["source"])
    except SourceError:
        kind, target = "", ""  # said, with its line, where the source is read
    if kind == "synthetic":
        sizes.append(("source", target))
    for key, size in sizes:
        found = SIZE.match(size.strip())
        if not found:
            continue
        w, h = int(found.group(1)), int(found.group(2))
        if w < 1 or h < 1 or w * h > p["max_pixels"]:
            wants = "each side at least 1" if w < 1 or h < 1 else \
                f"at most pipeline.max_pixels = {p['max_pixels']:,} pixels; raise [pipeline] max_pixels to allow it"
            raise ConfigError(f"{config.where('pipeline', key)}: {w}x{h} is {w * h:,} pixels, expected {wants}")
    if config.thermal["sustained_s"] == 0 and p["seconds"] >= p["timeout_s"]:
        raise ConfigError(f"{config.where('pipeline', 'seconds')}: {p['seconds']:g} s of measuring cannot finish "
                          f"within pipeline.timeout_s = {p['timeout_s']:g} s; raise timeout_s or measure for less")


def _delegate_tables(raw: Any, where: Where) -> dict[str, dict[str, Any]]:
    """Enabled delegates and their options. Options are checked by each delegate's ``variants``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where('delegates')}: expected tables like [delegates.xnnpack]")
    merged = {name: dict(opts) for name, opts in _DEFAULT_DELEGATES.items()}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where('delegates', name)}: expected a table [delegates.{name}]")
        if "enabled" in table and not isinstance(table["enabled"], bool):
            raise ConfigError(f"{where('delegates.' + name, 'enabled')}: expected true or false, "
                              f"got {table['enabled']!r}")
        merged[name] = {"enabled": True, **table} if name not in merged else {**merged[name], **table}
    return {n: {k: v for k, v in t.items() if k != "enabled"} for n, t in merged.items() if t.get("enabled")}
