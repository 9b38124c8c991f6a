"""The main job: run every job of the config's plan on the same frames.

``accel.plan.job.build_plan`` expands the config into jobs (and records backends that cannot run here,
with why); ``compare`` captures the frames once, runs the jobs in turn (``accel.compare.runs``: each in its
own process), and writes the result document after every one, then judges the records (agreement with the
reference, accuracy on a dataset) and writes the reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from accel.compare.instruments import Instruments
from accel.compare.runs import Runs
from accel.core.errors import OutputError
from accel.core.frames import Frame
from accel.host.machine import machine_info
from accel.model import costs_or_why
from accel.plan.config import Config
from accel.plan.job import Plan, build_plan
from accel.results.agreement import with_accuracy, with_agreement
from accel.results.document import ResultWriter, result_target
from accel.results.record import VariantRecord
from accel.run.interrupt import Interrupted
from accel.sources import SourceSpec

__all__ = ["capture_frames", "compare"]

_REPLAY_BUDGET_BYTES = 512 << 20  # distinct replay frames kept in memory; beyond that they repeat
Event = Callable[[str, Any], None]


def capture_frames(spec: SourceSpec, frames: int) -> tuple[list[Frame], dict[str, Any]]:
    """The replay frames of ``spec``'s source (``frames`` of them, or as many as fit the replay memory
    budget) and the source's description: what every job of a comparison is measured on."""
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
    """Run the comparison the config describes (its plan: ``accel.plan.job.build_plan``). Returns the result
    document and where it was written. ``on_event(kind, data)`` follows the run: "capture", "idle",
    "cool_down", "start", "progress", and "skipped" / "done" with each variant's ``VariantRecord``, then
    "reports".

    ``OutputError`` before anything is captured when the result cannot be written where asked. An interrupt
    (Ctrl-C; SIGTERM and SIGHUP under ``accel.run.interrupt.stop_on_signals``) stops the run: the variant in
    progress is recorded as ``interrupted`` with the frames it measured, and ``Interrupted`` is raised saying
    what was saved and where (``result`` None: nothing had been captured yet)."""
    emit = on_event or (lambda kind, data: None)
    plan = build_plan(config)
    instruments = Instruments(config, emit)  # an explicitly named meter that is missing fails here, before any run
    result_at = result_target(config, result_path)  # so does an output path that cannot be written
    writer: ResultWriter | None = None
    try:
        frames, described = _frames(plan, emit)
        path = result_at()
        writer = ResultWriter(path, _header(plan, instruments, frames, described, path))
        for record in plan.skipped:
            writer.add(record)
            emit("skipped", record)
        with instruments:
            Runs(frames, writer, instruments, emit, isolate).run(plan.jobs)
            top, logged = instruments.finish([r.timings for r in writer.records])
            writer.update(top, writer.records if logged is None else [
                replace(r, charged=replace(r.charged, power=p)) if p is not None else r
                for r, p in zip(writer.records, logged, strict=True)])
        writer.update({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, _judged(plan, writer.records),
                      complete=True)
    except KeyboardInterrupt as exc:
        raise _saved(Interrupted.of(exc), writer) from None
    if config.output.formats:
        from accel.report import write_reports

        stem = "report" if path.name == "result.json" else path.stem
        try:
            emit("reports", {k: str(v) for k, v in write_reports(writer.doc, path.parent, config.output.formats,
                                                                  stem=stem).items()})
        except KeyboardInterrupt as exc:
            raise finished(Interrupted.of(exc), path, len(writer.records)) from None
    return writer.doc, path


def _judged(plan: Plan, records: list[VariantRecord]) -> list[VariantRecord]:
    """The records with their agreement with the reference, and their accuracy on the dataset if any."""
    config = plan.config
    threshold = config.pipeline.score_threshold
    judged: dict[Any, VariantRecord] = {}
    for m in plan.models:  # each model's variants against its own reference, on its own classes
        limit = m.model.postprocess_options.get("max_detections") or config.decode.max_detections
        variants = with_agreement([r for r in records if r.model == m.name], threshold, config.accuracy.iou,
                                  int(limit) if isinstance(limit, int | float) else None, config.accuracy.tie_margin)
        if plan.dataset is not None and not m.no_accuracy:
            variants = with_accuracy(variants, plan.dataset, m.classes, threshold)
        judged.update((v.key, v) for v in variants)
    return [judged.get(r.key, r) for r in records]  # in the order they ran; skipped backends as they are


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


def _frames(plan: Plan, emit: Event) -> tuple[list[Frame], dict[str, Any]]:
    """The replay frames and the source's description (none in live mode: each variant reads the source)."""
    p, spec = plan.config.pipeline, plan.source
    emit("capture", {"source": p.source, "frames": p.frames, "live": p.live})
    if plan.dataset is not None:
        from accel.dataset.coco import DatasetSource

        return _capture_from(DatasetSource(plan.dataset, p.max_pixels), len(plan.dataset.images))
    if p.live:
        from accel.sources import pacing

        return [], {"kind": spec.kind, "target": spec.target, "live": True, **pacing(spec)}
    return capture_frames(spec, p.frames)


def _header(plan: Plan, instruments: Instruments, frames: list[Frame], described: dict[str, Any],
            path: Path) -> dict[str, Any]:
    """The result document's fields other than the variants: machine, model, config, source, dataset."""
    config, dataset = plan.config, plan.dataset
    models = [{**m.model.to_json(), **costs_or_why(m.model.path), "name": m.name, "labels": list(m.labels),
               "labels_from": m.labels_from, **({"class_to_category": m.classes} if dataset is not None else {}),
               **({"accuracy_na": m.no_accuracy} if dataset is not None and m.no_accuracy else {})}
              for m in plan.models]
    header: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "clock": {"monotonic": instruments.clock["monotonic"], "wall": instruments.clock["wall"]},
        "machine": machine_info(),
        "model": models[0],
        "models": models,
        "config": config.to_json(),
        "source": {**described, "replay": not config.pipeline.live, "distinct_frames": len(frames),
                   "capture_ms": [round(f.capture_s * 1e3, 4) for f in frames],
                   "saved_frames": _save_frames(frames, path.parent, config.output.preview_frames)},
    }
    if dataset is not None:
        header["dataset"] = {"root": str(dataset.root), "annotations": str(dataset.annotations),
                             "images": len(dataset.images), "categories": dataset.categories,
                             "class_to_category": plan.models[0].classes}
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
