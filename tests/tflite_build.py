"""Write tiny TFLite flatbuffers for tests with the schema's object API (no TensorFlow needed).

``classifier(weights, bias)`` makes a float32 model: image [1, H, W, 3] -> RESHAPE [1, H*W*3] ->
FULLY_CONNECTED -> logits [1, C]. Its outputs are computable by hand: ``W @ x.ravel() + b``.

``conv_classifier(path, out_c, k)`` makes a float32 model with one CONV_2D: image [1, H, W, 3] -> CONV_2D
(k x k, stride 1, VALID) -> [1, H-k+1, W-k+1, out_c] -> RESHAPE -> logits [1, (H-k+1)*(W-k+1)*out_c]: a graph
whose multiply-accumulates are ``H_out * W_out * C_out * k * k * C_in``, by hand.

``detector(outputs)`` makes a model of any output layout: image [1, H, W, 3] (float32, uint8 or int8;
quantized inputs are DEQUANTIZEd) -> MEAN over H, W -> [1, 3], then per output either FULLY_CONNECTED ->
RESHAPE (-> SOFTMAX / LOGISTIC) (-> QUANTIZE), whose values are ``W @ mean_rgb + b`` (just ``b`` with the
default zero weights), or a constant (int8 -> DEQUANTIZE) -> RESHAPE, like an anchor tensor.

``postprocess_only(model)`` keeps a detector's TFLite_Detection_PostProcess op alone: its box encodings and
class scores become the graph's inputs, so the runtime's own op can be run on any raw outputs (a GPU's).

``ssd_detector(path)`` makes a small multi-class SSD ending in that op (``accel.model.graft_postprocess``), and
``behind_postprocess(model, chain)`` puts further ops between the op's outputs and the graph's, as some TF2
exports do (QUANTIZE + DEQUANTIZE, QUANTIZE, CAST + RESHAPE). ``quantize_dequantize`` is those two ops alone.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def conv_classifier(path: Path, out_c: int = 4, k: int = 3, hw: tuple[int, int] = (8, 8)) -> Path:
    """A float32 model of one CONV_2D (zero filter, bias 0..out_c-1) whose output is reshaped to logits."""
    g = _Graph()
    h, w = hw
    h_out, w_out = h - k + 1, w - k + 1
    image = g.tensor("image", (1, h, w, 3), "float32")
    filt = g.tensor("conv/filter", (out_c, k, k, 3), "float32", np.zeros((out_c, k, k, 3), np.float32))
    bias = g.tensor("conv/bias", (out_c,), "float32", np.arange(out_c, dtype=np.float32))
    conv = g.tensor("conv", (1, h_out, w_out, out_c), "float32")
    options = s.Conv2DOptionsT()
    options.padding, options.strideH, options.strideW = s.Padding.VALID, 1, 1
    options.dilationHFactor = options.dilationWFactor = 1
    g.op(s.BuiltinOperator.CONV_2D, [image, filt, bias], [conv], s.BuiltinOptions.Conv2DOptions, options)
    logits = g.reshape(conv, (1, h_out * w_out * out_c), "float32", "logits")
    return _write(path, g, [image], [logits], "one conv")


@dataclass(frozen=True)
class Out:
    """One output of ``detector``: its name, shape and values (``bias``: the FULLY_CONNECTED bias, or the
    constant itself when ``const``). ``dtype``/``quant`` quantize it at the end (QUANTIZE op), ``activation``
    ("softmax" / "logistic") runs before that; a ``const`` output with ``quant`` is stored int8 and
    DEQUANTIZEd in the graph. ``weights`` [K, 3] multiply the image's mean R, G, B (0 by default)."""

    name: str
    shape: tuple[int, ...]
    bias: np.ndarray
    dtype: str = "float32"
    quant: tuple[float, int] | None = None
    activation: str = ""
    const: bool = False
    weights: np.ndarray | None = None


class _Graph:
    def __init__(self) -> None:
        self.tensors: list[s.TensorT] = []
        self.buffers: list[s.BufferT] = [_buffer()]
        self.ops: list[s.OperatorT] = []
        self.codes: list[int] = []

    def tensor(self, name: str, shape: tuple[int, ...] | list[int], dtype: str, data: np.ndarray | None = None,
               quant: tuple[float, int] | None = None) -> int:
        self.buffers.append(_buffer(data))
        t = _tensor(name, list(shape), _TYPES[dtype], len(self.buffers) - 1)
        if quant is not None:
            t.quantization = _quantization(quant)
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
           options: object = None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(code), inputs, outputs
        if options is not None:
            op.builtinOptionsType, op.builtinOptions = options_type, options
        self.ops.append(op)

    def reshape(self, x: int, shape: tuple[int, ...], dtype: str, name: str,
                quant: tuple[float, int] | None = None) -> int:
        shape_t = self.tensor(f"{name}/shape", [len(shape)], "int32", np.array(shape, np.int32))
        out = self.tensor(name, shape, dtype, quant=quant)
        options = s.ReshapeOptionsT()
        options.newShape = list(shape)
        self.op(s.BuiltinOperator.RESHAPE, [x, shape_t], [out], s.BuiltinOptions.ReshapeOptions, options)
        return out


_TYPES = {"float32": s.TensorType.FLOAT32, "int32": s.TensorType.INT32, "uint8": s.TensorType.UINT8,
          "int8": s.TensorType.INT8}


def detector(path: Path, outputs: list[Out], hw: tuple[int, int] = (8, 8), input_dtype: str = "float32",
             input_quant: tuple[float, int] = (1 / 255, 0), description: str = "test detector") -> Path:
    """A model whose outputs are the given layouts with known values (see the module docstring)."""
    g = _Graph()
    h, w = hw
    quantized = input_dtype != "float32"
    image = g.tensor("image", (1, h, w, 3), input_dtype, quant=input_quant if quantized else None)
    x = image
    if quantized:
        x = g.tensor("image/float", (1, h, w, 3), "float32")
        g.op(s.BuiltinOperator.DEQUANTIZE, [image], [x])
    axes = g.tensor("axes", [2], "int32", np.array([1, 2], np.int32))
    mean = g.tensor("mean_rgb", (1, 3), "float32")
    g.op(s.BuiltinOperator.MEAN, [x, axes], [mean], s.BuiltinOptions.ReducerOptions, s.ReducerOptionsT())
    graph_outputs = [_output(g, mean, o) for o in outputs]
    return _write(path, g, [image], graph_outputs, description)


def _write(path: Path, g: _Graph, inputs: list[int], outputs: list[int], description: str) -> Path:
    model = s.ModelT()
    model.version, model.description = 3, description.encode()
    model.operatorCodes = [_opcode(c) for c in g.codes]
    sub = s.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = g.tensors, g.ops, inputs, outputs, b"main"
    model.subgraphs, model.buffers = [sub], g.buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def _output(g: _Graph, mean: int, o: Out) -> int:
    size = int(np.prod(o.shape))
    bias = np.asarray(o.bias, np.float32).reshape(-1)
    assert bias.size == size, (o.name, bias.size, size)
    if o.const:
        if o.quant is not None:
            q = np.clip(np.round(bias / o.quant[0]) + o.quant[1], -128, 127).astype(np.int8)
            stored = g.tensor(f"{o.name}/const", (size // o.shape[-1], o.shape[-1]), "int8", q, o.quant)
            x = g.tensor(f"{o.name}/dequantized", (size // o.shape[-1], o.shape[-1]), "float32")
            g.op(s.BuiltinOperator.DEQUANTIZE, [stored], [x])
        else:
            x = g.tensor(f"{o.name}/const", (size // o.shape[-1], o.shape[-1]), "float32", bias)
        return g.reshape(x, o.shape, "float32", o.name)
    weights = np.zeros((size, 3), np.float32) if o.weights is None else np.asarray(o.weights, np.float32)
    wt = g.tensor(f"{o.name}/weights", (size, 3), "float32", weights)
    bt = g.tensor(f"{o.name}/bias", (size,), "float32", bias)
    flat = g.tensor(f"{o.name}/flat", (1, size), "float32")
    g.op(s.BuiltinOperator.FULLY_CONNECTED, [mean, wt, bt], [flat], s.BuiltinOptions.FullyConnectedOptions,
         s.FullyConnectedOptionsT())
    last = o.quant is None and not o.activation
    x = g.reshape(flat, o.shape, "float32", o.name if last else f"{o.name}/raw")
    if o.activation:
        y = g.tensor(o.name if o.quant is None else f"{o.name}/act", o.shape, "float32")
        if o.activation == "softmax":
            options = s.SoftmaxOptionsT()
            options.beta = 1.0
            g.op(s.BuiltinOperator.SOFTMAX, [x], [y], s.BuiltinOptions.SoftmaxOptions, options)
        else:
            g.op(s.BuiltinOperator.LOGISTIC, [x], [y])
        x = y
    if o.quant is not None:
        y = g.tensor(o.name, o.shape, o.dtype, quant=o.quant)
        g.op(s.BuiltinOperator.QUANTIZE, [x], [y])
        x = y
    return x


def postprocess_only(model_bytes: bytes) -> bytes:
    """The detector's TFLite_Detection_PostProcess op alone (same options, anchors and quantization): inputs
    box encodings and class scores, outputs the op's four in its slot order (boxes, classes, scores, count),
    whatever the graph did with them after the op."""
    from accel.model import read_model, write_model

    model = read_model(model_bytes)
    graph = model.subgraphs[0]
    names = [model.operatorCodes[op.opcodeIndex].customCode for op in graph.operators]
    op = graph.operators[names.index(b"TFLite_Detection_PostProcess")]
    graph.operators, graph.inputs = [op], [int(t) for t in op.inputs[:2]]
    graph.outputs = [int(t) for t in op.outputs]
    model.signatureDefs = []
    return bytes(write_model(model))


# (scale, zero point) of each post-process output when ``behind_postprocess`` quantizes it to uint8: boxes and
# scores in [0, 1]; class ids in steps of 0.38 (ids up to 96), so that 5 comes back as 4.94 and 4 as 4.18, as
# such exports return them; the count in steps of 0.2 (up to 51 detections). int8 shifts the zero points by -128.
BEHIND_QUANT = {"boxes": (1 / 255, 0), "classes": (0.38, 0), "scores": (1 / 255, 0), "count": (0.2, 0)}
CHAINS = ("qdq", "quantize", "cast-reshape", "op-quantized")


def behind_postprocess(model_bytes: bytes, chain: str = "qdq", dtype: str = "uint8") -> bytes:
    """The detector with ops between each output of its TFLite_Detection_PostProcess op and the graph output,
    as some TF2 exports have them. The graph outputs keep their order and are named as TF2 names them,
    ``StatefulPartitionedCall:K`` (K their position), with no static shape (but after a RESHAPE), so neither
    names nor shapes tell boxes, classes, scores and count apart:

    - ``qdq``: QUANTIZE to ``dtype`` (``BEHIND_QUANT``) then DEQUANTIZE: float32 outputs, rounded to the steps;
    - ``quantize``: QUANTIZE only: the graph outputs are ``dtype`` with that scale and zero point;
    - ``cast-reshape``: CAST (float32 to float32) then RESHAPE to the op's output shape: the same values;
    - ``op-quantized``: the op's own output tensors declared ``dtype`` with those quantizations, then
      DEQUANTIZE. The runtime runs it, but the op writes float32 whatever the file says, and DEQUANTIZE reads
      those bytes as integers: its outputs are meaningless (a file no converter writes that way works).
    """
    from accel.model import read_model, write_model

    assert chain in CHAINS, chain
    model = read_model(model_bytes)
    graph = model.subgraphs[0]
    codes = [model.operatorCodes[op.opcodeIndex].customCode for op in graph.operators]
    post = graph.operators[codes.index(b"TFLite_Detection_PostProcess")]
    m = int(_custom_options(post)["max_detections"])
    shapes = {"boxes": [1, m, 4], "classes": [1, m], "scores": [1, m], "count": [1]}
    shift = -128 if dtype == "int8" else 0
    new = {}
    for role, t in zip(("boxes", "classes", "scores", "count"), (int(i) for i in post.outputs), strict=True):
        quant = BEHIND_QUANT[role][0], BEHIND_QUANT[role][1] + shift
        name = graph.tensors[t].name.decode() if isinstance(graph.tensors[t].name, bytes) else graph.tensors[t].name
        x = t
        if chain == "op-quantized":
            graph.tensors[t].type, graph.tensors[t].quantization = _TYPES[dtype], _quantization(quant)
        if chain in ("qdq", "quantize"):
            x = _append(model, s.BuiltinOperator.QUANTIZE, x, _tensor(f"{name}/quantize", [], _TYPES[dtype], 0), quant)
        if chain in ("qdq", "op-quantized"):
            x = _append(model, s.BuiltinOperator.DEQUANTIZE, x, _tensor(f"{name}/dequantize", [], _TYPES["float32"], 0))
        if chain == "cast-reshape":
            x = _append(model, s.BuiltinOperator.CAST, x, _tensor(f"{name}/cast", [], _TYPES["float32"], 0))
            x = _append(model, s.BuiltinOperator.RESHAPE, x, _tensor(f"{name}/reshape", shapes[role],
                                                                     _TYPES["float32"], 0), shape=shapes[role])
        new[t] = x
    graph.outputs = [new.get(int(t), int(t)) for t in graph.outputs]
    for k, t in enumerate(graph.outputs):
        graph.tensors[t].name = f"StatefulPartitionedCall:{k}".encode()
    for sig in model.signatureDefs or []:
        for entry in sig.outputs or []:
            entry.tensorIndex = new.get(int(entry.tensorIndex), int(entry.tensorIndex))
    return bytes(write_model(model))


def _custom_options(op: s.OperatorT) -> dict[str, object]:
    from flatbuffers import flexbuffers

    return dict(flexbuffers.Loads(bytes(bytearray(op.customOptions))))


def _quantization(quant: tuple[float, int]) -> s.QuantizationParametersT:
    q = s.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
    return q


def _append(model: s.ModelT, code: int, x: int, out: s.TensorT, quant: tuple[float, int] | None = None,
            shape: list[int] | None = None) -> int:
    """Append ``out`` and an op ``code`` reading ``x`` (RESHAPE: to ``shape``) writing it; out's index."""
    graph = model.subgraphs[0]
    if quant is not None:
        out.quantization = _quantization(quant)
    found = [i for i, oc in enumerate(model.operatorCodes) if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code]
    if not found:
        model.operatorCodes.append(_opcode(code))
    op = s.OperatorT()
    op.opcodeIndex, op.inputs = found[0] if found else len(model.operatorCodes) - 1, [x]
    if shape is not None:
        op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.ReshapeOptions, s.ReshapeOptionsT()
        op.builtinOptions.newShape = list(shape)
    graph.tensors.append(out)
    op.outputs = [len(graph.tensors) - 1]
    graph.operators.append(op)
    return len(graph.tensors) - 1


def ssd_detector(path: Path, classes: int = 6, grid: int = 8, hw: tuple[int, int] = (32, 32), seed: int = 0,
                 **options: object) -> Path:
    """A uint8-input SSD ending in TFLite_Detection_PostProcess (``accel.model.graft_postprocess``): ``detector``
    outputs box encodings [1, N, 4] and logistic class scores [1, N, 1 + classes] (column 0 the background)
    from the image's mean colour through random weights (``seed``), so each image has its own detections;
    N = grid * grid anchors of size 0.3 centred on the cells. ``options`` change the op's defaults (TF's:
    fast NMS, 10 detections, IoU 0.6, scales 10, 10, 5, 5)."""
    from accel.model import graft_postprocess

    rng = np.random.default_rng(seed)
    n = grid * grid
    enc = Out("box_encodings", (1, n, 4), rng.normal(0, 0.5, n * 4), weights=rng.normal(0, 2, (n * 4, 3)))
    cls = Out("class_predictions", (1, n, classes + 1), rng.normal(-2, 1.5, n * (classes + 1)), activation="logistic",
              weights=rng.normal(0, 2, (n * (classes + 1), 3)))
    raw = detector(path, [enc, cls], hw, "uint8", (1 / 255, 0), description="test ssd")
    centres = (np.arange(grid) + 0.5) / grid
    yc, xc = np.meshgrid(centres, centres, indexing="ij")
    anchors = np.stack([yc.ravel(), xc.ravel(), np.full(n, 0.3), np.full(n, 0.3)], axis=1).astype(np.float32)
    defaults: dict[str, object] = {
        "max_detections": 10, "max_classes_per_detection": 1, "detections_per_class": 100, "use_regular_nms": False,
        "nms_score_threshold": 1e-8, "nms_iou_threshold": 0.6, "num_classes": classes, "y_scale": 10.0,
        "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}
    path.write_bytes(graft_postprocess(raw.read_bytes(), anchors, {**defaults, **options},
                                       inputs=("box_encodings", "class_predictions"), description="test ssd"))
    return path


def quantize_dequantize(path: Path, n: int, dtype: str, quant: tuple[float, int]) -> Path:
    """A float32 [n] -> QUANTIZE (``dtype``, ``quant``) -> DEQUANTIZE model; outputs both (the integers, the reals)."""
    g = _Graph()
    x, q = g.tensor("x", (n,), "float32"), g.tensor("q", (n,), dtype, quant=quant)
    y = g.tensor("y", (n,), "float32")
    g.op(s.BuiltinOperator.QUANTIZE, [x], [q])
    g.op(s.BuiltinOperator.DEQUANTIZE, [q], [y])
    return _write(path, g, [x], [q, y], "quantize, dequantize")
