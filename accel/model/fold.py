"""Fold what a graph computes before it sees an image into constants: the rewrite that makes GPU-ready the
exports whose shapes are computed at run time.

Keras models exported with a dynamic batch (shape signature ``[-1, H, W, 3]``) keep shape arithmetic in the
graph: ``SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE`` (and ``-> TILE`` for anchors repeated per batch). LiteRT's
GPU accelerator has no SHAPE kernel and takes RESHAPE and TILE only with constant shape inputs, so it cannot
partition such a graph ("Failed to modify graph with delegate", with or without CPU fallback). accel runs a
model at the shape stored in the file (batch 1), where those computations are constants.

* ``plan_fold``: the ops whose outputs follow from constants and static shapes alone, without running anything;
* ``fold_constants``: the same model with those ops replaced by their outputs, computed by the runtime's own
  kernels (the classic Interpreter, no delegate, in a child process: the values are the ones the original graph
  uses). Every
  tensor keeps the shape the runtime gives it at the stored input shape (a placeholder the converter wrote for
  a -1 is replaced) and loses its shape signature, so the file no longer claims to accept other batch sizes
  (``FoldPlan.pin``: the original did). Tensor indices do not change (metadata that
  names a tensor, such as ``accel.postprocess``, stays valid); how the file was made is recorded in its
  ``accel.prepared`` metadata (``prepared_steps`` reads it back).

Not folded: ops with side effects or randomness, control flow, custom ops, a DEQUANTIZE that decompresses
weights for a compute op (the GPU absorbs it; folding only doubles the file), outputs over ``max_bytes``, and
any SHAPE in a graph with an op whose output size depends on values (WHERE, UNIQUE, NMS, custom ops). The
values are checked: a folded value or a shape that differs between a zero and a random input stops the fold.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accel.core.errors import ModelError
from accel.model.edit import METADATA_KEY, AlignedBuffer, read_model, write_model
from accel.model.flatbuffer import Flatbuffer, read_flatbuffer, schema

__all__ = ["PREPARED_KEY", "FoldPlan", "fold_constants", "plan_fold", "prepared_steps"]

PREPARED_KEY = "accel.prepared"
_NEVER = {"WHILE", "IF", "CALL", "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "RANDOM_UNIFORM",
          "RANDOM_STANDARD_NORMAL", "MULTINOMIAL", "CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"}
_COMPUTE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL", "CONV_3D",
            "EMBEDDING_LOOKUP", "GATHER", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF"}
# Ops whose output shape depends on the values they read: after one, a SHAPE is not known before the image.
_DATA_SHAPED = {"WHERE", "UNIQUE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5"}
_TIMEOUT_S = 300.0  # two inferences of the model on the CPU's builtin kernels


@dataclass(frozen=True)
class FoldPlan:
    """What ``fold_constants`` would do to a graph: ``ops`` (indices, in order) become constants; ``pin``: a
    folded SHAPE read a dimension the signature leaves dynamic (-1), so the batch is pinned to the stored one."""

    ops: tuple[int, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    shape_ops: int = 0  # SHAPE ops among them: run-time shape arithmetic, what the GPU cannot partition
    pin: bool = False

    def __bool__(self) -> bool:
        return bool(self.ops)

    def describe(self) -> str:
        """One line: what folding changes, e.g. "folded 62 ops (PACK 20, SHAPE 15, ...) into constants"."""
        if not self.ops:
            return "nothing to fold"
        parts = ", ".join(f"{name} {n}" for name, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        pinned = ", the dynamic batch pinned to the stored shape" if self.pin else ""
        return f"folded {len(self.ops)} ops computing shapes and constants ({parts}) into constants{pinned}"


def _nbytes(fb: Flatbuffer, t: int) -> int:
    info = fb.tensors[t]
    try:
        size = np.dtype(info.dtype).itemsize
    except TypeError:  # a type numpy has no dtype for (string, resource): counted as 8 bytes an element
        size = 8
    return math.prod(info.shape) * size


def _weight_dequantize(fb: Flatbuffer, op_index: int) -> bool:
    """A DEQUANTIZE of stored weights read only as weights (input 1+) by compute ops."""
    op = fb.ops[op_index]
    uses = fb.readers(op.outputs[0]) if op.outputs else []
    return bool(uses) and all(fb.ops[i].name in _COMPUTE and slot > 0 for i, slot in uses)


def plan_fold(fb: Flatbuffer, max_bytes: int = 4 << 20) -> FoldPlan:
    """The ops of ``fb``'s first subgraph whose outputs are known before any input arrives."""
    known = {t.index for t in fb.tensors if fb.is_constant(t.index)}
    graph_inputs = {t.index for t in fb.inputs}
    ops: list[int] = []
    pin = False
    data_shaped = any(op.name in _DATA_SHAPED or not hasattr(schema.BuiltinOperator, op.name) for op in fb.ops)
    for op in fb.ops:
        ins = [t for t in op.inputs if t >= 0]
        if op.name in _NEVER or not hasattr(schema.BuiltinOperator, op.name) or not op.outputs:
            continue  # custom ops (their name is their custom code), control flow, state, randomness
        if op.name == "SHAPE":
            ok = bool(ins) and not data_shaped
        else:
            ok = bool(ins) and all(t in known for t in ins) and not (op.name == "DEQUANTIZE"
                                                                      and _weight_dequantize(fb, op.index))
        ok = ok and all(t not in graph_inputs and _nbytes(fb, t) <= max_bytes for t in op.outputs)
        if ok:
            ops.append(op.index)
            known.update(op.outputs)
            pin = pin or (op.name == "SHAPE" and any(d < 0 for d in fb.signature(ins[0])))
    counts = dict(Counter(fb.ops[i].name for i in ops))
    return FoldPlan(tuple(ops), counts, counts.get("SHAPE", 0), pin)


def _run(data: bytes, tensors: list[int], seed: int | None) -> tuple[dict[int, np.ndarray], list[tuple[int, ...]]]:
    """The values the runtime's builtin kernels give ``tensors`` and every tensor's shape, for inputs of zeros
    (``seed`` None) or random."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(seed)
    for d in interpreter.get_input_details():
        kind = np.dtype(d["dtype"])
        value = np.zeros(d["shape"], kind) if seed is None else (
            rng.integers(np.iinfo(kind).min, np.iinfo(kind).max, d["shape"], endpoint=True).astype(kind)
            if kind.kind in "iu" else rng.uniform(-1, 1, d["shape"]).astype(kind))
        interpreter.set_tensor(d["index"], value)
    interpreter.invoke()
    shapes = [tuple(int(v) for v in t["shape"]) for t in sorted(interpreter.get_tensor_details(),
                                                                key=lambda t: int(t["index"]))]
    return {t: np.ascontiguousarray(interpreter.get_tensor(t)) for t in tensors}, shapes


def _computed(data: bytes, tensors: list[int]) -> tuple[dict[int, np.ndarray], list[tuple[int, ...]]]:
    """``_run`` on zeros, checked against a random input: folded values and shapes must not depend on it. Run
    in a child process (``_child``): on some files the runtime crashes the process instead of raising."""
    try:
        proc = subprocess.run([sys.executable, "-c", "import sys; sys.path[:0] = __import__('json').loads("
                               "sys.argv[2]); from accel.model.fold import _child; _child()",
                               json.dumps(tensors), json.dumps(sys.path)], input=data, capture_output=True,
                              timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelError(f"folding constants: the runtime did not finish computing them within {_TIMEOUT_S:g} s; "
                         "set prepare = \"none\" to run the file as it is") from None
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else (said[-1] if said else "no message")
        raise ModelError(f"folding constants: the runtime could not run the model to compute them ({why}); "
                         "set prepare = \"none\" to run the file as it is")
    try:
        with np.load(io.BytesIO(proc.stdout)) as found:
            values = {t: found[f"t{t}"] for t in tensors}
            shapes = [tuple(int(d) for d in shape) for shape in json.loads(str(found["shapes"]))]
            moved = json.loads(str(found["moved"]))
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"folding constants: the child computing them answered unreadably ({exc}); set "
                         "prepare = \"none\" to run the file as it is") from exc
    if moved:
        raise ModelError(f"folding constants: {'tensor ' + str(moved[0]) if moved[0] >= 0 else 'a shape'} depends "
                         "on the input, so it is not a constant; set prepare = \"none\" to run the file as it is")
    return values, shapes


def _child() -> None:
    """The child of ``_computed``: the model on stdin, the tensors as JSON in argv[1]; writes an .npz of their
    values (``t<index>``), every tensor's shape and what moved between the two inputs (-1: a shape)."""
    data, tensors = sys.stdin.buffer.read(), json.loads(sys.argv[1])
    values, shapes = _run(data, tensors, None)
    again, shapes_again = _run(data, tensors, 1)
    moved = [t for t in tensors if not np.array_equal(values[t], again[t])] + ([-1] if shapes != shapes_again else [])
    out = io.BytesIO()
    arrays: dict[str, Any] = {f"t{t}": v for t, v in values.items()}
    np.savez(out, shapes=np.array(json.dumps(shapes)), moved=np.array(json.dumps(moved)), **arrays)
    sys.stdout.buffer.write(out.getvalue())


def fold_constants(data: bytes, plan: FoldPlan | None = None) -> tuple[bytes, FoldPlan]:
    """``data`` with ``plan``'s ops (by default ``plan_fold``'s) replaced by constants, every shape as the runtime
    sizes it and the shape signatures pinned; unchanged when the plan is empty. Raises ``ModelError`` when the
    runtime cannot run the model or a value to fold depends on the input."""
    fb = read_flatbuffer(data)
    plan = plan if plan is not None else plan_fold(fb)
    if not plan:
        return data, plan
    outputs = [t for i in plan.ops for t in fb.ops[i].outputs]
    values, shapes = _computed(data, outputs)
    model = read_model(data)
    graph = model.subgraphs[0]
    for t, tensor in enumerate(graph.tensors):
        stored = [int(d) for d in tensor.shape] if tensor.shape is not None else []
        if t < len(shapes) and math.prod(stored) != math.prod(shapes[t]):
            tensor.shape = list(shapes[t])  # a placeholder the converter left for a -1: as the runtime sized it
        tensor.shapeSignature = None  # shapes are those of the stored input shape (batch 1) from here on
    for t in outputs:
        tensor, value = graph.tensors[t], values[t]
        tensor.buffer = len(model.buffers)
        model.buffers.append(AlignedBuffer.of(np.frombuffer(value.tobytes(), np.uint8)))
    drop = set(plan.ops)
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in drop]
    _record(model, plan)
    return write_model(model), plan


def _record(model: Any, plan: FoldPlan) -> None:
    """Append ``plan.describe()`` to the steps in the model's ``accel.prepared`` metadata."""
    steps: list[str] = []
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == PREPARED_KEY:
            steps = list(json.loads(bytes(model.buffers[entry.buffer].data or b"{}")).get("steps", []))
    model.metadata = [e for e in (model.metadata or []) if e.name not in (PREPARED_KEY, PREPARED_KEY.encode())]
    entry = schema.MetadataT()
    entry.name, entry.buffer = PREPARED_KEY, len(model.buffers)
    body = json.dumps({"steps": [*steps, plan.describe()]}).encode()
    model.buffers.append(AlignedBuffer.of(np.frombuffer(body, np.uint8)))
    model.metadata.append(entry)


def prepared_steps(fb: Flatbuffer) -> list[str]:
    """How accel made this file from the user's model, in order ([] for a file accel did not rewrite): the
    post-process op split off (``strip_postprocess``'s metadata), then what ``fold_constants`` recorded."""
    steps = ["split off TFLite_Detection_PostProcess (decoded in the kernel set as the op does)"] \
        if fb.metadata(METADATA_KEY) is not None else []
    record = fb.metadata(PREPARED_KEY)
    try:
        folded = json.loads(record).get("steps", []) if record else []
    except (ValueError, AttributeError):
        folded = []
    return steps + ([str(s) for s in folded] if isinstance(folded, list) else [])
