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
  the rule of ``accel.model``. It is larger when the graph holds constants that are not learned weights:
  SSD anchors, YOLO anchor grids and strides, normalisation scalars, BatchNorm that the converter could not
  fold (a MUL/ADD pair with per-channel constants).

Only subgraph 0 is read (the one a runtime invokes); shapes are the static ones stored in the file.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accel.errors import ModelError

__all__ = ["Costs", "OpCost", "model_costs"]

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


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _read(path_or_bytes: str | Path | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        buf, where = bytes(path_or_bytes), "model bytes"
    else:
        where = str(path_or_bytes)
        try:
            buf = Path(path_or_bytes).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {where}: {exc.strerror or exc}") from exc
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{where} is not a TFLite model (no 'TFL3' flatbuffer identifier); expected a .tflite file")
    return buf, where


def model_costs(path_or_bytes: str | Path | bytes | bytearray | memoryview) -> Costs:
    """MACs, FLOPs and parameters of a .tflite model (a path or the file's bytes).

    Raises ``ModelError`` when the input is not a readable TFLite flatbuffer.
    """
    buf, where = _read(path_or_bytes)
    try:
        return _costs(buf)
    except (IndexError, ValueError, TypeError, struct.error) as exc:  # reads past a truncated file's end
        raise ModelError(f"{where} is truncated or corrupt ({type(exc).__name__}: {exc}); re-export it") from exc


def _costs(buf: bytes) -> Costs:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError("the model has no subgraph; it is not a runnable TFLite model")
    graph = model.Subgraphs(0)
    op_names, type_names = _names(schema.BuiltinOperator), _names(schema.TensorType)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        name = op_names.get(max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode())), "UNKNOWN")
        codes.append((oc.CustomCode() or b"CUSTOM").decode("utf-8", "replace") if name == "CUSTOM" else name)

    shapes: list[tuple[int, ...]] = []
    constant: list[bool] = []
    small_int: list[bool] = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        shapes.append(shape)
        b = model.Buffers(t.Buffer()) if t.Buffer() > 0 else None
        constant.append(b is not None and (b.DataLength() > 0 or b.Size() > 0))
        small_int.append(type_names.get(t.Type()) in ("INT32", "INT64") and _prod(shape) <= 8)

    producer: dict[int, tuple[str, list[int]]] = {}
    ops: list[tuple[str, list[int], list[int], Any]] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = codes[op.OpcodeIndex()]
        inputs = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        ops.append((name, inputs, outputs, op))
        for o in outputs:
            producer[o] = (name, inputs)

    def stored(t: int) -> int | None:
        """The constant tensor behind input ``t``: itself, or the constant a DEQUANTIZE expands."""
        if t >= 0 and constant[t]:
            return t
        name, inputs = producer.get(t, ("", []))
        if name == "DEQUANTIZE" and inputs and constant[inputs[0]]:
            return inputs[0]
        return None

    weights: set[int] = set()
    per_op: list[OpCost] = []
    macs_by: Counter[str] = Counter()
    other_by: Counter[str] = Counter()
    uncounted: Counter[str] = Counter()
    for index, (name, inputs, outputs, op) in enumerate(ops):
        out_shape = shapes[outputs[0]] if outputs and outputs[0] >= 0 else ()
        macs, other = 0, 0
        if name in _MAC_OPS or name == "PRELU":
            skip = {0} if name in ("TRANSPOSE_CONV", "CONV_3D_TRANSPOSE") else set()  # output_shape input
            weights.update(w for k, t in enumerate(inputs) if k not in skip and (w := stored(t)) is not None)
        if name in _MAC_OPS:
            macs = _macs(name, [shapes[t] if t >= 0 else () for t in inputs], out_shape, op, schema)
            if macs < 0:
                uncounted[name] += 1
                macs = 0
        elif name in _ELEMENTWISE:
            other = _prod(out_shape)
        elif name in _POOLS:
            other = _prod(out_shape) * _pool_window(op, schema)
        elif name in _REDUCTIONS:
            other = _prod(shapes[inputs[0]]) if inputs else 0
        elif name not in _FREE:
            uncounted[name] += 1
        macs_by[name] += macs
        other_by[name] += other
        per_op.append(OpCost(index, name, macs, other, out_shape))

    params = sum(_prod(shapes[t]) for t in weights)
    params_constant = sum(_prod(shapes[t]) for t in range(len(shapes)) if constant[t] and not small_int[t])
    return Costs(
        macs=sum(macs_by.values()), other_flops=sum(other_by.values()), params=params,
        params_constant=params_constant, macs_by_op={k: v for k, v in macs_by.items() if v},
        other_flops_by_op={k: v for k, v in other_by.items() if v}, uncounted=dict(uncounted),
        per_op=tuple(per_op),
    )


def _macs(name: str, ins: list[tuple[int, ...]], out: tuple[int, ...], op: Any, schema: Any) -> int:
    """MACs of one op from its input and output shapes; -1 when a shape it needs is missing."""
    n_out = _prod(out)
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
            return _prod(ins[2]) * kh * kw * cout
        if name == "CONV_3D":  # filter [kd, kh, kw, in_c, out_c]
            kd, kh, kw, cin, _ = ins[1]
            return n_out * kd * kh * kw * cin
        if name == "CONV_3D_TRANSPOSE":  # inputs: output_shape, filter [kd, kh, kw, out_c, in_c], input
            kd, kh, kw, cout, _ = ins[1]
            return _prod(ins[2]) * kd * kh * kw * cout
        if name == "BATCH_MATMUL":
            adj_x = False
            if op.BuiltinOptionsType() == schema.BuiltinOptions.BatchMatMulOptions:
                opts = schema.BatchMatMulOptions()
                table = op.BuiltinOptions()
                opts.Init(table.Bytes, table.Pos)
                adj_x = bool(opts.AdjX())
            return n_out * ins[0][-2 if adj_x else -1]
    except (IndexError, ValueError):
        return -1
    return -1


def _pool_window(op: Any, schema: Any) -> int:
    if op.BuiltinOptionsType() != schema.BuiltinOptions.Pool2DOptions:
        return 1
    opts = schema.Pool2DOptions()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    return max(1, int(opts.FilterHeight()) * int(opts.FilterWidth()))
