"""Feeding a board: what a run reads from this machine (models and the labels files beside them, labels files
given, the dataset, a picture or video source) goes into a cache on the board keyed by content (sent once),
and the run's configuration is written for the board with those paths changed to the cache's.

The configuration is resolved here, flags and environment and accel.toml together, into one frozen
``Config``; the board gets that configuration as a TOML file and nothing else, so every flag means on the
board what it means here, and the board's own ``ACCEL_*`` environment is cleared for the run.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from accel.core.errors import AccelError, ConfigError
from accel.model.labels import beside
from accel.plan.config import ENV_VARS, Config
from accel.sources import parse_source

__all__ = ["Upload", "board_config", "cleared_environment", "delegate_order", "upload_of", "uploads"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Upload:
    """One input as the board keeps it: ``files`` (path there relative to the entry's folder, path here),
    ``key`` the sha256 of their names and contents; ``name`` the entry the configuration points at
    (a file, or for a folder the folder itself)."""

    key: str
    name: str
    files: tuple[tuple[str, Path], ...]
    size: int

    def remote(self, cache: str) -> str:
        return posixpath.join(cache, self.key, self.name)


def _digest(files: Iterable[tuple[str, Path]]) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    for rel, path in files:
        h.update(rel.encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        h.update(b"\0")
    return h.hexdigest()[:32], size


def upload_of(entry: Path, extra: Iterable[Path] = ()) -> Upload:
    """A file (with ``extra`` files kept beside it), or a folder and everything under it."""
    try:
        if entry.is_dir():
            files = [(posixpath.join(entry.name, *p.relative_to(entry).parts), p)
                     for p in sorted(entry.rglob("*")) if p.is_file()]
        else:
            files = [(entry.name, entry), *((p.name, p) for p in extra if p.name != entry.name)]
        key, size = _digest(files)
    except OSError as exc:
        raise ConfigError(f"{entry}: cannot be read to send to a board ({exc.strerror or exc})") from None
    return Upload(key, entry.name, tuple(files), size)


def uploads(config: Config) -> tuple[dict[str, Upload], dict[str, Any]]:
    """What the run reads from this machine, keyed by the configuration key it fills ('models.0.path',
    'models.0.labels', 'accuracy.dataset', 'pipeline.source'), and the configuration as a plain dict with
    those keys still naming the local paths (``board_config`` changes them)."""
    from accel.model import default_model_path

    sent: dict[str, Upload] = {}
    models = list(config.models) or [config.model]
    for i, model in enumerate(models):
        path = Path(model.path).expanduser() if model.path else default_model_path()
        if not path.is_file():
            raise ConfigError(f"model {model.path or path}: not a file here; a remote run sends the model from "
                              "this machine, so give a model file (a folder or glob names its .tflite files)")
        sent[f"models.{i}.path"] = upload_of(path, [] if model.labels else beside(path))
        if model.labels:
            sent[f"models.{i}.labels"] = upload_of(Path(model.labels).expanduser())
    if config.accuracy.dataset:
        sent["accuracy.dataset"] = _dataset_upload(Path(config.accuracy.dataset).expanduser(), config.accuracy.split)
    try:
        kind, target = parse_source(config.pipeline.source)
    except AccelError:
        kind, target = "", ""
    if kind in ("image", "video"):
        sent["pipeline.source"] = upload_of(Path(target).expanduser())
    return sent, _plain(config)


def _dataset_upload(given: Path, split: str) -> Upload:
    """The dataset's folder (a file given is sent with the folder it belongs to, the configuration then
    naming it inside the board's copy); every image and the annotations must lie under that folder, and a
    data.yaml must name its root relatively, or the board's copy could not find them."""
    from accel.dataset.coco import load_dataset

    dataset = load_dataset(given, split)
    root = dataset.root.resolve()
    outside = [p for p in (dataset.annotations, *dataset.files.values()) if not p.resolve().is_relative_to(root)]
    if outside:
        raise ConfigError(f"dataset {given}: {outside[0]} is outside its folder {root}; a remote run sends that "
                          "folder, so keep the annotations and images under it (a data.yaml's path relative)")
    folder = upload_of(root)
    if given.is_dir() and given.resolve() == root:
        return folder
    inner = given.resolve().relative_to(root) if given.resolve().is_relative_to(root) else Path(given.name)
    return Upload(folder.key, posixpath.join(folder.name, *inner.parts), folder.files, folder.size)


def _plain(config: Config) -> dict[str, Any]:
    def plain(section: Any) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(section).items()}

    models = list(config.models) or [config.model]
    delegates: dict[str, Any] = {name: {"enabled": False} for name in ("cpu-reference", "xnnpack", "null")}
    delegates.update({name: {"enabled": True, **opts} for name, opts in config.delegates.thaw().items()})
    power = {**plain(config.power), **config.meters.thaw()}
    return {"models": [plain(m) for m in models], "pipeline": plain(config.pipeline),
            "decode": plain(config.decode), "accuracy": plain(config.accuracy), "output": plain(config.output),
            "kernels": config.kernels.thaw(), "delegates": delegates, "power": power,
            "thermal": plain(config.thermal), "report": plain(config.report)}


def board_config(plain: dict[str, Any], sent: dict[str, Upload], cache: str, run_dir: str) -> str:
    """The run's configuration as TOML for the board: each sent input at its place in ``cache``, the result
    and reports in ``run_dir``/out."""
    import tomli_w

    data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else [dict(m) for m in v]) for k, v in plain.items()}
    for dotted, upload in sent.items():
        parts = dotted.split(".")
        where = data["models"][int(parts[1])] if parts[0] == "models" else data[parts[0]]
        key = parts[-1]
        if dotted == "pipeline.source":
            kind = where[key].split(":", 1)[0].strip()
            where[key] = f"{kind}:{upload.remote(cache)}"
        else:
            where[key] = upload.remote(cache)
    data["output"] = {**data["output"], "dir": posixpath.join(run_dir, "out"),
                      "json": posixpath.join(run_dir, "out", "result.json")}
    return tomli_w.dumps(data)


def delegate_order(config: Config) -> list[str]:
    """``NAME=VALUE`` words for ``env``: the delegates in the order this run has them (accel.toml's tables
    alone would put the default ones first)."""
    return [f"ACCEL_DELEGATES={','.join(config.delegates)}"] if config.delegates else []


def cleared_environment() -> list[str]:
    """``env`` arguments that clear the board's ``ACCEL_*`` variables a run would read over its file."""
    return ["env", *(f"-u{name}" for name in (*ENV_VARS, "ACCEL_CONFIG"))]
