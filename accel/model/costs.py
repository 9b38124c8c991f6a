"""What a .tflite model costs to run, read from its flatbuffer's static tensor shapes: MACs, FLOPs, parameters.

``model_costs(path_or_bytes)`` returns a ``Costs`` with totals, per-op-type sums and one ``OpCost`` per op of
the main subgraph. Conventions, chosen so the figures compare with the published ones:

* **MACs** (multiply-accumulates) are counted for the ops that do a sum of products:
  CONV_2D ``out_h*out_w*out_c * kh*kw*in_c/groups``, DEPTHWISE_CONV_2D ``out_h*out_w*out_c * kh*kw``,
  FULLY_CONNECTED ``batch*out*in``, TRANSPOSE_CONV ``in_h*in_w*in_c * kh*kw*out_c``, BATCH_MATMUL
  ``prod(out)*K``, CONV_3D ``prod(out) * kd*kh*kw*in_c`` (CONV_3D_TRANSPOSE likewise over its input).
  Bias adds and fused activations are free, as in the MobileNet papers' "mult-adds".
* **FLOPs** = 2 x MACs: the headline figure, Ultralytics' convention (its "8.7 GFLOPs" for YOLOv8n is thop's
  MACs x 2).
* **other FLOPs** are reported apart and never added to the headline: 1 per output element for elementwise
  and activation ops (ADD, MUL, LOGISTIC, ...), ``kh*kw`` per output element for pooling, 1 per input element
  for reductions (MEAN, SUM, ARG_MAX, ...). Data movement (RESHAPE, CONCATENATION, PAD, QUANTIZE, resizes,
  ...) costs 0. Ops with no rule (custom ops such as TFLite_Detection_PostProcess, control flow) are listed in
  ``Costs.uncounted``.
* **Parameters**, two counts:
  ``params`` = the weights and biases of the MAC ops (and PRELU slopes): the constant tensors they read,
  followed back through DEQUANTIZE so fp16 or int8 weights count once, a tensor shared by several ops once.
  ``params_constant`` = every constant tensor except int32/int64 ones of at most 8 elements (shapes, axes):
  the rule of ``ModelInfo.params`` (``Flatbuffer.constant_params``). It is larger when the graph holds constants
  that are not learned weights: SSD anchors, YOLO anchor grids and strides, normalisation scalars, BatchNorm that
  the converter could not fold (a MUL/ADD pair with per-channel constants).

Only subgraph 0 is read (the one a runtime invokes, through ``accel.model.flatbuffer``); shapes are the static
ones stored in the file.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accel.core.errors import ModelError
from accel.model.flatbuffer import Flatbuffer, Op, read_flatbuffer

__all__ = ["Costs", "OpCost", "costs_or_why", "model_costs"]

_MAC_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
                      "CONV_3D", "CONV_3D_TRANSPOSE"})
_ELEMENTWISE = frozenset({
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW", "FLOOR_DIV", "FLOOR_MOD",
    "ADD_N", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "LOGISTIC", "TANH",
    "HARD_SWISH", "GELU", "ELU", "EXP", "LOG", "SQRT", "RSQRT", "SQUARE", "ABS", "NEG", "SIGN", "FLOOR",
    "CEIL", "ROUND", "SIN", "COS", "SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION",
    "LOCAL_RESPONSE_NORMALIZATION", "EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL",
    "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "SELECT", "SELECT_V2", "CUMSUM",
})
_POOLS = frozenset({"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"})
_REDUCTIONS = frozenset({"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "ARG_MAX",
                         "ARG_MIN"})
_FREE = frozenset({
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "PAD", "PADV2", "MIRROR_PAD", "TRANSPOSE", "GATHER",
    "GATHER_ND", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "TILE", "BROADCAST_TO",
    "QUANTIZE", "DEQUANTIZE", "CAST", "SHAPE", "FILL", "ZEROS_LIKE", "ONES_LIKE", "SPACE_TO_DEPTH",
    "DEPTH_TO_SPACE", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "REVERSE_V2", "ONE_HOT", "RANGE", "BROADCAST_ARGS",
})


@dataclass(frozen=True)
class OpCost:
    """The cost of one op of the main subgraph, in execution order."""

    index: int
    op: str
    macs: int
    other_flops: int
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class Costs:
    """Totals and breakdowns of a model's compute and parameters (conventions in the module docstring)."""

    macs: int
    other_flops: int
    params: int
    params_constant: int
    macs_by_op: dict[str, int] = field(default_factory=dict)
    other_flops_by_op: dict[str, int] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)
    per_op: tuple[OpCost, ...] = ()

    @property
    def flops(self) -> int:
        """2 x MACs: the headline figure (Ultralytics' and thop's convention)."""
        return 2 * self.macs

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    def to_json(self) -> dict[str, object]:
        return {
            "macs": self.macs, "flops": self.flops, "other_flops": self.other_flops, "params": self.params,
            "params_constant": self.params_constant, "macs_by_op": dict(self.macs_by_op),
            "other_flops_by_op": dict(self.other_flops_by_op), "uncounted": dict(self.uncounted),
        }


def model_costs(path_or_bytes: str | Path | bytes | bytearray | memoryview | Flatbuffer) -> Costs:
    """MACs, FLOPs and parameters of a .tflite model (a path, the file's bytes, or the parsed file).

    Raises ``ModelError`` when the input is not a readable TFLite flatbuffer.
    """
    fb = path_or_bytes if isinstance(path_or_bytes, Flatbuffer) else read_flatbuffer(path_or_bytes)
    try:
        return _costs(fb)
    except (IndexError, ValueError, TypeError, struct.error) as exc:  # reads past a truncated file's end
        raise ModelError(f"{fb.where} is truncated or corrupt ({type(exc).__name__}: {exc}); re-export it") from exc


def costs_or_why(model: str | Path | bytes | Flatbuffer) -> dict[str, Any]:
    """``{"costs": ...}`` (``Costs.to_json()``), or ``{"costs": None, "costs_why": reason}`` when they cannot be
    computed: the figures annotate a model, so neither a damaged model nor a cost rule's bug is fatal here."""
    try:
        return {"costs": model_costs(model).to_json()}
    except ModelError as exc:
        return {"costs": None, "costs_why": str(exc)}
    except Exception as exc:
        return {"costs": None, "costs_why": f"computing the costs failed ({type(exc).__name__}: {exc}); "
                                            "please report this bug"}


def _costs(fb: Flatbuffer) -> Costs:
    shapes = [t.shape for t in fb.tensors]
    per_op: list[OpCost] = []
    macs_by: Counter[str] = Counter()
    other_by: Counter[str] = Counter()
    uncounted: Counter[str] = Counter()
    for op in fb.ops:
        out_shape = shapes[op.outputs[0]] if op.outputs and op.outputs[0] >= 0 else ()
        macs, other = _op_cost(op, shapes, out_shape)
        if macs < 0 or other < 0:
            uncounted[op.name] += 1
            macs, other = max(macs, 0), max(other, 0)
        macs_by[op.name] += macs
        other_by[op.name] += other
        per_op.append(OpCost(op.index, op.name, macs, other, out_shape))
    return Costs(
        macs=sum(macs_by.values()), other_flops=sum(other_by.values()),
        params=sum(math.prod(shapes[t]) for t in _weights(fb)), params_constant=fb.constant_params(),
        macs_by_op={k: v for k, v in macs_by.items() if v}, other_flops_by_op={k: v for k, v in other_by.items() if v},
        uncounted=dict(uncounted), per_op=tuple(per_op),
    )


def _op_cost(op: Op, shapes: list[tuple[int, ...]], out_shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs, other FLOPs) of one op; -1 in either for an op without a rule or a shape it needs."""
    if op.name in _MAC_OPS:
        return _macs(op, [shapes[t] if t >= 0 else () for t in op.inputs], out_shape), 0
    if op.name in _ELEMENTWISE:
        return 0, math.prod(out_shape)
    if op.name in _POOLS:
        return 0, math.prod(out_shape) * _pool_window(op)
    if op.name in _REDUCTIONS:
        return 0, math.prod(shapes[op.inputs[0]]) if op.inputs else 0
    return (0, 0) if op.name in _FREE else (0, -1)


def _weights(fb: Flatbuffer) -> set[int]:
    """The constant tensors the MAC ops (and PRELU) read: each input itself, or the constant a DEQUANTIZE
    expands; a TRANSPOSE_CONV's output_shape input is not a weight."""
    def stored(t: int) -> int | None:
        if fb.is_constant(t):
            return t
        producer = fb.producer(t) if t >= 0 else None
        if producer is not None and producer.name == "DEQUANTIZE" and producer.inputs \
                and fb.is_constant(producer.inputs[0]):
            return producer.inputs[0]
        return None

    weights: set[int] = set()
    for op in fb.ops:
        if op.name in _MAC_OPS or op.name == "PRELU":
            skip = {0} if op.name in ("TRANSPOSE_CONV", "CONV_3D_TRANSPOSE") else set()  # output_shape input
            weights.update(w for k, t in enumerate(op.inputs) if k not in skip and (w := stored(t)) is not None)
    return weights


def _macs(op: Op, ins: list[tuple[int, ...]], out: tuple[int, ...]) -> int:
    """MACs of one op from its input and output shapes; -1 when a shape it needs is missing."""
    name, n_out = op.name, math.prod(out)
    try:
        if name == "CONV_2D":  # filter [out_c, kh, kw, in_c / groups]
            _, kh, kw, cin = ins[1]
            return n_out * kh * kw * cin
        if name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out_c]
            _, kh, kw, _ = ins[1]
            return n_out * kh * kw
        if name == "FULLY_CONNECTED":  # weights [out, in]
            return n_out * ins[1][-1]
        if name == "TRANSPOSE_CONV":  # inputs: output_shape, weights [out_c, kh, kw, in_c], input
            cout, kh, kw, _ = ins[1]
            return math.prod(ins[2]) * kh * kw * cout
        if name == "CONV_3D":  # filter [kd, kh, kw, in_c, out_c]
            kd, kh, kw, cin, _ = ins[1]
            return n_out * kd * kh * kw * cin
        if name == "CONV_3D_TRANSPOSE":  # inputs: output_shape, filter [kd, kh, kw, out_c, in_c], input
            kd, kh, kw, cout, _ = ins[1]
            return math.prod(ins[2]) * kd * kh * kw * cout
        if name == "BATCH_MATMUL":
            opts = op.options("BatchMatMulOptions")
            adj_x = bool(opts.AdjX()) if opts is not None else False
            return n_out * ins[0][-2 if adj_x else -1]
    except (IndexError, ValueError):
        return -1
    return -1


def _pool_window(op: Op) -> int:
    opts = op.options("Pool2DOptions")
    return max(1, int(opts.FilterHeight()) * int(opts.FilterWidth())) if opts is not None else 1
