"""The main job: run every configured (delegate variant x kernel set) on the same frames.

``plan`` expands the config into runs (and records backends that cannot run here, with why);
``compare`` captures the frames once, runs each variant in its own process, and writes the result
document after every variant.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accel.agreement import agreement
from accel.config import Config, option_where
from accel.delegates import REGISTRY as DELEGATES
from accel.delegates import Variant, get_delegate
from accel.errors import AccelError, ConfigError, DelegateError, KernelError, SourceError
from accel.frames import Frame, PixelFormat
from accel.instruments import Instruments
from accel.machine import machine_info
from accel.model import ModelInfo, default_model_path, find_labels, load_labels, load_model
from accel.pipeline import Settings, failure, get_kernels, run_variant
from accel.results import ResultWriter, default_result_path
from accel.worker import run_isolated

__all__ = ["Plan", "compare", "plan"]

_REPLAY_BUDGET_BYTES = 512 << 20  # distinct replay frames kept in memory; beyond that they repeat
Event = Callable[[str, dict[str, Any]], None]


@dataclass
class Plan:
    runs: list[tuple[Variant, str]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def plan(config: Config) -> Plan:
    """The runs a config asks for. Unknown names are config errors; unavailable backends are skipped
    with their reason (they appear in the results as 'unavailable')."""
    out = Plan()
    kernel_sets = []
    for name in config.pipeline["kernels"]:
        try:
            get_kernels(name, config.kernels.get(name))
            kernel_sets.append(name)
        except KernelError as exc:
            if "unknown kernel set" in str(exc):
                raise ConfigError(f"pipeline.kernels: {exc}") from None
            out.skipped.append(failure(Variant(f"kernels:{name}"), name, exc, "unavailable"))
    if not config.delegates:
        raise ConfigError("no delegate is enabled: set enabled = true in a [delegates.NAME] table or pass --delegates")
    for name, options in config.delegates.items():
        try:
            delegate = get_delegate(name)
        except DelegateError as exc:
            if "unknown delegate" in str(exc):
                raise ConfigError(f"delegates: {exc}") from None
            raise
        try:
            variants = delegate.variants(options)
        except ConfigError as exc:
            raise ConfigError(_locate(config, name, str(exc))) from None
        available = delegate.probe()
        for variant in variants:
            for kernels in kernel_sets:
                if available.ok:
                    out.runs.append((variant, kernels))
                else:
                    out.skipped.append(failure(variant, kernels, available.reason, "unavailable"))
    return out


def _locate(config: Config, delegate: str, message: str) -> str:
    """Put the file and line in front of a delegate's option error ('delegates.x.threads: ...')."""
    m = re.match(rf"delegates\.{re.escape(delegate)}(?:\.(\w+))?: (.*)", message)
    if not m:
        return message
    key = m.group(1)
    if key is None:
        known = re.search(r"unknown option '(\w+)'", m.group(2))
        key = known.group(1) if known else None
    return f"{option_where(config, delegate, key)}: {m.group(2)}"


def _source_spec(config: Config, model: ModelInfo) -> Any:
    """Source size: ``auto`` is 640x480 for synthetic scenes, the model's input size for the Pi camera's
    lores stream (how Picamera2's own TFLite examples size it), and the native size otherwise."""
    from accel.sources import SourceSpec, parse_source

    p = config.pipeline
    kind, target = parse_source(p["source"])
    size = p["source_size"]
    if kind == "synthetic" and re.fullmatch(r"\d+x\d+", target):
        size = target
    elif size == "auto":
        h, w = model.input_size
        size = {"synthetic": "640x480", "picamera2": f"{w}x{h}"}.get(kind, "native")
    width, height = (int(v) for v in size.split("x")) if size != "native" else (None, None)
    fmt = None if p["source_format"] == "auto" else PixelFormat.parse(p["source_format"])
    return SourceSpec(kind=kind, target=target, width=width, height=height, format=fmt, seed=p["seed"], loop=True)


def _capture(spec: Any, frames: int) -> tuple[list[Frame], dict[str, Any]]:
    from accel.sources import open_source

    return _capture_from(open_source(spec), frames)


def _capture_from(source: Any, frames: int) -> tuple[list[Frame], dict[str, Any]]:
    """Read the replay frames: ``frames`` of them, or as many as fit the replay memory budget."""
    from accel.sources import capture

    with source:
        first = capture(source, 1)
        keep = max(1, min(frames, _REPLAY_BUDGET_BYTES // max(1, first[0].data.nbytes)))
        rest = capture(source, keep - 1) if keep > 1 else []
        described = source.describe()
    return first + rest, described


def _check_labels(labels: tuple[str, ...], model: ModelInfo, config: Config) -> None:
    n = model.num_classes
    if labels and n is not None and len(labels) != n:
        where = config.model["labels"] or "the default labels file"
        raise ConfigError(f"labels file {where} has {len(labels)} names but {model.path.name} has {n} classes "
                          "(a labels file with a background line '???' or 'background' first is counted without it)")


def _labels(config: Config, model: ModelInfo) -> tuple[tuple[str, ...], str]:
    """The labels file given, else labels found with the model (embedded, or beside it)."""
    if config.model["labels"]:
        return load_labels(config.model["labels"]), config.model["labels"]
    return find_labels(model.path, model.num_classes)

def compare(config: Config, *, on_event: Event | None = None, isolate: bool = True,
            result_path: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """Run the comparison the config describes. Returns the result document and where it was written."""
    emit = on_event or (lambda kind, data: None)
    the_plan = plan(config)
    model_path = Path(config.model["path"]) if config.model["path"] else default_model_path()
    model = load_model(model_path, config.model["family"])
    labels, labels_from = _labels(config, model)
    p = config.pipeline
    settings = Settings(frames=p["frames"], seconds=p["seconds"], warmup=p["warmup"],
                        score_threshold=p["score_threshold"], top_k=p["top_k"], resize=p["resize"], fill=p["fill"],
                        input_range=config.model["input_range"], save_detections=config.output["save_detections"],
                        labels=labels, timeout_s=p["timeout_s"],
                        iou_threshold=config.decode["iou_threshold"], max_detections=config.decode["max_detections"],
                        decode=dict(config.decode), kernel_options=config.kernels,
                        extra={"register": DELEGATES.by_hand()})
    _check_labels(settings.labels, model, config)
    dataset, classes = None, {}
    if config.accuracy["dataset"]:
        from accel.dataset import DatasetSource, category_map, load_dataset

        if p["live"]:
            raise ConfigError("--dataset replays the dataset's images: it cannot be combined with --live")
        dataset = load_dataset(config.accuracy["dataset"])
        classes = category_map(settings.labels, model.num_classes, dataset.categories)
        # Every image is decoded down to the evaluation threshold and kept, so AP sees the low-score tail.
        settings = replace(settings, score_threshold=min(p["score_threshold"], config.accuracy["eval_score_threshold"]),
                           save_detections=len(dataset.images), frames=max(p["frames"], len(dataset.images)))
    if config.thermal["sustained_s"] > 0:  # every variant runs for the duration, whatever the frame count
        sustained = config.thermal["sustained_s"]
        settings = replace(settings, frames=1, seconds=sustained, timeout_s=max(settings.timeout_s, sustained + 300))
    instruments = Instruments(config, emit)  # an explicitly named meter that is missing fails here, before any run
    spec = _source_spec(config, model)
    emit("capture", {"source": p["source"], "frames": p["frames"], "live": p["live"]})
    frames: list[Frame]
    if dataset is not None:
        frames, described = _capture_from(DatasetSource(dataset), len(dataset.images))
    elif p["live"]:
        frames, described = [], {"kind": spec.kind, "target": spec.target, "live": True}
        settings = replace(settings, live_source=spec)
    else:
        frames, described = _capture(spec, p["frames"])
    capture_ms = [round(f.capture_s * 1e3, 4) for f in frames]

    path = Path(result_path or config.output["json"] or default_result_path(config.output["dir"]))
    writer = ResultWriter(path, {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "clock": {"monotonic": instruments.clock["monotonic"], "wall": instruments.clock["wall"]},
        "machine": machine_info(),
        "model": {**model.to_json(), "labels": list(labels), "labels_from": labels_from},
        "config": config.to_json(),
        "source": {**described, "replay": not p["live"], "distinct_frames": len(frames), "capture_ms": capture_ms,
                   "saved_frames": _save_frames(frames, path.parent, config.output["preview_frames"])},
        **({"dataset": {"root": str(dataset.root), "annotations": str(dataset.annotations),
                        "images": len(dataset.images), "categories": dataset.categories,
                        "class_to_category": classes}} if dataset is not None else {}),
    })
    for record in the_plan.skipped:
        writer.add(record)
        emit("skipped", record)
    with instruments:
        _run_all(the_plan, model, frames, settings, writer, instruments, emit, isolate)
        writer.doc.update(instruments.finish(writer.doc["variants"]))
    _add_agreement(writer.doc["variants"], p["score_threshold"], config.accuracy["iou"])
    if dataset is not None:
        _add_accuracy(writer.doc["variants"], dataset, classes, p["score_threshold"])
    writer.finish(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    if config.output["formats"]:
        from accel.report import write_reports

        stem = "report" if path.name == "result.json" else path.stem
        emit("reports", {k: str(v) for k, v in write_reports(writer.doc, path.parent, config.output["formats"],
                                                              stem=stem).items()})
    return writer.doc, path


def _save_frames(frames: list[Frame], folder: Path, count: int) -> dict[str, str]:
    """A few replayed frames as PNG beside the result, for the reports' detections preview."""
    if not frames or count <= 0:
        return {}
    from accel.report import save_frames

    return save_frames(frames, folder, count)


def _run_all(the_plan: Plan, model: ModelInfo, frames: list[Frame], settings: Settings, writer: ResultWriter,
             instruments: Instruments, emit: Event, isolate: bool) -> None:
    """Every planned variant in turn, each charged with the power and heat of its own measured window;
    the document is rewritten after each."""
    prepared: dict[str, ModelInfo] = {}
    for i, (variant, kernels) in enumerate(the_plan.runs):
        before = instruments.before_variant()
        emit("start", {"variant": variant.label, "kernels": kernels, "index": i, "total": len(the_plan.runs)})

        def progress(n: int, total: int, _label: str = variant.label) -> None:
            emit("progress", {"variant": _label, "n": n, "total": total})

        try:
            ran = _model_for(variant, model, prepared)
        except AccelError as exc:
            ran, record = None, failure(variant, kernels, exc)
        if ran is not None:
            cache = _cache_path(variant, ran)
            was_empty = cache is not None and _empty(cache)
            record = _run_one(ran, variant, kernels, frames, settings, progress, isolate)
            instruments.after_variant(record, before)
            if cache is not None:
                record["cache"] = _second_start(ran, variant, kernels, frames, settings, isolate, cache, was_empty)
            if ran is not model:
                record["model_ran"] = {"path": str(ran.path), "sha256": ran.sha256, "family": ran.family.value,
                                       "why": f"{variant.delegate} runs the network without its post-process op"}
        writer.add(record)
        emit("done", record)


def _model_for(variant: Variant, model: ModelInfo, prepared: dict[str, ModelInfo]) -> ModelInfo:
    """The model a variant runs: its delegate's ``prepare_model`` result when it has one (computed once)."""
    if variant.label not in prepared:
        prepare = getattr(get_delegate(variant.delegate), "prepare_model", None)
        prepared[variant.label] = prepare(model, variant) if prepare is not None else model
    return prepared[variant.label]


def _cache_path(variant: Variant, model: ModelInfo) -> Path | None:
    find = getattr(get_delegate(variant.delegate), "cache_path", None)
    return find(model, variant) if find is not None else None


def _empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir())) or (path.is_file() and
                                                                                  path.stat().st_size == 0)


def _second_start(model: ModelInfo, variant: Variant, kernels: str, frames: list[Frame], settings: Settings,
                  isolate: bool, cache: Path, was_empty: bool) -> dict[str, Any]:
    """Start the variant again in a fresh process, now that its cache (serialized kernels, packed weights)
    exists: creation and first inference only, the cost an application pays at every later start."""
    again = _run_one(model, variant, kernels, frames[:1],
                     replace(settings, frames=0, seconds=0.0, warmup=0, save_detections=0), lambda n, t: None, isolate)
    second: dict[str, Any] = {k: again[k] for k in ("load_ms", "first_inference_ms") if k in again}
    if again["status"] != "ok":
        second["error"] = f"{again['status']}: {again.get('error', '')}"
    if again.get("teardown"):
        second["teardown"] = again["teardown"]
    return {"path": str(cache), "was_empty": was_empty, "filled": not _empty(cache), "second_start": second}


def _run_one(model: ModelInfo, variant: Variant, kernels: str, frames: list[Frame], settings: Settings,
             progress: Callable[[int, int], None], isolate: bool) -> dict[str, Any]:
    if isolate:
        return run_isolated(model, variant, kernels, frames, settings, progress)
    try:
        return run_variant(model, variant, kernels, frames, settings, progress)
    except (AccelError, SourceError) as exc:
        return failure(variant, kernels, exc)


def _add_agreement(variants: list[dict[str, Any]], threshold: float, iou: float) -> None:
    """Agreement of every variant's detections with cpu-reference's (same kernel set when there is one)."""
    refs = [v for v in variants if v["delegate"] == "cpu-reference" and v["status"] == "ok"]
    for v in variants:
        if v["status"] != "ok" or not refs:
            continue
        ref = next((r for r in refs if r["kernels"] == v["kernels"]), refs[0])
        found = agreement(ref["detections"], v["detections"], iou=iou, threshold=threshold)
        v["agreement"] = {"reference": f"{ref['variant']} + {ref['kernels']}", **(found or {"score": None})}


def _add_accuracy(variants: list[dict[str, Any]], dataset: Any, classes: dict[int, int], threshold: float) -> None:
    from accel.dataset import evaluate

    for v in variants:
        if v["status"] == "ok":
            dets = {int(k): d for k, d in v["detections"].items()}
            v["accuracy"] = evaluate(dataset, dets, classes, threshold)
