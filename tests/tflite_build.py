"""Write tiny TFLite flatbuffers for tests with the schema's object API (no TensorFlow needed).

``classifier(weights, bias)`` makes a float32 model: image [1, H, W, 3] -> RESHAPE [1, H*W*3] ->
FULLY_CONNECTED -> logits [1, C]. Its outputs are computable by hand: ``W @ x.ravel() + b``.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as s


def _tensor(name: str, shape: list[int], ttype: int, buffer: int) -> s.TensorT:
    t = s.TensorT()
    t.name, t.shape, t.type, t.buffer = name.encode(), shape, ttype, buffer
    return t


def _buffer(data: np.ndarray | None = None) -> s.BufferT:
    b = s.BufferT()
    b.data = None if data is None else np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
    return b


def _opcode(code: int) -> s.OperatorCodeT:
    oc = s.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    return oc


def classifier(path: Path, weights: np.ndarray, bias: np.ndarray, hw: tuple[int, int] = (4, 4),
               description: str = "test classifier") -> Path:
    """A float32 classifier whose logits are ``weights @ image.ravel() + bias``."""
    h, w = hw
    n_in = h * w * 3
    classes = weights.shape[0]
    assert weights.shape == (classes, n_in) and bias.shape == (classes,)
    f32, i32 = s.TensorType.FLOAT32, s.TensorType.INT32
    model = s.ModelT()
    model.version = 3
    model.description = description.encode()
    model.buffers = [_buffer(), _buffer(), _buffer(np.array([1, n_in], np.int32)),
                     _buffer(weights.astype(np.float32)), _buffer(bias.astype(np.float32)), _buffer(), _buffer()]
    model.operatorCodes = [_opcode(s.BuiltinOperator.RESHAPE), _opcode(s.BuiltinOperator.FULLY_CONNECTED)]
    g = s.SubGraphT()
    g.tensors = [
        _tensor("image", [1, h, w, 3], f32, 1),
        _tensor("shape", [2], i32, 2),
        _tensor("weights", [classes, n_in], f32, 3),
        _tensor("bias", [classes], f32, 4),
        _tensor("flat", [1, n_in], f32, 5),
        _tensor("logits", [1, classes], f32, 6),
    ]
    reshape = s.OperatorT()
    reshape.opcodeIndex, reshape.inputs, reshape.outputs = 0, [0, 1], [4]
    reshape.builtinOptionsType = s.BuiltinOptions.ReshapeOptions
    reshape.builtinOptions = s.ReshapeOptionsT()
    reshape.builtinOptions.newShape = [1, n_in]
    fc = s.OperatorT()
    fc.opcodeIndex, fc.inputs, fc.outputs = 1, [4, 2, 3], [5]
    fc.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    fc.builtinOptions = s.FullyConnectedOptionsT()
    g.operators = [reshape, fc]
    g.inputs, g.outputs = [0], [5]
    g.name = b"main"
    model.subgraphs = [g]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path
