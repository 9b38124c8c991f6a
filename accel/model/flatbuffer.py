"""The one reader of .tflite flatbuffers: a file's bytes parsed once into op names, ops, tensors and constants.

``Flatbuffer(buf, where)`` checks the ``TFL3`` identifier, then reads the first subgraph (the one a runtime
invokes): op-code names (builtin, or the custom code), every op's inputs and outputs, every tensor as a
``TensorInfo``, which tensors are constants and their stored values, metadata entries, and that every weight
buffer lies inside the file. Everything else in ``accel.model`` (loading, family detection, costs, edits) reads
models through it. ``schema`` is the generated TFLite schema module the reader and the editor share.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from flatbuffers import flexbuffers

from accel.core.errors import ModelError
from accel.model.info import TensorInfo

try:
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # a build-only environment: TensorFlow ships the same generated module
    from tensorflow.lite.python import schema_py_generated as schema  # type: ignore[no-redef]

__all__ = ["IDENTIFIER", "Flatbuffer", "Op", "check_identifier", "corrupt", "opcode_name", "read_flatbuffer",
           "schema"]

IDENTIFIER = b"TFL3"
_DTYPES = {
    "FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32", "UINT8": "uint8", "INT64": "int64",
    "BOOL": "bool", "INT16": "int16", "INT8": "int8", "FLOAT64": "float64", "UINT32": "uint32",
    "UINT16": "uint16", "STRING": "string",
}
_NUMERIC = frozenset({"float32", "float16", "int32", "uint8", "int64", "int16", "int8", "float64"})  # constants read


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


_OP_NAMES = _enum_names(schema.BuiltinOperator)
_TYPE_NAMES = _enum_names(schema.TensorType)


def check_identifier(buf: bytes, where: str) -> None:
    """``ModelError`` unless ``buf`` carries the TFLite flatbuffer identifier."""
    if len(buf) < 8 or buf[4:8] != IDENTIFIER:
        raise ModelError(f"{where} is not a TFLite model (no 'TFL3' flatbuffer identifier); expected a .tflite file")


def corrupt(where: str, size: int, exc: BaseException) -> ModelError:
    """The error for bytes that do not hold the model their header describes (``exc``: what reading them raised)."""
    return ModelError(f"{where} is truncated or corrupt: its {size} bytes do not hold the model its header "
                      f"describes ({type(exc).__name__}); re-export or re-download it")


def opcode_name(builtin: int, deprecated: int, custom: bytes | str | None) -> str:
    """An op code's name: the builtin operator's (``OP_<n>`` for one this schema lacks), or for CUSTOM the
    custom code. Takes the fields of ``schema.OperatorCode`` or of the object API's ``OperatorCodeT``."""
    code = max(int(builtin), int(deprecated))  # codes past 127 live in builtin_code only
    name = _OP_NAMES.get(code, f"OP_{code}")
    if name != "CUSTOM":
        return name
    if isinstance(custom, str):
        return custom or name
    return (custom or b"CUSTOM").decode("utf-8", "replace")


@dataclass(frozen=True)
class Op:
    """One op of the first subgraph, in execution order; ``raw`` is its ``schema.Operator``."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    raw: Any

    def options(self, kind: str) -> Any:
        """The op's builtin options as a ``schema.<kind>`` table (e.g. ``"Pool2DOptions"``), or None."""
        if self.raw.BuiltinOptionsType() != getattr(schema.BuiltinOptions, kind):
            return None
        table = self.raw.BuiltinOptions()
        if table is None:
            return None
        opts = getattr(schema, kind)()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def custom_options(self) -> dict[str, object]:
        """A custom op's flexbuffer options as a dict ({} when absent or unreadable)."""
        if self.raw.CustomOptionsIsNone():
            return {}
        try:
            value = flexbuffers.Loads(self.raw.CustomOptionsAsNumpy().tobytes())
        except Exception:  # options are informative only; a model with odd options still runs
            return {}
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


class Flatbuffer:
    """A .tflite file's bytes, parsed once (see the module docstring). ``where`` names the file in errors.

    Raises ``ModelError``: no ``TFL3`` identifier, no subgraph, or bytes that do not hold the model the header
    describes (truncated or corrupt)."""

    def __init__(self, buf: bytes, where: str = "model bytes") -> None:
        check_identifier(buf, where)
        self.buf, self.where = buf, where
        try:
            self._parse()
        except ModelError:
            raise
        except Exception as exc:  # reads past the end of a truncated file raise struct/index errors
            raise corrupt(where, len(buf), exc) from exc

    def _parse(self) -> None:
        model = self.model = schema.Model.GetRootAs(self.buf, 0)
        if model.SubgraphsLength() < 1:
            raise ModelError(f"{self.where} has no subgraph; it is not a runnable TFLite model")
        graph = self.subgraph = model.Subgraphs(0)
        self.op_codes = tuple(opcode_name(oc.BuiltinCode(), oc.DeprecatedBuiltinCode(), oc.CustomCode())
                              for oc in (model.OperatorCodes(i) for i in range(model.OperatorCodesLength())))
        ops = []
        self._producer: dict[int, Op] = {}
        self._readers: dict[int, list[tuple[int, int]]] = {}
        for i in range(graph.OperatorsLength()):
            raw = graph.Operators(i)
            op = Op(i, self.op_codes[raw.OpcodeIndex()], _ints(raw.InputsAsNumpy() if raw.InputsLength() else ()),
                    _ints(raw.OutputsAsNumpy() if raw.OutputsLength() else ()), raw)
            ops.append(op)
            for out in op.outputs:
                self._producer[out] = op
            for slot, t in enumerate(op.inputs):
                self._readers.setdefault(t, []).append((i, slot))
        self.ops: tuple[Op, ...] = tuple(ops)
        self._check_buffers()
        raw_tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
        self._check_indices(raw_tensors)
        self.tensors = tuple(_tensor_info(i, t) for i, t in enumerate(raw_tensors))
        for i, t in enumerate(raw_tensors):
            _check_zero_points(self.where, self.tensors[i], t.Quantization())
        self._buffer_of = tuple(int(t.Buffer()) for t in raw_tensors)
        self._constant = tuple(self._stored(b) for b in self._buffer_of)
        self.inputs = tuple(self.tensors[i] for i in _ints(graph.InputsAsNumpy() if graph.InputsLength() else ()))
        self.outputs = tuple(self.tensors[i] for i in _ints(graph.OutputsAsNumpy() if graph.OutputsLength() else ()))
        self.description = (model.Description() or b"").decode("utf-8", "replace")

    def _stored(self, buffer: int) -> bool:
        b = self.model.Buffers(buffer) if buffer > 0 else None
        return b is not None and (b.DataLength() > 0 or b.Size() > 0)

    def _check_buffers(self) -> None:
        """Every weight buffer must lie inside the file: a truncated download keeps a valid header and
        loses the weights at the end."""
        size = len(self.buf)
        for i in range(self.model.BuffersLength()):
            b = self.model.Buffers(i)
            if b.Offset() > 1:  # weights stored after the flatbuffer (models over 2 GB)
                end = int(b.Offset()) + int(b.Size())
            else:
                o = b._tab.Offset(4)
                end = b._tab.Vector(o) + b._tab.VectorLen(o) if o else 0
            if end > size:
                raise ModelError(f"the file ends at byte {size} but weight buffer {i} runs to byte {end}: "
                                 "the model is truncated; re-export or re-download it")

    def signature(self, tensor: int) -> tuple[int, ...]:
        """``tensor``'s shape signature (-1: a dimension left dynamic); () when the file stores none."""
        raw = self.subgraph.Tensors(tensor)
        return tuple(int(d) for d in raw.ShapeSignatureAsNumpy()) if raw.ShapeSignatureLength() else ()

    def with_output_shapes(self, shapes: list[tuple[int, ...]]) -> Flatbuffer:
        """This parse with the graph outputs' shapes replaced (as the runtime sizes them), for a file whose
        stored output shapes are placeholders for dynamic dimensions."""
        fixed = list(self.tensors)
        for t, shape in zip(self.outputs, shapes, strict=True):
            fixed[t.index] = replace(t, shape=tuple(shape))
        other = copy.copy(self)
        other.tensors = tuple(fixed)
        other.outputs = tuple(fixed[t.index] for t in self.outputs)
        return other

    def declared_scale(self, tensor: int) -> float | None:
        """The one quantization scale ``tensor`` declares as stored (NaN or 0 included), or None without one."""
        q = self.subgraph.Tensors(tensor).Quantization()
        return float(q.Scale(0)) if q is not None and q.ScaleLength() == 1 else None

    def _check_indices(self, raw_tensors: list[Any]) -> None:
        """Every tensor an op or the graph names exists, and every tensor's buffer: the runtime's verifier checks
        only the flatbuffer's layout, so a damaged index passes it and crashes (or misleads) whatever reads on."""
        n, buffers = len(raw_tensors), self.model.BuffersLength()
        named = [(f"op {op.index} ({op.name})", t) for op in self.ops for t in (*op.inputs, *op.outputs)]
        graph = self.subgraph
        named += [("the graph's inputs", int(t)) for t in (graph.InputsAsNumpy() if graph.InputsLength() else ())]
        named += [("the graph's outputs", int(t)) for t in (graph.OutputsAsNumpy() if graph.OutputsLength() else ())]
        for who, t in named:
            if not -1 <= t < n:
                raise ModelError(f"{self.where}: {who} names tensor {t}, but the graph has {n} tensors: the model is "
                                 "corrupt; re-export or re-download it")
        for i, t in enumerate(raw_tensors):
            if not 0 <= t.Buffer() < max(buffers, 1):
                raise ModelError(f"{self.where}: tensor {i} names buffer {t.Buffer()}, but the model has {buffers} "
                                 "buffers: the model is corrupt; re-export or re-download it")

    def producer(self, tensor: int) -> Op | None:
        """The op that writes ``tensor`` (None for graph inputs and constants)."""
        return self._producer.get(tensor)

    def readers(self, tensor: int) -> list[tuple[int, int]]:
        """The ops that read ``tensor``, as (op index, input slot), in graph order."""
        return self._readers.get(tensor, [])

    def first_op(self, name: str) -> Op | None:
        """The first op called ``name`` (a builtin name or a custom code), or None."""
        return next((op for op in self.ops if op.name == name), None)

    def is_constant(self, tensor: int) -> bool:
        """Whether ``tensor`` has its values stored in the file."""
        return tensor >= 0 and self._constant[tensor]

    def constant(self, tensor: int) -> np.ndarray | None:
        """A constant numeric tensor's stored values (not dequantized) in its shape, or None."""
        info = self.tensors[tensor]
        if not self.is_constant(tensor) or info.dtype not in _NUMERIC:
            return None
        values = np.frombuffer(self.buffer_data(self._buffer_of[tensor]), np.dtype(info.dtype))
        if values.size != math.prod(info.shape):
            return None
        return values.reshape(info.shape)

    def buffer_data(self, buffer: int) -> bytes:
        """The bytes of buffer ``buffer`` (b"" when it holds none)."""
        b = self.model.Buffers(buffer)
        if b.Offset() > 1:  # stored after the flatbuffer (models over 2 GB)
            return self.buf[int(b.Offset()): int(b.Offset()) + int(b.Size())]
        return b.DataAsNumpy().tobytes() if b.DataLength() > 0 else b""

    def constant_params(self) -> int:
        """Elements of every constant tensor except int32/int64 ones of at most 8 elements (shapes, axes)."""
        return sum(math.prod(t.shape) for t in self.tensors if self._constant[t.index] and not _small_int(t))

    def metadata(self, name: str) -> bytes | None:
        """The buffer of metadata entry ``name``, or None when the model has none by that name."""
        for i in range(self.model.MetadataLength()):
            entry = self.model.Metadata(i)
            if (entry.Name() or b"").decode("utf-8", "replace") == name:
                return self.buffer_data(int(entry.Buffer()))
        return None


def read_flatbuffer(path_or_bytes: str | Path | bytes | bytearray | memoryview) -> Flatbuffer:
    """Read a .tflite file (a path, read once, or the file's bytes) into a ``Flatbuffer``."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return Flatbuffer(bytes(path_or_bytes), "model bytes")
    where = str(path_or_bytes)
    try:
        buf = Path(path_or_bytes).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {where}: {exc.strerror or exc}") from exc
    return Flatbuffer(buf, where)


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _small_int(t: TensorInfo) -> bool:
    return t.dtype in ("int32", "int64") and math.prod(t.shape) <= 8


# The zero points TFLite's quantization spec allows per type: int8 and uint8 within their range, int16
# activations and int32 biases 0 (symmetric). A file outside them reads and even passes the runtime's verifier,
# but the runtime's default delegate (XNNPACK) refuses it when the interpreter is built.
_ZERO_POINTS = {"int8": (-128, 127), "uint8": (0, 255), "int16": (0, 0), "int32": (0, 0)}


def _check_zero_points(where: str, info: TensorInfo, q: Any) -> None:
    bounds = _ZERO_POINTS.get(info.dtype)
    if q is None or bounds is None or not q.ZeroPointLength():
        return
    bad = [int(z) for z in q.ZeroPointAsNumpy() if not bounds[0] <= int(z) <= bounds[1]]
    if bad:
        wants = "0" if bounds == (0, 0) else f"{bounds[0]}..{bounds[1]}"
        raise ModelError(f"{where}: tensor {info.index} ({info.name!r}, {info.dtype}) has quantization zero point "
                         f"{bad[0]}; TFLite's quantization spec allows {wants} for {info.dtype} tensors, and the "
                         "runtime's default delegate refuses the model: re-export it (a converter or editing "
                         "tool wrote an invalid quantization)")


def _tensor_info(index: int, t: Any) -> TensorInfo:
    q = t.Quantization()
    scale, zero_point = 0.0, 0
    if q is not None and q.ScaleLength() == 1:
        scale, zero_point = float(q.Scale(0)), int(q.ZeroPoint(0))
    name = (t.Name() or b"").decode("utf-8", "replace")
    type_name = _TYPE_NAMES.get(t.Type(), "")
    dtype = _DTYPES.get(type_name, type_name.lower() or "unknown")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    return TensorInfo(name, index, shape, dtype, scale, zero_point)
