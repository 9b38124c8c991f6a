"""The main job: run every configured (delegate variant x kernel set) on the same frames.

``plan`` expands the config into runs (and records backends that cannot run here, with why);
``compare`` captures the frames once, runs each variant in its own process, and writes the result
document after every variant. Each variant's ``VariantRecord`` is put together in ``_record`` from the
parts the worker, the instruments and the cache check returned.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accel.compare.instruments import Instruments
from accel.core.errors import AccelError, ConfigError, KernelError, OptionError, OutputError, UnknownPluginError
from accel.core.frames import Frame
from accel.delegates import Variant, get_delegate
from accel.host.machine import machine_info
from accel.model import (
    ModelInfo,
    costs_or_why,
)
from accel.model.flatbuffer import read_flatbuffer
from accel.model.fold import prepared_steps
from accel.plan.config import Config
from accel.plan.inputs import configured_labels, configured_model
from accel.plan.settings import Settings, source_spec
from accel.results.agreement import with_accuracy, with_agreement
from accel.results.document import ResultWriter, result_target
from accel.results.record import Cache, Charged, ModelRan, Outcome, SecondStart, Status, VariantRecord
from accel.run.interrupt import Interrupted
from accel.run.pipeline import check_kernel_options, get_kernels, run_variant
from accel.run.worker import run_isolated

__all__ = ["Plan", "compare", "plan"]

_REPLAY_BUDGET_BYTES = 512 << 20  # distinct replay frames kept in memory; beyond that they repeat
Event = Callable[[str, Any], None]


@dataclass
class Plan:
    runs: list[tuple[Variant, str, str]] = field(default_factory=list)  # (variant, kernel set, execution)
    skipped: list[VariantRecord] = field(default_factory=list)


def plan(config: Config) -> Plan:
    """The runs a config asks for. Unknown names are config errors; unavailable backends are skipped
    with their reason (they appear in the results as 'unavailable')."""
    out = Plan()
    kernel_sets = []
    for name in config.pipeline["kernels"]:
        try:
            get_kernels(name, config.kernels.get(name))
            kernel_sets.append(name)
        except UnknownPluginError as exc:
            raise ConfigError(f"{config.where('pipeline', 'kernels')}: {exc}") from None
        except OptionError as exc:
            raise config.locate(exc) from None
        except KernelError as exc:
            out.skipped.append(_record(Variant(f"kernels:{name}"), name, "serial",
                                       Outcome.failed(exc, Status.UNAVAILABLE)))
    _check_unused_kernel_tables(config)
    if not config.delegates:
        raise ConfigError("no delegate is enabled: set enabled = true in a [delegates.NAME] table or pass --delegates")
    for name, options in config.delegates.items():
        try:
            delegate = get_delegate(name)
        except UnknownPluginError as exc:
            raise ConfigError(f"{config.where('delegates' if 'delegates' in config.origins else f'delegates.{name}')}: "
                              f"{exc}") from None
        try:
            variants = delegate.variants(options)
        except OptionError as exc:
            raise config.locate(exc) from None
        available = delegate.probe()
        for variant in variants:
            for kernels in kernel_sets:
                for execution in config.pipeline["execution"]:
                    if available.ok:
                        out.runs.append((variant, kernels, execution))
                    else:
                        out.skipped.append(_record(variant, kernels, execution,
                                                   Outcome.failed(available.reason, Status.UNAVAILABLE)))
    return out


def _check_unused_kernel_tables(config: Config) -> None:
    """A ``[kernels.NAME]`` table of a set this run does not select is still checked: a typo fails now,
    not the day the set is selected."""
    from accel.kernels import REGISTRY as KERNELS

    for name, options in config.kernels.items():
        if name in config.pipeline["kernels"]:
            continue  # checked when the set is built
        try:
            factory = KERNELS.load(name)
        except LookupError:
            raise ConfigError(f"{config.where(f'kernels.{name}')}: no kernel set is called {name!r}; known: "
                              f"{', '.join(KERNELS.names())}") from None
        except ImportError:
            continue  # its options are checked when it can be imported
        try:
            check_kernel_options(name, factory, options)
        except OptionError as exc:
            raise config.locate(exc) from None


def _record(variant: Variant, kernels: str, execution: str, outcome: Outcome, charged: Charged | None = None,
            cache: Cache | None = None, model_ran: ModelRan | None = None) -> VariantRecord:
    """The one place a variant's record is put together from the parts its stages returned."""
    return VariantRecord(variant.label, variant.delegate, dict(variant.options), kernels, execution, outcome,
                         charged or Charged(), cache, model_ran)


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


def compare(config: Config, *, on_event: Event | None = None, isolate: bool = True,
            result_path: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """Run the comparison the config describes. Returns the result document and where it was written.
    ``on_event(kind, data)`` follows the run: "capture", "idle", "cool_down", "start", "progress", and
    "skipped" / "done" with each variant's ``VariantRecord``, then "reports".

    ``OutputError`` before anything is captured when the result cannot be written where asked. An interrupt
    (Ctrl-C; SIGTERM and SIGHUP under ``accel.run.interrupt.stop_on_signals``) stops the run: the variant in
    progress is recorded as ``interrupted`` with the frames it measured, and ``Interrupted`` is raised saying
    what was saved and where (``result`` None: nothing had been captured yet)."""
    emit = on_event or (lambda kind, data: None)
    the_plan = plan(config)
    model = configured_model(config)
    labels, labels_from = configured_labels(config, model)
    dataset, classes = None, {}
    if config.accuracy["dataset"]:
        from accel.dataset.coco import category_map, load_dataset

        if config.pipeline["live"]:
            raise ConfigError("--dataset replays the dataset's images: it cannot be combined with --live")
        dataset = load_dataset(config.accuracy["dataset"], config.accuracy["split"])
        classes = category_map(labels, model.num_classes, dataset.categories, dataset.annotated_categories())
    settings = Settings.from_config(config, model, dataset=dataset, labels=labels)
    instruments = Instruments(config, emit)  # an explicitly named meter that is missing fails here, before any run
    result_at = result_target(config, result_path)  # so does an output path that cannot be written
    writer: ResultWriter | None = None
    try:
        frames, described = _frames(config, model, dataset, emit)
        path = result_at()
        writer = ResultWriter(path, _header(config, model, labels, labels_from, instruments, frames, described,
                                            path, dataset, classes))
        for record in the_plan.skipped:
            writer.add(record)
            emit("skipped", record)
        with instruments:
            _run_all(the_plan, model, frames, settings, writer, instruments, emit, isolate)
            top, logged = instruments.finish([r.timings for r in writer.records])
            writer.update(top, writer.records if logged is None else [
                replace(r, charged=replace(r.charged, power=p)) if p is not None else r
                for r, p in zip(writer.records, logged, strict=True)])
        threshold = config.pipeline["score_threshold"]
        limit = model.postprocess_options.get("max_detections") or config.decode["max_detections"]
        variants = with_agreement(writer.records, threshold, config.accuracy["iou"],
                                   int(limit) if isinstance(limit, int | float) else None,
                                   config.accuracy["tie_margin"])
        if dataset is not None:
            variants = with_accuracy(variants, dataset, classes, threshold)
        writer.update({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, variants, complete=True)
    except KeyboardInterrupt as exc:
        raise _saved(Interrupted.of(exc), writer) from None
    if config.output["formats"]:
        from accel.report import write_reports

        stem = "report" if path.name == "result.json" else path.stem
        try:
            emit("reports", {k: str(v) for k, v in write_reports(writer.doc, path.parent, config.output["formats"],
                                                                  stem=stem).items()})
        except KeyboardInterrupt as exc:
            raise finished(Interrupted.of(exc), path, len(writer.records)) from None
    return writer.doc, path


def finished(stop: Interrupted, path: Path, records: int) -> Interrupted:
    """Note on ``stop`` that it came after the complete result was written to ``path``."""
    stop.result, stop.variants, stop.complete = path, records, True
    return stop


def _saved(stop: Interrupted, writer: ResultWriter | None) -> Interrupted:
    """Note on ``stop`` what the interrupted run saved, marking the result document as interrupted."""
    if writer is not None and writer.saved is not None:
        with contextlib.suppress(OutputError):  # the document as last written stays
            writer.update({"interrupted": stop.name})
        stop.result, stop.variants = writer.path, writer.saved
    return stop


def _frames(config: Config, model: ModelInfo, dataset: Any, emit: Event) -> tuple[list[Frame], dict[str, Any]]:
    """The replay frames and the source's description (none in live mode: each variant reads the source)."""
    p = config.pipeline
    spec = source_spec(config, model)
    emit("capture", {"source": p["source"], "frames": p["frames"], "live": p["live"]})
    if dataset is not None:
        from accel.dataset.coco import DatasetSource

        return _capture_from(DatasetSource(dataset, p["max_pixels"]), len(dataset.images))
    if p["live"]:
        from accel.sources import pacing

        return [], {"kind": spec.kind, "target": spec.target, "live": True, **pacing(spec)}
    return _capture(spec, p["frames"])


def _header(config: Config, model: ModelInfo, labels: tuple[str, ...], labels_from: str, instruments: Instruments,
            frames: list[Frame], described: dict[str, Any], path: Path, dataset: Any,
            classes: dict[int, int]) -> dict[str, Any]:
    """The result document's fields other than the variants: machine, model, config, source, dataset."""
    header: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "clock": {"monotonic": instruments.clock["monotonic"], "wall": instruments.clock["wall"]},
        "machine": machine_info(),
        "model": {**model.to_json(), **costs_or_why(model.path), "labels": list(labels), "labels_from": labels_from},
        "config": config.to_json(),
        "source": {**described, "replay": not config.pipeline["live"], "distinct_frames": len(frames),
                   "capture_ms": [round(f.capture_s * 1e3, 4) for f in frames],
                   "saved_frames": _save_frames(frames, path.parent, config.output["preview_frames"])},
    }
    if dataset is not None:
        header["dataset"] = {"root": str(dataset.root), "annotations": str(dataset.annotations),
                             "images": len(dataset.images), "categories": dataset.categories,
                             "class_to_category": classes}
    return header


def _save_frames(frames: list[Frame], folder: Path, count: int) -> dict[str, str]:
    """A few replayed frames as PNG beside the result, for the reports' detections preview."""
    if not frames or count <= 0:
        return {}
    from accel.report import save_frames

    try:
        return save_frames(frames, folder, count)
    except OSError as exc:
        raise OutputError(f"cannot save the preview frames in {folder / 'frames'}: {exc.strerror or exc}; "
                          "free some space or choose another output folder ([output] preview_frames = 0 "
                          "saves none)") from exc


def _run_all(the_plan: Plan, model: ModelInfo, frames: list[Frame], settings: Settings, writer: ResultWriter,
             instruments: Instruments, emit: Event, isolate: bool) -> None:
    """Every planned variant in turn, each charged with the power and heat of its own measured window;
    the document is rewritten after each."""
    prepared: dict[str, ModelInfo] = {}
    for i, (variant, kernels, execution) in enumerate(the_plan.runs):
        before = instruments.before_variant()
        emit("start", {"variant": variant.label, "kernels": kernels, "execution": execution, "index": i,
                       "total": len(the_plan.runs)})

        def progress(n: int, total: int, _label: str = variant.label) -> None:
            emit("progress", {"variant": _label, "n": n, "total": total})

        stop: Interrupted | None = None
        try:
            ran = _model_for(variant, model, prepared)
        except AccelError as exc:
            record = _record(variant, kernels, execution, Outcome.failed(exc))
        else:
            ran_as = _model_ran(variant, ran) if ran is not model else None
            try:
                record = _measure(ran, variant, kernels, execution, frames, settings, progress, isolate,
                                  instruments, before, ran_as)
            except KeyboardInterrupt as exc:  # keep what the variant measured, then stop
                stop = Interrupted.of(exc)
                outcome = stop.outcome or Outcome(Status.INTERRUPTED, error=f"stopped by {stop.name} before any "
                                                  "frame was kept (--in-process keeps no streamed frames)")
                record = _record(variant, kernels, execution, outcome, _charge(instruments, outcome, before),
                                 model_ran=ran_as)
                if outcome.status is Status.INTERRUPTED:
                    stop.partial = (variant.label, outcome.timings.frames_measured if outcome.timings else 0)
        writer.add(record)
        emit("done", record)
        if stop is not None:
            raise stop from None


def _model_ran(variant: Variant, ran: ModelInfo) -> ModelRan:
    """Which file a variant ran instead of the user's, and how accel made it (the file's own record)."""
    try:
        steps = prepared_steps(read_flatbuffer(ran.path))
    except AccelError:
        steps = []
    return ModelRan(str(ran.path), ran.sha256, ran.family.value,
                    f"{variant.delegate} runs a prepared copy: " + ("; ".join(steps) or "made by its prepare_model"))


def _measure(ran: ModelInfo, variant: Variant, kernels: str, execution: str, frames: list[Frame],
             settings: Settings, progress: Callable[[int, int], None], isolate: bool, instruments: Instruments,
             before: dict[str, Any], ran_as: ModelRan | None) -> VariantRecord:
    """One variant run and charged, with its second start when it has a cache. An interrupt once it has
    measured raises ``Interrupted`` carrying its outcome."""
    cache = get_delegate(variant.delegate).cache_path(ran, variant)
    was_empty = cache is not None and _empty(cache)
    outcome = _run_one(ran, variant, kernels, frames, settings, progress, isolate, execution)
    try:
        charged = instruments.after_variant(outcome.timings, before)
        second = _second_start(ran, variant, kernels, frames, settings, isolate, cache, was_empty) \
            if cache is not None else None
    except KeyboardInterrupt as exc:
        stop = Interrupted.of(exc)
        stop.outcome = outcome
        raise stop from None
    return _record(variant, kernels, execution, outcome, charged, second, ran_as)


def _charge(instruments: Instruments, outcome: Outcome, before: dict[str, Any]) -> Charged:
    """The interrupted variant's power and heat over the frames it measured (none if they cannot be read)."""
    try:
        return instruments.after_variant(outcome.timings, before)
    except Exception:  # what was measured is kept either way
        return Charged()


def _model_for(variant: Variant, model: ModelInfo, prepared: dict[str, ModelInfo]) -> ModelInfo:
    """The model a variant runs: its delegate's ``prepare_model`` result (computed once per variant)."""
    if variant.label not in prepared:
        prepared[variant.label] = get_delegate(variant.delegate).prepare_model(model, variant)
    return prepared[variant.label]


def _empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir())) or (path.is_file() and
                                                                                  path.stat().st_size == 0)


def _second_start(model: ModelInfo, variant: Variant, kernels: str, frames: list[Frame], settings: Settings,
                  isolate: bool, cache: Path, was_empty: bool) -> Cache:
    """Start the variant again in a fresh process, now that its cache (serialized kernels, packed weights)
    exists: creation and first inference only, the cost an application pays at every later start."""
    again = _run_one(model, variant, kernels, frames[:1], settings.startup_only(), lambda n, t: None, isolate)
    startup = again.startup
    second = SecondStart(startup.load_ms if startup else None, startup.first_inference_ms if startup else None,
                         f"{again.status.value}: {again.error or ''}" if again.status is not Status.OK else None,
                         again.teardown)
    return Cache(str(cache), was_empty, not _empty(cache), second)


def _run_one(model: ModelInfo, variant: Variant, kernels: str, frames: list[Frame], settings: Settings,
             progress: Callable[[int, int], None], isolate: bool, execution: str = "serial") -> Outcome:
    if isolate:
        return run_isolated(model, variant, kernels, frames, settings, progress, execution)
    try:
        return Outcome.ok(run_variant(model, variant, kernels, frames, settings, progress, execution=execution))
    except AccelError as exc:
        return Outcome.failed(exc)
