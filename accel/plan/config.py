"""accel.toml, ``ACCEL_*`` environment variables and CLI flags, merged into one validated ``Config``.

Precedence (highest first): CLI flags > ``ACCEL_*`` environment > accel.toml > defaults. The file is
``--config PATH``, else ``$ACCEL_CONFIG``, else ``./accel.toml`` when it exists, else none (defaults).
Unknown keys, wrong types and impossible values raise ``ConfigError`` naming the key path and, for the
file, its line.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accel.core.errors import ConfigError, OptionError, SourceError
from accel.plan.config_file import Where, read_config_file
from accel.plan.sections import (
    SECTIONS,
    AccuracySection,
    DecodeSection,
    Key,
    ModelSection,
    OutputSection,
    PipelineSection,
    PowerSection,
    ReportSection,
    Table,
    ThermalSection,
    schema,
)
from accel.sources import SIZE, parse_source

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

_DEFAULT_DELEGATES: dict[str, dict[str, Any]] = {
    "cpu-reference": {"enabled": True},
    "xnnpack": {"enabled": True},
    "null": {"enabled": False},
}


@dataclass(frozen=True)
class Config:
    """The merged, validated configuration, frozen: one typed section per accel.toml section, and the free-form
    tables as ``Table``s. ``delegates`` maps an enabled delegate's name to its options (without ``enabled``),
    in file order; ``kernels`` and ``meters`` the ``[kernels.NAME]`` and ``[power.NAME]`` tables. ``origins``
    maps a dotted key set by the environment or a flag to where it came from ("environment ACCEL_FRAMES",
    "option --threshold"); ``where`` names any key's place."""

    model: ModelSection = ModelSection()  # the first of ``models``
    pipeline: PipelineSection = PipelineSection()
    decode: DecodeSection = DecodeSection()
    accuracy: AccuracySection = AccuracySection()
    output: OutputSection = OutputSection()
    delegates: Table = Table()
    kernels: Table = Table()
    power: PowerSection = PowerSection()
    meters: Table = Table()
    thermal: ThermalSection = ThermalSection()
    report: ReportSection = ReportSection()
    source_file: str = ""
    origins: Table = Table()
    models: tuple[ModelSection, ...] = ()  # every model of the run: [[models]], repeated --model, else [model]
    source_text: str = field(default="", repr=False, compare=False)  # the file as read (it may be a pipe)

    def to_json(self) -> dict[str, Any]:
        def plain(section: Any) -> dict[str, Any]:
            return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(section).items()}

        return {"model": plain(self.model), **({"models": [plain(m) for m in self.models]} if len(self.models) > 1
                                                else {}),
                "pipeline": plain(self.pipeline), "decode": plain(self.decode),
                "accuracy": plain(self.accuracy), "output": plain(self.output), "kernels": self.kernels.thaw(),
                "delegates": self.delegates.thaw(), "power": {**plain(self.power), **self.meters.thaw()},
                "thermal": plain(self.thermal), "report": plain(self.report), "config_file": self.source_file}

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


def _check(value: Any, spec: Key, where: str) -> Any:
    """``value`` checked against its key's kind and check, as the section holds it (a list as a tuple)."""
    kind, check, wants = spec.kind, spec.check, spec.wants
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
    return tuple(value) if isinstance(value, list) else value


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
    merged = _Merged(values, meters, listed=_model_tables(data.get("models"), where, values["model"]))
    merged.environment(env)
    merged.flags(overrides or {}, flags or {})
    delegates = merged.delegates(delegates)
    origins, listed = merged.origins, merged.models()
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    config = Config(**sections, delegates=Table(delegates), kernels=Table(kernel_options), meters=Table(meters),
                    source_file=str(chosen or ""), origins=Table(origins), source_text=text,
                    models=tuple(ModelSection(**m) for m in listed))
    _check_together(config)
    return config


@dataclass
class _Merged:
    """The file's values while the environment and the flags are merged over them."""

    values: dict[str, dict[str, Any]]
    meters: dict[str, dict[str, Any]]
    origins: dict[str, str] = field(default_factory=dict)
    only: list[str] | None = None  # --delegates / ACCEL_DELEGATES
    options: dict[tuple[str, str], Any] = field(default_factory=dict)  # delegates.NAME.KEY, where NAME is enabled
    listed: list[dict[str, Any]] = field(default_factory=list)  # [[models]], or several --model

    def environment(self, env: Mapping[str, str]) -> None:
        for name, dotted in ENV_VARS.items():
            if name in env:
                if dotted == "delegates":
                    self.only = _parse_env(name, env[name], "list[str]")
                else:
                    section, key = dotted.split(".")
                    spec = schema(section)[key]
                    self.values[section][key] = _check(_parse_env(name, env[name], spec.kind), spec,
                                                       f"environment {name}")
                self.origins[dotted] = f"environment {name}"

    def flags(self, overrides: Mapping[str, Any], flags: Mapping[str, str]) -> None:
        for dotted, value in overrides.items():
            if value is None:
                continue
            flag = flags.get(dotted) or "--" + dotted.rsplit(".", 1)[-1].replace("_", "-")
            self.origins[dotted] = f"option {flag}"
            if dotted == "delegates":
                self.only = list(value)
            elif dotted == "models":  # several --model (with their --labels): [(path, labels or ""), ...]
                model = self.values["model"]
                self.listed = [{**model, "path": p, "labels": lab or model["labels"]} for p, lab in value]
            elif dotted.startswith("delegates."):  # a delegate option: delegates.NAME.KEY (--threads)
                _, name, key = dotted.split(".")
                self.options[name, key] = value
            elif dotted.count(".") == 2:  # a meter option: power.NAME.KEY (--power-command)
                _, name, key = dotted.split(".")
                self.meters.setdefault(name, {})[key] = value
            else:
                section, key = dotted.split(".")
                self.values[section][key] = _check(value, schema(section)[key], self.origins[dotted])

    def delegates(self, tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The enabled delegates' tables: --delegates' selection, with the options flags set on them."""
        if self.only is not None:
            tables = {n: dict(tables.get(n, {})) for n in self.only}
        for (name, key), value in self.options.items():
            if name in tables:
                tables[name][key] = value
            else:
                del self.origins[f"delegates.{name}.{key}"]
        return tables

    def models(self) -> list[dict[str, Any]]:
        """The run's models: [[models]] or several --model, unless [model]'s path was set by the environment
        or one --model (then that is the one model); [model] otherwise."""
        one = not self.listed or any(k.startswith("model.path") for k in self.origins)
        given = [self.values["model"]] if one else self.listed
        origin = self.origins.get("model.path" if one else "models", "[[models]] path" if self.listed else
                                  "[model] path")
        listed = [{**m, "path": path} for m in given for path in model_paths(m["path"], origin)]
        self.values["model"] = listed[0]
        return listed


def model_paths(given: str, origin: str) -> list[str]:
    """The model files one path names: itself, or every ``.tflite`` in a folder, or the ``.tflite`` files a
    glob matches (a path that exists is taken as it is, brackets and all), sorted by name."""
    path = Path(given).expanduser()
    if not given or path.exists() and not path.is_dir():
        return [given]
    if path.is_dir():
        found, what = sorted(p for p in path.iterdir() if p.suffix.lower() == ".tflite" and p.is_file()), "folder"
    elif any(c in given for c in "*?["):
        found, what = sorted(p for p in map(Path, glob.glob(str(path), recursive=True))
                             if p.suffix.lower() == ".tflite" and p.is_file()), "glob"
    else:
        return [given]  # a missing file: the model reader says so, naming it
    if not found:
        raise ConfigError(f"{origin}: the {what} {given!r} {'holds' if what == 'folder' else 'matches'} no .tflite "
                          "file; give a model file, a folder holding .tflite models, or a glob such as "
                          "'models/*.tflite'")
    return [str(p) for p in found]


def _sections(data: dict[str, Any], where: Where) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every typed section's values (defaults filled in), and the ``[power.NAME]`` meter tables."""
    known_sections = [*SECTIONS, "models", "delegates", "kernels"]
    for section in data:
        if section not in known_sections:
            raise ConfigError(f"{where(section)}: unknown section; known: {', '.join(known_sections)}")
    values: dict[str, dict[str, Any]] = {}
    meters: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        keys = schema(section)
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where(section)}: expected a table [{section}]")
        if section == "power":  # [power.NAME] tables hold a meter's own options (checked by the meter)
            meters = {k: dict(v) for k, v in table.items() if isinstance(v, dict)}
            table = {k: v for k, v in table.items() if not isinstance(v, dict)}
        for key in table:
            if key not in keys:
                raise ConfigError(f"{where(section, key)}: unknown key; known: {', '.join(keys)}")
        values[section] = {k: _check(table[k], spec, where(section, k)) if k in table else spec.default
                           for k, spec in keys.items()}
    return values, meters


def _check_together(config: Config) -> None:
    """Keys that are fine alone and impossible together: a frame size over ``max_pixels``, a measuring time no
    variant can finish within its timeout."""
    p = config.pipeline
    sizes = [("source_size", p.source_size)]
    try:
        kind, target = parse_source(p.source)
    except SourceError:
        kind, target = "", ""  # said, with its line, where the source is read
    if kind == "synthetic":
        sizes.append(("source", target))
    for key, size in sizes:
        found = SIZE.match(size.strip())
        if not found:
            continue
        w, h = int(found.group(1)), int(found.group(2))
        if w < 1 or h < 1 or w * h > p.max_pixels:
            wants = "each side at least 1" if w < 1 or h < 1 else \
                f"at most pipeline.max_pixels = {p.max_pixels:,} pixels; raise [pipeline] max_pixels to allow it"
            raise ConfigError(f"{config.where('pipeline', key)}: {w}x{h} is {w * h:,} pixels, expected {wants}")
    if config.thermal.sustained_s == 0 and p.seconds >= p.timeout_s:
        raise ConfigError(f"{config.where('pipeline', 'seconds')}: {p.seconds:g} s of measuring cannot finish "
                          f"within pipeline.timeout_s = {p.timeout_s:g} s; raise timeout_s or measure for less")


def _model_tables(raw: Any, where: Where, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``[[models]]`` tables (each a [model] section: a path and its own labels, family, input_range; keys
    left out are [model]'s), checked as [model] is."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(f"{where('models')}: expected [[models]] tables, each with a path")
    keys, out = schema("model"), []
    for i, table in enumerate(raw):
        for key in table:
            if key not in keys:
                raise ConfigError(f"{where('models', key)}: unknown key of model {i + 1}; known: {', '.join(keys)}")
        if not table.get("path"):
            raise ConfigError(f"{where('models')}: model {i + 1} has no path")
        out.append({**defaults, **{k: _check(v, keys[k], f"{where('models', k)} (model {i + 1})")
                                   for k, v in table.items()}})
    return out


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
