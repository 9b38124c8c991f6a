"""The run plan: what a comparison will run, built once from the config.

A ``Job`` is one measured variant, frozen, naming everything it needs: the model (its file, hash, family; the
labels are in its settings), the delegate variant with its options, the kernel set, the execution mode, and
the settings (frame counts, thresholds, decoding, kernel options, the live source when each job reads it
itself). The worker, the pipelined runner and ``accel watch`` take a job. A ``Plan`` is the list of jobs of
one comparison with what they share (the model as loaded, its labels, the source, the dataset) and the
backends skipped here with why; ``accel compare --dry-run`` prints it.

``build_plan`` checks in the order a comparison always has: kernel sets and delegates (unknown names and bad
options are config errors; unavailable ones are skipped), then the model, its labels, the dataset, and the
settings made from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from accel.core.errors import ConfigError, KernelError, OptionError, UnknownPluginError
from accel.delegates import Variant, get_delegate
from accel.kernels import get_kernels
from accel.model import ModelInfo
from accel.plan.config import Config
from accel.plan.inputs import configured_labels, configured_model
from accel.plan.settings import Settings, source_spec
from accel.results.record import Charged, Outcome, Status, VariantRecord
from accel.sources import SourceSpec

if TYPE_CHECKING:
    from accel.dataset.coco import Dataset

__all__ = ["EXECUTIONS", "Job", "Plan", "build_plan", "check_backends", "skipped_record"]

EXECUTIONS = ("serial", "pipelined")


@dataclass(frozen=True)
class Job:
    """One measured variant: ``model`` run by ``variant`` with the ``kernels`` set, ``execution`` serial (one
    frame at a time) or pipelined (stages as concurrent threads), with ``settings``."""

    model: ModelInfo
    variant: Variant
    kernels: str = "numpy"
    settings: Settings = field(default_factory=Settings)
    execution: str = "serial"

    @property
    def name(self) -> str:
        """The variant and its kernel set: ``xnnpack threads=2 + opencv``."""
        return f"{self.variant.label} + {self.kernels}"

    @property
    def label(self) -> str:
        """The name with the execution mode when it is not serial: ``xnnpack threads=2 + opencv, pipelined``."""
        return self.name + ("" if self.execution == "serial" else f", {self.execution}")

    def to_json(self) -> dict[str, Any]:
        """What the job is, as ``--dry-run --json``-style plain data."""
        live = self.settings.live_source
        return {"model": str(self.model.path), "sha256": self.model.sha256, "family": self.model.family.value,
                "variant": self.variant.label, "delegate": self.variant.delegate,
                "options": dict(self.variant.options), "kernels": self.kernels, "execution": self.execution,
                "live": live is not None}


def skipped_record(variant: Variant, kernels: str, execution: str, outcome: Outcome) -> VariantRecord:
    """The record of a variant that does not run (its outcome says why)."""
    return VariantRecord(variant.label, variant.delegate, dict(variant.options), kernels, execution, outcome,
                         Charged())


@dataclass(frozen=True)
class Plan:
    """What one comparison runs: its ``jobs`` in order, what they share, and the ``skipped`` backends (records
    whose error says why)."""

    config: Config
    model: ModelInfo
    labels: tuple[tuple[str, ...], str]  # the names, and where they came from
    source: SourceSpec
    jobs: tuple[Job, ...]
    skipped: tuple[VariantRecord, ...] = ()
    dataset: Dataset | None = None
    classes: dict[int, int] = field(default_factory=dict)  # the model's class id -> the dataset's category

    def lines(self) -> list[str]:
        """The plan in words (``accel compare --dry-run``): what is measured on what, every job, and every
        skipped backend with why."""
        p, m, s = self.config.pipeline, self.model, self.source
        size = f" {s.width}x{s.height}" if s.width and s.height else ""
        frames = (f"each job reads the source live for {p.seconds:g} s and {p.frames} frames at least" if p.live
                  else f"{p.frames} frames captured once, replayed to every job")
        if self.dataset is not None:
            frames = f"the {len(self.dataset.images)} images of the dataset {self.dataset.root}"
        out = [f"model: {m.path} ({m.family.value}, sha256 {m.sha256[:12]}, labels: {self.labels[1]})",
               f"source: {s.kind}{':' + s.target if s.target else ''}{size}; {frames}",
               f"jobs ({len(self.jobs)}):"]
        out += [f"  {i + 1}. model {m.path.name} | variant {j.variant.label} | kernels {j.kernels} | "
                f"execution {j.execution}" for i, j in enumerate(self.jobs)]
        out.append(f"skipped ({len(self.skipped)}):" if self.skipped else "skipped: none")
        out += [f"  {r.variant} + {r.kernels}, {r.execution}: {r.status.value}: {r.error}" for r in self.skipped]
        return out


@dataclass(frozen=True)
class Backends:
    """The (variant, kernel set, execution) triples a config asks for that can run here, and those that
    cannot (records saying why)."""

    runs: tuple[tuple[Variant, str, str], ...]
    skipped: tuple[VariantRecord, ...]


def _kernel_sets(config: Config, skipped: list[VariantRecord]) -> list[str]:
    kernel_sets = []
    for name in config.pipeline.kernels:
        try:
            get_kernels(name, config.kernels[name].thaw() if name in config.kernels else {})
            kernel_sets.append(name)
        except UnknownPluginError as exc:
            raise ConfigError(f"{config.where('pipeline', 'kernels')}: {exc}") from None
        except OptionError as exc:
            raise config.locate(exc) from None
        except KernelError as exc:
            skipped.append(skipped_record(Variant(f"kernels:{name}"), name, "serial",
                                          Outcome.failed(exc, Status.UNAVAILABLE)))
    _check_unused_kernel_tables(config)
    return kernel_sets


def check_backends(config: Config) -> Backends:
    """The runs a config asks for. Unknown names are config errors; unavailable backends are skipped
    with their reason (they appear in the results as 'unavailable')."""
    skipped: list[VariantRecord] = []
    runs: list[tuple[Variant, str, str]] = []
    kernel_sets = _kernel_sets(config, skipped)
    if not config.delegates:
        raise ConfigError("no delegate is enabled: set enabled = true in a [delegates.NAME] table or pass --delegates")
    for name, options in config.delegates.items():
        try:
            delegate = get_delegate(name)
        except UnknownPluginError as exc:
            where = config.where("delegates" if "delegates" in config.origins else f"delegates.{name}")
            raise ConfigError(f"{where}: {exc}") from None
        try:
            variants = delegate.variants(options.thaw())  # a plugin checks its own plain table
        except OptionError as exc:
            raise config.locate(exc) from None
        available = delegate.probe()
        for variant in variants:
            for kernels in kernel_sets:
                for execution in config.pipeline.execution:
                    if available.ok:
                        runs.append((variant, kernels, execution))
                    else:
                        skipped.append(skipped_record(variant, kernels, execution,
                                                      Outcome.failed(available.reason, Status.UNAVAILABLE)))
    return Backends(tuple(runs), tuple(skipped))


def _check_unused_kernel_tables(config: Config) -> None:
    """A ``[kernels.NAME]`` table of a set this run does not select is still checked: a typo fails now,
    not the day the set is selected."""
    from accel.kernels import REGISTRY as KERNELS
    from accel.kernels import check_kernel_options

    for name, options in config.kernels.items():
        if name in config.pipeline.kernels:
            continue  # checked when the set is built
        try:
            factory = KERNELS.load(name)
        except LookupError:
            raise ConfigError(f"{config.where(f'kernels.{name}')}: no kernel set is called {name!r}; known: "
                              f"{', '.join(KERNELS.names())}") from None
        except ImportError:
            continue  # its options are checked when it can be imported
        try:
            check_kernel_options(name, factory, options.thaw())
        except OptionError as exc:
            raise config.locate(exc) from None


def build_plan(config: Config) -> Plan:
    """The plan ``config`` asks for: backends first, then the model, its labels, the dataset (``--dataset``;
    not with ``--live``) and the settings every job shares."""
    backends = check_backends(config)
    model = configured_model(config)
    labels, labels_from = configured_labels(config, model)
    dataset, classes = None, {}
    if config.accuracy.dataset:
        from accel.dataset.coco import category_map, load_dataset

        if config.pipeline.live:
            raise ConfigError("--dataset replays the dataset's images: it cannot be combined with --live")
        dataset = load_dataset(config.accuracy.dataset, config.accuracy.split)
        classes = category_map(labels, model.num_classes, dataset.categories, dataset.annotated_categories())
    settings = Settings.from_config(config, model, dataset=dataset, labels=labels)
    jobs = tuple(Job(model, variant, kernels, settings, execution) for variant, kernels, execution in backends.runs)
    return Plan(config, model, (labels, labels_from), source_spec(config, model), jobs, backends.skipped, dataset,
                classes)
