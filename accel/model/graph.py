"""Values a model's graph fixes before it sees an image: constants folded through data-movement ops, the
activation (softmax, sigmoid) behind an output, and the tensor an output passes on unchanged but for its
encoding or shape (``passes_back``). Family detection uses them to tell outputs apart."""

from __future__ import annotations

import numpy as np

from accel.model.flatbuffer import Flatbuffer, Op

__all__ = ["MOVES", "PASSES", "Graph", "passes_back"]

# Ops that move or re-encode values without looking at them: constants stay constant through them, and an
# activation behind them is still the activation of what comes out.
MOVES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TILE", "BROADCAST_TO", "CONCATENATION", "DEQUANTIZE", "QUANTIZE")
# Ops of one data input whose output holds the input's values, re-encoded (quantized, dequantized, cast) or
# re-shaped: what a tensor behind a chain of them means is what the chain's first input meant.
PASSES = ("DEQUANTIZE", "QUANTIZE", "CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "IDENTITY")
_ACTIVATIONS = {"SOFTMAX": "softmax", "LOGISTIC": "sigmoid"}


def passes_back(model: Flatbuffer, t: int) -> tuple[int, list[Op]]:
    """The tensor whose values ``t`` carries through ``PASSES`` ops (their first input), and those ops in
    the order they run; ``(t, [])`` when ``t`` is not written by one."""
    chain: list[Op] = []
    op = model.producer(t)
    while op is not None and op.name in PASSES and op.inputs and len(chain) < 64:
        chain.insert(0, op)
        t = int(op.inputs[0])
        op = model.producer(t)
    return t, chain


class Graph:
    """The first subgraph of a parsed .tflite file, read for what ``ModelInfo`` does not keep: values
    computable from constants alone, and the activations outputs come out of."""

    def __init__(self, model: Flatbuffer) -> None:
        self.model = model
        self._folded: dict[int, np.ndarray | None] = {}

    def op_inputs(self, op_name: str) -> list[int]:
        """Input tensor indices of the first op called ``op_name`` ([] when there is none)."""
        op = self.model.first_op(op_name)
        return list(op.inputs) if op is not None else []

    def _const(self, t: int) -> np.ndarray | None:
        """A constant tensor's real values (dequantized when it is quantized), or None."""
        values = self.model.constant(t)
        if values is None:
            return None
        tensor = self.model.tensors[t]
        real = values.astype(np.float64)
        return (real - tensor.zero_point) * tensor.scale if tensor.scale else real

    def fold(self, t: int, depth: int = 0) -> np.ndarray | None:
        """Real values of tensor ``t`` when they follow from constants through ``MOVES`` ops alone, else
        None. Shapes come from the file (TILE multiples and RESHAPE targets computed at run time from a
        SHAPE op need not be evaluated: the static output shape says what they did)."""
        if t in self._folded:
            return self._folded[t]
        try:
            value = self._const(t)
            op = self.model.producer(t)
            if value is None and op is not None and depth < 64:
                value = self._apply(op, self._shape(t), depth) if op.name in MOVES else None
        except Exception:  # shapes that do not fit, odd buffers: a tensor we cannot evaluate is not a constant
            value = None
        self._folded[t] = value
        return value

    def _shape(self, t: int) -> tuple[int, ...]:
        """``t``'s stored shape, or, where the signature leaves dimensions dynamic (-1) and the stored shape is a
        converter's placeholder (1s), a shape to resolve: batch as stored, the one other -1 as -1 (numpy infers
        it from the value's size)."""
        stored, sig = self.model.tensors[t].shape, self.model.signature(t)
        if len(sig) != len(stored) or sum(1 for d in sig[1:] if d < 0) != 1:
            return stored
        return tuple(stored[0] if i == 0 else (-1 if d < 0 else d) for i, d in enumerate(sig))

    def _apply(self, op: Op, shape: tuple[int, ...], depth: int) -> np.ndarray | None:
        if op.name == "CONCATENATION":
            parts = [self.fold(i, depth + 1) for i in op.inputs]
            if any(p is None for p in parts) or not parts:
                return None
            opts = op.options("ConcatenationOptions")
            axis = int(opts.Axis()) if opts is not None else 0
            value = np.concatenate([p for p in parts if p is not None], axis=axis)
        else:  # (DE)QUANTIZE keep real values; RESHAPE, SQUEEZE, EXPAND_DIMS only change the shape
            x = self.fold(op.inputs[0], depth + 1) if op.inputs else None
            if x is None:
                return None
            value = x
            if op.name == "TILE" and len(shape) == x.ndim:
                reps = [o // i if i and o % i == 0 else 0 for o, i in zip(shape, x.shape, strict=True)]
                value = np.tile(x, reps) if all(reps) else x
            elif op.name == "BROADCAST_TO":
                value = np.broadcast_to(x, shape)
        if -1 in shape:
            known = int(np.prod([d for d in shape if d >= 0]))
            if not known or value.size % known:
                return None
            shape = tuple(value.size // known if d < 0 else d for d in shape)
        if int(np.prod(shape)) != value.size:
            return None
        return np.asarray(value, np.float64).reshape(shape)

    def activation(self, t: int, depth: int = 0) -> str:
        """'softmax' or 'sigmoid' when ``t`` comes out of that activation through ``MOVES`` ops, else ''."""
        op = self.model.producer(t)
        if op is None or depth > 64:
            return ""
        if op.name in _ACTIVATIONS:
            return _ACTIVATIONS[op.name]
        if op.name == "CONCATENATION":
            found = {self.activation(i, depth + 1) for i in op.inputs}
            return found.pop() if len(found) == 1 else ""
        return self.activation(op.inputs[0], depth + 1) if op.name in MOVES and op.inputs else ""
