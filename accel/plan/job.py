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

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from accel.core.errors import ConfigError, KernelError, OptionError, UnknownPluginError
from accel.delegates import Variant, get_delegate
from accel.kernels import REGISTRY, get_kernels
from accel.model import Family, ModelInfo
from accel.plan.config import Config
from accel.plan.inputs import configured_labels, configured_model
from accel.plan.sections import ModelSection
from accel.plan.settings import Settings, source_spec
from accel.results.record import Charged, Outcome, Status, VariantRecord
from accel.sources import SourceSpec

if TYPE_CHECKING:
    from accel.dataset.coco import Dataset

__all__ = ["EXECUTIONS", "Job", "Plan", "Planned", "build_plan", "check_backends", "skipped_record"]

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
class Planned:
    """One model of a plan, checked: the file as loaded, its labels and where they came from, its class ids
    mapped to the dataset's categories (with a dataset), and the settings its jobs run with."""

    model: ModelInfo
    labels: tuple[str, ...]
    labels_from: str
    settings: Settings
    classes: dict[int, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """What records and reports call the model: its file name (unique within a plan)."""
        return self.model.path.name

    @property
    def no_accuracy(self) -> str:
        """Why a detection dataset cannot score this model ("" when it can)."""
        if self.model.family is Family.CLASSIFIER:
            return ("a classifier gives classes without boxes, and a detection dataset's AP, precision and recall "
                    "score boxes")
        return ""


@dataclass(frozen=True)
class Plan:
    """What one comparison runs: its ``jobs`` in order (every model x variant x kernel set x execution), the
    models they run, what they share, and the ``skipped`` backends (records whose error says why)."""

    config: Config
    models: tuple[Planned, ...]
    source: SourceSpec
    jobs: tuple[Job, ...]
    skipped: tuple[VariantRecord, ...] = ()
    dataset: Dataset | None = None

    @property
    def model(self) -> ModelInfo:
        """The first model (the only one, outside a sweep)."""
        return self.models[0].model

    def lines(self) -> list[str]:
        """The plan in words (``accel compare --dry-run``): what is measured on what, every job, and every
        skipped backend with why."""
        p, s = self.config.pipeline, self.source
        size = f" {s.width}x{s.height}" if s.width and s.height else ""
        frames = (f"each job reads the source live for {p.seconds:g} s and {p.frames} frames at least" if p.live
                  else f"{p.frames} frames captured once, replayed to every job")
        if self.dataset is not None:
            frames = f"the {len(self.dataset.images)} images of the dataset {self.dataset.root}"
        out = [f"model: {pm.model.path} ({pm.model.family.value}, sha256 {pm.model.sha256[:12]}, labels: "
               f"{pm.labels_from})" for pm in self.models]
        out += [f"source: {s.kind}{':' + s.target if s.target else ''}{size}; {frames}",
                f"jobs ({len(self.jobs)}):"]
        out += [f"  {i + 1}. model {j.model.path.name} | variant {j.variant.label} | kernels {j.kernels} | "
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


def _models(config: Config) -> list[tuple[ModelInfo, tuple[str, ...], str, ModelSection]]:
    """Every configured model read and checked, with its labels, before anything runs: a bad one is one line
    naming its file. Two models may not share a file name (records and reports name models by it)."""
    out, names = [], dict[str, str]()
    for section in config.models:
        model = configured_model(section)
        labels, labels_from = configured_labels(section, model)
        if model.path.name in names:
            raise ConfigError(f"two models are called {model.path.name} ({names[model.path.name]} and "
                              f"{section.path}): records name models by their file name; rename one copy")
        names[model.path.name] = section.path
        out.append((model, labels, labels_from, section))
    return out


def build_plan(config: Config) -> Plan:
    """The plan ``config`` asks for: backends first, then every model with its labels, the dataset
    (``--dataset``; not with ``--live``) and each model's settings; the jobs are every model x backend run."""
    backends = check_backends(config)
    read = _models(config)
    dataset = None
    if config.accuracy.dataset:
        from accel.dataset.coco import load_dataset

        if config.pipeline.live:
            raise ConfigError("--dataset replays the dataset's images: it cannot be combined with --live")
        dataset = load_dataset(config.accuracy.dataset, config.accuracy.split)
    models = tuple(Planned(model, labels, labels_from,
                           Settings.from_config(config, model, dataset=dataset, labels=labels, section=section),
                           _classes(dataset, model, labels)) for model, labels, labels_from, section in read)
    jobs, refused = [], []
    for m in models:
        for variant, kernels, execution in backends.runs:
            why = _cannot_resize(kernels, m)
            if why:
                refused.append(replace(skipped_record(variant, kernels, execution, Outcome(Status.UNAVAILABLE,
                                                                                            error=why)), model=m.name))
            else:
                jobs.append(Job(m.model, variant, kernels, m.settings, execution))
    return Plan(config, models, source_spec(config, models[0].model), tuple(jobs), (*backends.skipped, *refused),
                dataset)


def _cannot_resize(kernels: str, planned: Planned) -> str:
    """Why the kernel set cannot feed this model as its [model] resize_filter asks ("" when it can)."""
    wanted, filters = planned.settings.resize_filter, _filters_of(kernels)
    if wanted == "auto" or not filters or wanted in filters:
        return ""  # an unloadable set: check_backends said what it could, the run says the rest
    able = [n for n in REGISTRY.names() if wanted in _filters_of(n)]
    return (f"{planned.name}: [model] resize_filter = {wanted}, and kernel set {kernels!r} resizes with "
            f"{' or '.join(filters)} only; " + (f"{', '.join(able)} computes {wanted}" if able else
                                                   "no kernel set here computes it"))


def _filters_of(name: str) -> tuple[str, ...]:
    """The resize filters kernel set ``name`` computes (its class's ``filters``), () when it does not load."""
    try:
        return tuple(getattr(REGISTRY.load(name), "filters", ("antialias",)))
    except (LookupError, ImportError):
        return ()


def _classes(dataset: Dataset | None, model: ModelInfo, labels: tuple[str, ...]) -> dict[int, int]:
    """The model's class ids mapped to the dataset's categories by name (none without a dataset)."""
    if dataset is None or model.family is Family.CLASSIFIER:  # a classifier is not scored on boxes
        return {}
    from accel.dataset.coco import category_map

    return category_map(labels, model.num_classes, dataset.categories, dataset.annotated_categories())
