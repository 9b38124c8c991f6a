"""A comparison's jobs run in turn: each on the model its delegate prepares, in its own worker process (or in
this one), charged with the power and heat of its own measured window, started a second time when it has a
cache, recorded, and written to the result document before the next starts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from accel.compare.instruments import Instruments
from accel.core.errors import AccelError
from accel.core.frames import Frame
from accel.delegates import get_delegate
from accel.model import ModelInfo
from accel.model.flatbuffer import read_flatbuffer
from accel.model.fold import prepared_steps
from accel.plan.job import Job
from accel.results.document import ResultWriter
from accel.results.record import Cache, Charged, ModelRan, Outcome, SecondStart, Status, VariantRecord
from accel.run.interrupt import Interrupted
from accel.run.pipeline import run_job
from accel.run.worker import run_isolated

__all__ = ["Runs", "record", "time_left"]

Event = Callable[[str, Any], None]


def record(job: Job, outcome: Outcome, charged: Charged | None = None, cache: Cache | None = None,
           model_ran: ModelRan | None = None) -> VariantRecord:
    """The one place a variant's record is put together from the parts its stages returned (``job``: as
    planned, its model the user's file)."""
    v = job.variant
    return VariantRecord(v.label, v.delegate, dict(v.options), job.kernels, job.execution, outcome,
                         charged or Charged(), cache, model_ran, model=job.model.path.name)


class Runs:
    """Runs jobs on the replay ``frames`` (none when live), adding each record to ``writer`` and saying so
    through ``emit``; ``isolate``: each in a worker process."""

    def __init__(self, frames: list[Frame], writer: ResultWriter, instruments: Instruments, emit: Event,
                 isolate: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames, self.writer, self.instruments, self.emit, self.isolate = frames, writer, instruments, emit, isolate
        self.clock = clock
        self._prepared: dict[tuple[str, str], ModelInfo] = {}  # (model sha256, variant) -> what its delegate runs

    def run(self, jobs: tuple[Job, ...] | list[Job]) -> None:
        """Every job in turn; the document is rewritten after each. An interrupt stops the run once the job in
        progress is recorded with what it measured (``Interrupted`` is raised again)."""
        models = list(dict.fromkeys(j.model.path.name for j in jobs))
        took: list[float] = []  # each finished job's wall time, its cool-down and idle baseline included
        for i, job in enumerate(jobs):
            began = self.clock()
            before = self.instruments.before_variant()
            own = [k for k, j in enumerate(jobs) if j.model.path.name == job.model.path.name]  # positions
            self.emit("start", {"variant": job.variant.label, "kernels": job.kernels, "execution": job.execution,
                                "index": i, "total": len(jobs), "model": job.model.path.name,
                                "model_index": models.index(job.model.path.name), "models": len(models),
                                "variant_index": own.index(i), "variants": len(own),
                                "left_s": time_left(took, len(jobs) - i)})
            done, stop = self._one(job, before)
            took.append(self.clock() - began)
            self.writer.add(done)
            self.emit("done", done)
            if stop is not None:
                raise stop from None

    def _one(self, job: Job, before: dict[str, Any]) -> tuple[VariantRecord, Interrupted | None]:
        """One job's record, and the interrupt that stopped it if one did."""
        try:
            ran = self._model_for(job)
        except AccelError as exc:
            return record(job, Outcome.failed(exc)), None
        ran_as = _model_ran(job, ran) if ran is not job.model else None
        try:
            return self._measure(job, ran, before, ran_as), None
        except KeyboardInterrupt as exc:  # keep what the variant measured, then stop
            stop = Interrupted.of(exc)
            outcome = stop.outcome or Outcome(Status.INTERRUPTED, error=f"stopped by {stop.name} before any "
                                              "frame was kept (--in-process keeps no streamed frames)")
            if outcome.status is Status.INTERRUPTED:
                stop.partial = (job.variant.label, outcome.timings.frames_measured if outcome.timings else 0)
            return record(job, outcome, self._charge(outcome, before), model_ran=ran_as), stop

    def _measure(self, planned: Job, ran: ModelInfo, before: dict[str, Any], ran_as: ModelRan | None) -> VariantRecord:
        """One job run on the model ``ran`` (its delegate's prepared copy, or the same file) and charged, with
        its second start when it has a cache. An interrupt once it has measured raises ``Interrupted``
        carrying its outcome."""
        job = replace(planned, model=ran)
        cache = get_delegate(job.variant.delegate).cache_path(job.model, job.variant)
        was_empty = cache is not None and _empty(cache)

        def progress(n: int, total: int) -> None:
            self.emit("progress", {"variant": job.variant.label, "n": n, "total": total})

        outcome = self._outcome(job, self.frames, progress)
        try:
            charged = self.instruments.after_variant(outcome.timings, before)
            second = self._second_start(job, cache, was_empty) if cache is not None else None
        except KeyboardInterrupt as exc:
            stop = Interrupted.of(exc)
            stop.outcome = outcome
            raise stop from None
        return record(planned, outcome, charged, second, ran_as)

    def _outcome(self, job: Job, frames: list[Frame], progress: Callable[[int, int], None] | None) -> Outcome:
        if self.isolate:
            return run_isolated(job, frames, progress)
        try:
            return Outcome.ok(run_job(job, frames, progress))
        except AccelError as exc:
            return Outcome.failed(exc)

    def _charge(self, outcome: Outcome, before: dict[str, Any]) -> Charged:
        """The interrupted variant's power and heat over the frames it measured (none if they cannot be read)."""
        try:
            return self.instruments.after_variant(outcome.timings, before)
        except Exception:  # what was measured is kept either way
            return Charged()

    def _model_for(self, job: Job) -> ModelInfo:
        """The model a job runs: its delegate's ``prepare_model`` result (computed once per variant)."""
        key = (job.model.sha256, job.variant.label)
        if key not in self._prepared:
            self._prepared[key] = get_delegate(job.variant.delegate).prepare_model(job.model, job.variant)
        return self._prepared[key]

    def _second_start(self, job: Job, cache: Path, was_empty: bool) -> Cache:
        """Start the job again in a fresh process, now that its cache (serialized kernels, packed weights)
        exists: creation and first inference only, the cost an application pays at every later start."""
        again = self._outcome(replace(job, settings=job.settings.startup_only(), execution="serial"),
                              self.frames[:1], None)
        startup = again.startup
        second = SecondStart(startup.load_ms if startup else None, startup.first_inference_ms if startup else None,
                             f"{again.status.value}: {again.error or ''}" if again.status is not Status.OK else None,
                             again.teardown)
        return Cache(str(cache), was_empty, not _empty(cache), second)


def _model_ran(job: Job, ran: ModelInfo) -> ModelRan:
    """Which file a job ran instead of the user's, and how accel made it (the file's own record)."""
    try:
        steps = prepared_steps(read_flatbuffer(ran.path))
    except AccelError:
        steps = []
    return ModelRan(str(ran.path), ran.sha256, ran.family.value,
                    f"{job.variant.delegate} runs a prepared copy: " + ("; ".join(steps) or "made by its "
                                                                                  "prepare_model"))


def _empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir())) or (path.is_file() and
                                                                                  path.stat().st_size == 0)


def time_left(took: Sequence[float], remaining: int) -> float | None:
    """Seconds the ``remaining`` jobs (the one starting included) should take: the finished jobs' mean wall
    time each (every job measures for the same [pipeline] window; a slower model's load and warm-up shift it).
    None before any job finished: nothing to estimate from."""
    if not took:
        return None
    return sum(took) / len(took) * remaining
