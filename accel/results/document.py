"""The result document: one versioned JSON per run, rewritten after every variant so a crash loses
nothing already measured."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accel.core.errors import OutputError, file_kind
from accel.results.record import VariantRecord

if TYPE_CHECKING:
    from accel.plan.config import Config

SCHEMA_VERSION = 3
#: Versions ``load_result`` reads: version 1 lacks ``clock``, ``power``, ``thermal`` and ``window``; versions 1
#: and 2 hold one model (``model``), version 3 every model of a sweep (``models``, each variant's ``model``).
READABLE_VERSIONS = (1, 2, 3)


def result_target(config: Config, result_path: str | Path | None) -> Callable[[], Path]:
    """Check, before anything is captured, that the result can be written where the run was told (``--json``,
    ``[output] json``, else a new folder in ``[output] dir``); returns what gives the path once the frames are
    captured (creating the run's own folder)."""
    if result_path or config.output.json:
        named = "option --json" if result_path else f"{config.source_file or 'config'}: output.json"
        path = check_result_file(result_path or config.output.json, named)
        return lambda: path
    named = config.origins.get("output.dir") or "output.dir"
    check_result_dir(config.output.dir, named)
    return lambda: new_run_folder(config.output.dir, named)


def new_run_folder(out_dir: str | Path, named: str = "output.dir") -> Path:
    """``<out_dir>/<YYYYmmdd-HHMMSS>/result.json`` in a folder made for this run alone: each candidate is
    created with an exclusive ``mkdir``, so two runs started in the same second get ``<stamp>`` and
    ``<stamp>-2`` and never share (or overwrite) one folder."""
    root = Path(out_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            folder = root / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue  # another run took it first
            return folder / "result.json"
    except OSError as exc:
        raise OutputError(f"{named}: cannot create a run folder in {root}: {_why(exc)}; {_WHAT_TO_DO}") from exc
    raise AssertionError("unreachable")


def check_result_dir(out_dir: str | Path, named: str = "output.dir") -> None:
    """Before anything is captured: a run folder can be made in ``out_dir`` (see ``_check_folder``)."""
    _check_folder(Path(out_dir), named, Path(out_dir))


def check_result_file(path: str | Path, named: str = "option --json") -> Path:
    """Before anything is captured: the file to write the result JSON to when ``path`` is given. An existing
    target must be a regular file, since each write replaces it: a folder, a device (``/dev/null``), a named
    pipe or a socket is refused, not replaced. A symlink is followed: the file it points to is written (and
    the reports beside that file). Its folder must be writable (see ``_check_folder``)."""
    given = Path(path)
    real = Path(os.path.realpath(given))
    shown = f"{given} (a symlink to {real})" if real != given.absolute() and given.is_symlink() else str(given)
    try:
        st: os.stat_result | None = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        st = None  # to be created; a parent that is a file is reported below
    except OSError as exc:  # a symlink loop, a folder it may not search
        raise OutputError(f"{named}: cannot use {shown}: {_why(exc)}; {_WHAT_TO_DO}") from exc
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{named}: {shown} is a folder; give a file path such as {given / 'result.json'}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{named}: {shown} is {file_kind(st.st_mode)}, not a regular file; accel writes the result "
                          "by replacing the file, which would destroy it: give the path of a regular file")
    _check_folder(real.parent, named, given)
    return real


_WHAT_TO_DO = "choose a folder you can write (--json PATH, or [output] dir / ACCEL_OUTPUT_DIR)"


def _check_folder(folder: Path, named: str, shown: Path) -> None:
    """The nearest existing folder on the way to ``folder`` is a folder, and a 4 KiB file can be written in it
    (which a read-only or immutable folder, /proc, a full disk or missing permissions refuse)."""
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{named}: {shown} is under {probe}, which is a file, not a folder; {_WHAT_TO_DO}")
    try:
        with tempfile.TemporaryFile(dir=probe) as fh:
            fh.write(bytes(4096))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise OutputError(f"{named}: cannot write in {probe}: {_why(exc)}; {_WHAT_TO_DO}") from exc


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class ResultWriter:
    """Holds the document's header and the variants' records, and writes the document atomically (temp file
    + rename) on every change."""

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self._fields: dict[str, Any] = {"schema": "accel.result", "schema_version": SCHEMA_VERSION, **header}
        self.records: list[VariantRecord] = []
        self.complete = False
        self.saved: int | None = None  # variants in the document last written (None: not written yet)
        self.write()

    @property
    def doc(self) -> dict[str, Any]:
        """The document as written: header, variants (their JSON form), later fields, ``complete``."""
        return {**self._fields, "variants": [r.to_json() for r in self.records], "complete": self.complete}

    def add(self, record: VariantRecord) -> None:
        self.records.append(record)
        self.write()

    def update(self, fields: dict[str, Any], records: list[VariantRecord] | None = None, *,
               complete: bool = False) -> None:
        """Add top-level ``fields``, replace the records (the same variants, more measured), and write."""
        self._fields.update(fields)
        if records is not None:
            self.records = list(records)
        self.complete = self.complete or complete
        self.write()

    def write(self) -> None:
        """Write the document to a temp file beside it, then rename it over the last one. A failed write
        (disk full, the folder gone read-only) removes the temp file, keeps the last document and raises
        ``OutputError``."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.doc, indent=1, default=_plain), encoding="utf-8")
            os.replace(tmp, self.path)
        except BaseException as exc:  # an interrupt too: no half-written temp file is left behind
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not isinstance(exc, OSError):
                raise
            kept = "nothing was written" if self.saved is None else \
                f"{self.path} keeps the result as last written ({self.saved} variant{'' if self.saved == 1 else 's'})"
            raise OutputError(f"cannot write the result {self.path}: {_why(exc)}; {kept}: free some space or "
                              f"{_WHAT_TO_DO}") from exc
        self.saved = len(self.records)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def per_model(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A sweep's document (several ``models``) as one document per model, each with that model's variants
    and the backends skipped for every model: what the reports put side by side, as they put several runs.
    A document of one model is returned as it is."""
    models = doc.get("models") or []
    if len(models) <= 1:
        return [doc]
    out = []
    for m in models:
        part = {**doc, "model": m, "models": [m], "sweep": len(models),
                "variants": [v for v in doc.get("variants", []) if v.get("model") in (m.get("name"), None)]}
        if isinstance(doc.get("dataset"), dict) and "class_to_category" in m:
            part["dataset"] = {**doc["dataset"], "class_to_category": m["class_to_category"]}
        out.append(part)
    return out


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a result document, checking it is one and of a schema this version understands."""
    from accel.core.errors import ConfigError

    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read result {p}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != "accel.result":
        raise ConfigError(f"{p} is not an accel result document")
    version = doc.get("schema_version")
    if version not in READABLE_VERSIONS:
        lo, hi = READABLE_VERSIONS[0], READABLE_VERSIONS[-1]
        raise ConfigError(f"{p} has result schema {version}; this accel reads {lo}-{hi}: "
                          "re-run accel compare or upgrade accel")
    return doc
