"""The result document: one versioned JSON per run, rewritten after every variant so a crash loses
nothing already measured."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from accel.record import VariantRecord

SCHEMA_VERSION = 2
#: Versions ``load_result`` reads: version 1 lacks ``clock``, ``power``, ``thermal`` and ``window``.
READABLE_VERSIONS = (1, 2)


def default_result_path(out_dir: str | Path) -> Path:
    """``results/<YYYYmmdd-HHMMSS>/result.json`` (a new folder per run)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(out_dir) / stamp
    n = 1
    while base.exists():
        n += 1
        base = Path(out_dir) / f"{stamp}-{n}"
    return base / "result.json"


class ResultWriter:
    """Holds the document's header and the variants' records, and writes the document atomically (temp file
    + rename) on every change."""

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self._fields: dict[str, Any] = {"schema": "accel.result", "schema_version": SCHEMA_VERSION, **header}
        self.records: list[VariantRecord] = []
        self.complete = False
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=_plain), encoding="utf-8")
        os.replace(tmp, self.path)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a result document, checking it is one and of a schema this version understands."""
    from accel.errors import ConfigError

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
