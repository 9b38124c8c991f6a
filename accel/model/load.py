"""``load_model(path)``: read a .tflite file once and describe it as a ``ModelInfo``.

The file's bytes are read once (``read_model_file``: a regular file or a pipe such as ``<(cat model.tflite)``,
never a device or a folder) and parsed once (``accel.model.flatbuffer``); the same parse gives the input and
output tensors with shapes, dtypes and quantization, the op histogram, the parameter count, and everything family
detection (``accel.model.families``) looks at. Output roles of detectors (boxes, classes, scores, count) are
found by what the tensors are (the post-process op's output slots), never by their position in the graph's
output list: TF1 and TF2 exports order them differently.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from accel.core.errors import ModelError, file_kind
from accel.model.families import detect
from accel.model.flatbuffer import IDENTIFIER, Flatbuffer, corrupt
from accel.model.info import Family, ModelInfo, TensorInfo

__all__ = ["PIPE_LIMIT_BYTES", "load_model", "read_model_file"]

#: The most a model read from a pipe may hold (a regular file's size is known before it is read).
PIPE_LIMIT_BYTES = 2 << 30
_CHUNK = 1 << 20
_QUANTIZED = frozenset({"uint8", "int8", "int16"})  # the dtypes read through their scale


def load_model(path: str | Path, family: str = "auto", *, content: bytes | None = None) -> ModelInfo:
    """Read and classify a .tflite model: the file at ``path``, or ``content`` (its bytes, already read once
    by ``read_model_file``; ``path`` then only names it). Raises ``ModelError`` with one clear line on any
    problem."""
    p = Path(path)
    buf = read_model_file(p) if content is None else content
    fb = Flatbuffer(buf, str(p))
    try:
        return _describe(p, fb, family)
    except ModelError:
        raise
    except Exception as exc:  # family detection reads options, constants and metadata the parse did not touch
        raise corrupt(str(p), len(buf), exc) from exc


def read_model_file(path: str | Path) -> bytes:
    """A model file's bytes, read once: a regular file, or a pipe (``--model <(curl ...)``: it cannot be read
    twice, so the bytes are what every later step uses) of at most ``PIPE_LIMIT_BYTES``. A folder, a device
    such as /dev/zero or a socket is refused, as is a file that does not start like a TFLite flatbuffer (its
    first 8 bytes are read before the rest)."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise ModelError(f"model file not found: {p} (give --model PATH, or leave it out for the default)") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ModelError(f"cannot read model {p}: {getattr(exc, 'strerror', None) or exc}") from exc
    if stat.S_ISDIR(mode):
        raise ModelError(f"model path is a folder, expected a .tflite file: {p}")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise ModelError(f"model path {p} is {file_kind(mode)}, expected a .tflite file (or a pipe such as "
                         "<(cat model.tflite))")
    try:
        with open(p, "rb") as f:
            head = f.read(8)
            if len(head) < 8 or head[4:8] != IDENTIFIER:
                raise ModelError(f"{p} is not a TFLite model (no 'TFL3' flatbuffer identifier); expected a .tflite "
                                 "file")
            return head + (f.read() if stat.S_ISREG(mode) else _read_pipe(f, p))
    except OSError as exc:
        raise ModelError(f"cannot read model {p}: {exc.strerror or exc}") from exc


def _read_pipe(f: Any, p: Path) -> bytes:
    chunks, total = [], 8
    while chunk := f.read(_CHUNK):
        total += len(chunk)
        if total > PIPE_LIMIT_BYTES:
            raise ModelError(f"model {p}: a pipe gave more than {PIPE_LIMIT_BYTES >> 30} GiB, the most accel reads "
                             "from one; save the model to a file and give its path")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(p: Path, fb: Flatbuffer, family: str) -> ModelInfo:
    """The model's family (detected by ``accel.model.families``, or forced by ``family``), roles and hints."""
    known = ", ".join(f.value for f in Family)
    if not fb.inputs or len(fb.inputs[0].shape) != 4 or fb.inputs[0].shape[3] != 3:
        shape = list(fb.inputs[0].shape) if fb.inputs else "none"
        raise ModelError(f"{p}: expected one image input [1, H, W, 3], found {shape}; "
                         f"accel supports these families: {known}")
    if family != "auto":
        try:
            Family.parse(family)
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
    _check_quantization(p, fb)
    fb = _resolved(fb)
    found = detect(fb, family)
    fam = Family.parse(found.family)
    outputs = fb.outputs
    max_detections = found.postprocess_options.get("max_detections")
    if fam is Family.SSD and isinstance(max_detections, int):
        outputs = _ssd_shapes(outputs, found.roles, max_detections)
    return ModelInfo(
        path=p, size_bytes=len(fb.buf), sha256=hashlib.sha256(fb.buf).hexdigest(), inputs=fb.inputs,
        outputs=outputs, ops=dict(Counter(op.name for op in fb.ops)), params=fb.constant_params(), family=fam,
        roles=found.roles, description=fb.description, postprocess_options=found.postprocess_options,
        decode_hints=found.hints, num_classes=found.num_classes,
    )


def _resolved(fb: Flatbuffer) -> Flatbuffer:
    """``fb`` with its output shapes as the runtime sizes them, when the file's are placeholders: a stored shape
    whose signature leaves a dimension past the batch dynamic (-1). Other files are returned as they are."""
    placeholder = any(t.shape and any(d < 0 for d in fb.signature(t.index)[1:]) for t in fb.outputs)
    if not placeholder:
        return fb
    from accel.model.verify import runtime_output_shapes

    shapes = runtime_output_shapes(fb.buf)
    return fb.with_output_shapes(shapes) if shapes is not None and len(shapes) == len(fb.outputs) else fb


def _check_quantization(p: Path, fb: Flatbuffer) -> None:
    """A graph input or output whose scale is NaN, infinite, negative, or zero on an integer tensor would turn
    every score into NaN or nonsense, and the run would still look fine: refuse it."""
    for kind, tensors in (("input", fb.inputs), ("output", fb.outputs)):
        for t in tensors:
            scale = fb.declared_scale(t.index)
            if scale is not None and (not math.isfinite(scale) or scale < 0 or
                                      (scale == 0 and t.dtype in _QUANTIZED)):
                raise ModelError(f"{p}: {kind} {t.name!r} ({t.dtype}) has quantization scale {scale!r}, expected a "
                                 "finite number > 0: the model is damaged or was converted wrongly; re-export it")


def _ssd_shapes(outputs: tuple[TensorInfo, ...], roles: dict[str, int], m: int) -> tuple[TensorInfo, ...]:
    """The post-process op's outputs carry no static shape in the file; they follow from max_detections."""
    shapes = {"boxes": (1, m, 4), "classes": (1, m), "scores": (1, m), "count": (1,)}
    fixed = list(outputs)
    for role, pos in roles.items():
        if not fixed[pos].shape:
            fixed[pos] = replace(fixed[pos], shape=shapes[role])
    return tuple(fixed)
