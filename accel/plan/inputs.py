"""What a run reads before it measures: the configured model (read once, checked as the TFLite runtime
would, a piped model kept as a file for the workers) and its labels."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from accel.core.errors import ConfigError, ModelError
from accel.model import (
    ModelInfo,
    default_model_path,
    find_labels,
    load_labels,
    load_model,
    read_model_file,
    verify_model,
)
from accel.model.cached import cache_dir, cached_file, hold
from accel.plan.sections import ModelSection

__all__ = ["configured_labels", "configured_model"]


def configured_model(section: ModelSection) -> ModelInfo:
    """A configured model (``config.model``, or one of ``config.models``), read once and checked as the TFLite
    runtime would (what it refuses is a bad model, not a failed variant). Read from a pipe, it is kept as a
    regular file (keyed by its sha256) for the delegates and workers, which open it by path."""
    given = Path(section.path) if section.path else default_model_path()
    buf = read_model_file(given)
    model = load_model(given, section.family, content=buf)
    verify_model(buf, str(given))
    if given.is_file():
        return model
    kept = cache_dir("piped") / f"{model.sha256[:16]}.tflite"
    try:
        cached_file(kept, lambda: buf)
        hold(kept)  # the workers open it by path, for as long as this run lasts: no other run prunes it
    except OSError as exc:
        raise ModelError(f"{given}: cannot keep the piped model as {kept}: {exc.strerror or exc}; save the model "
                         "to a file and give its path") from exc
    return replace(model, path=kept)


def _check_labels(labels: tuple[str, ...], model: ModelInfo, section: ModelSection) -> None:
    n = model.num_classes
    if labels and n is not None and len(labels) != n:
        where = section.labels or "the default labels file"
        raise ConfigError(f"labels file {where} has {len(labels)} names but {model.path.name} has {n} classes "
                          "(a labels file with a background line '???' or 'background' first is counted without it)")


def configured_labels(section: ModelSection, model: ModelInfo) -> tuple[tuple[str, ...], str]:
    """The labels file given, else labels found with the model (embedded, or beside it), and where they came
    from; ``ConfigError`` when their count does not match the model's classes."""
    if section.labels:
        labels, found = load_labels(section.labels), section.labels
    else:
        labels, found = find_labels(model.path, model.num_classes)
    _check_labels(labels, model, section)
    return labels, found
