"""Edit .tflite flatbuffers with the schema's object API: add or remove TFLite_Detection_PostProcess.

* ``read_model`` / ``write_model``: bytes <-> ``ModelT`` (weights re-packed 16-byte aligned, file id ``TFL3``).
* ``add_constant``: append a constant tensor (and its buffer) to a subgraph.
* ``graft_postprocess``: append the detection post-process op to a network that ends in raw box encodings
  [1, N, 4] and class scores [1, N, C(+1)], given the anchors [N, 4] (ycenter, xcenter, h, w; normalized)
  and the op's options; its four outputs become the model's.
* ``set_postprocess_options``: the same model with some of the op's custom options changed (its NMS mode,
  thresholds, limits), to run the op with other settings on the same network and anchors.
* ``strip_postprocess``: the reverse. GPU delegates cannot run that custom op (and LiteRT's CompiledModel fails
  on it), so users remove it: the model's outputs become the op's inputs (box encodings, class scores), decode
  and NMS then happen outside. The anchors stay in the file as a constant tensor; its index and the op's
  options are recorded in the model's metadata (``accel.postprocess``, JSON) and read back by ``read_anchors``.
  Ops after the op that only re-encode or reshape its outputs (``accel.model.graph.PASSES``: the QUANTIZE and
  DEQUANTIZE ops of some TF2 exports) go with it; what each did (op, output dtype, scale, zero point) is
  recorded too (``read_after_postprocess``), so that a decoder can give the values the graph gave.

Files are read through ``accel.model.flatbuffer`` (identifier check, op-code names) and its schema module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers

from accel.core.errors import ModelError
from accel.model.flatbuffer import Flatbuffer, opcode_name, read_flatbuffer, schema
from accel.model.graph import PASSES, passes_back

__all__ = ["POSTPROCESS_OP", "ROLES", "AlignedBuffer", "Stripped", "add_constant", "graft_postprocess",
           "read_after_postprocess", "read_anchors", "read_model", "read_postprocess", "set_postprocess_options",
           "strip_postprocess", "write_model"]

POSTPROCESS_OP = "TFLite_Detection_PostProcess"
ROLES = ("boxes", "classes", "scores", "count")  # the op's output slots, in its fixed order
OUTPUT_NAMES = {"boxes": "detection_boxes", "classes": "detection_classes", "scores": "detection_scores",
                "count": "num_detections"}  # the TF Object Detection API's names
METADATA_KEY = "accel.postprocess"
_TYPES = {np.dtype("float32"): schema.TensorType.FLOAT32, np.dtype("uint8"): schema.TensorType.UINT8,
          np.dtype("int8"): schema.TensorType.INT8, np.dtype("int32"): schema.TensorType.INT32,
          np.dtype("float16"): schema.TensorType.FLOAT16, np.dtype("int64"): schema.TensorType.INT64}


class AlignedBuffer(schema.BufferT):  # type: ignore[misc]
    """A BufferT whose bytes are packed 16-byte aligned, as TFLite's own writer does."""

    @classmethod
    def of(cls, data: Any = None, offset: int = 0, size: int = 0) -> AlignedBuffer:
        buffer = cls()
        buffer.data = None if data is None else np.asarray(data, dtype=np.uint8).tobytes()
        buffer.offset, buffer.size = offset, size
        return buffer

    def Pack(self, builder: Any) -> int:  # noqa: N802 - flatbuffers names it so
        data = None
        if self.data is not None:
            builder.StartVector(1, len(self.data), 16)
            builder.head -= len(self.data)
            builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return int(schema.BufferEnd(builder))


def read_model(data: bytes | str | Path) -> Any:
    """Parse a .tflite file (path or bytes) into a mutable ``schema.ModelT``."""
    model = schema.ModelT.InitFromObj(read_flatbuffer(data).model)
    model.buffers = [AlignedBuffer.of(b.data, b.offset, b.size) for b in model.buffers]
    return model


def write_model(model: Any) -> bytes:
    """Serialise a ``ModelT`` to .tflite bytes."""
    model.buffers = [b if isinstance(b, AlignedBuffer) else AlignedBuffer.of(b.data, b.offset, b.size)
                     for b in model.buffers]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def add_constant(model: Any, name: str, value: np.ndarray, *, subgraph: int = 0,
                 quantization: tuple[float, int] | None = None) -> int:
    """Append a constant tensor holding ``value``; return its tensor index."""
    value = np.ascontiguousarray(value)
    if value.dtype not in _TYPES:
        raise ModelError(f"add_constant {name!r}: dtype {value.dtype} unsupported; use one of "
                         f"{', '.join(sorted(str(t) for t in _TYPES))}")
    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.type = name, list(value.shape), _TYPES[value.dtype]
    tensor.buffer = len(model.buffers)
    if quantization is not None:
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [float(quantization[0])], [int(quantization[1])]
        tensor.quantization = q
    model.buffers.append(AlignedBuffer.of(np.frombuffer(value.tobytes(), np.uint8)))
    graph = model.subgraphs[subgraph]
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _opcode_name(model: Any, index: int) -> str:
    oc = model.operatorCodes[index]
    return opcode_name(oc.builtinCode, oc.deprecatedBuiltinCode, oc.customCode)


def _resolve(model: Any, ref: int | str) -> int:
    """A tensor index from an index, a signature output key or a tensor name."""
    if isinstance(ref, int):
        return ref
    for sig in model.signatureDefs or []:
        for m in sig.outputs or []:
            if (m.name.decode() if isinstance(m.name, bytes) else m.name) == ref:
                return int(m.tensorIndex)
    for i, t in enumerate(model.subgraphs[0].tensors):
        if (t.name.decode() if isinstance(t.name, bytes) else t.name) == ref:
            return i
    raise ModelError(f"no output or tensor named {ref!r} in the model")


def graft_postprocess(model_bytes: bytes, anchors: np.ndarray, options: Mapping[str, Any], *,
                      inputs: tuple[int | str, int | str], output_order: Sequence[str] = ROLES,
                      description: str | None = None) -> bytes:
    """Append TFLite_Detection_PostProcess; its outputs (named as ``OUTPUT_NAMES``) become the model's,
    in ``output_order`` (a permutation of ``ROLES``). ``inputs`` (box encodings, class predictions) name the
    op's inputs by tensor index, signature output key or tensor name; ``anchors`` is float32 [N, 4]
    (ycenter, xcenter, h, w), stored uint8-quantized when the box encodings are uint8."""
    model = read_model(model_bytes)
    graph = model.subgraphs[0]
    box_index, score_index = (_resolve(model, ref) for ref in inputs)
    n = graph.tensors[box_index].shape[1]
    if anchors.shape != (n, 4):
        raise ModelError(f"anchors: expected shape ({n}, 4) to match the box encodings, got {anchors.shape}")
    box_type = graph.tensors[box_index].type
    if box_type not in (schema.TensorType.FLOAT32, schema.TensorType.UINT8):
        raise ModelError(f"box encodings have tensor type {box_type}; {POSTPROCESS_OP} takes float32 or uint8 "
                         "(convert with uint8 or float outputs)")
    if box_type == schema.TensorType.UINT8:
        # With uint8 box encodings the op reads the anchors as uint8 too (as TF1 quantized exports store them).
        lo, hi = min(0.0, float(anchors.min())), float(anchors.max())
        scale = (hi - lo) / 255.0 or 1.0
        zero_point = int(round(-lo / scale))
        quantized = np.clip(np.round(anchors / scale) + zero_point, 0, 255).astype(np.uint8)
        anchor_index = add_constant(model, "anchors", quantized, quantization=(scale, zero_point))
    else:
        anchor_index = add_constant(model, "anchors", anchors.astype(np.float32))
    out = {}
    for role in ROLES:
        tensor = schema.TensorT()
        tensor.name, tensor.type, tensor.buffer = OUTPUT_NAMES[role], schema.TensorType.FLOAT32, 0
        graph.tensors.append(tensor)
        out[role] = len(graph.tensors) - 1
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = POSTPROCESS_OP, 1
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs, op.outputs = [box_index, score_index, anchor_index], [out[r] for r in ROLES]
    op.customOptions = list(flexbuffers.Dumps(dict(options)))
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    graph.operators.append(op)
    graph.outputs = [out[r] for r in output_order]
    for sig in model.signatureDefs or []:
        sig.outputs = []
        for role in output_order:
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = OUTPUT_NAMES[role], out[role]
            sig.outputs.append(entry)
    if description is not None:
        model.description = description
    return write_model(model)


def set_postprocess_options(model_bytes: bytes, changes: Mapping[str, Any]) -> bytes:
    """The model with its TFLite_Detection_PostProcess op's custom options updated by ``changes`` (the
    other options, the network and the anchors stay as they are)."""
    model = read_model(model_bytes)
    op = _postprocess_op(model)
    op.customOptions = list(flexbuffers.Dumps({**_options(op), **dict(changes)}))
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    return write_model(model)


def _postprocess_op(model: Any) -> Any:
    graph = model.subgraphs[0]
    found = [op for op in graph.operators if _opcode_name(model, op.opcodeIndex) == POSTPROCESS_OP]
    if len(found) != 1:
        raise ModelError(f"expected one {POSTPROCESS_OP} op in the model, found {len(found)}")
    return found[0]


def _options(op: Any) -> dict[str, Any]:
    raw = bytes(bytearray(op.customOptions)) if op.customOptions is not None else b""
    return {str(k): v for k, v in flexbuffers.Loads(raw).items()} if raw else {}


@dataclass(frozen=True)
class Stripped:
    """A model without its post-process op, and what is needed to decode its raw outputs."""

    model: bytes
    options: dict[str, Any]
    anchors_index: int
    anchors: np.ndarray  # float32 [N, 4]: ycenter, xcenter, h, w (normalized), dequantized if it was uint8


def strip_postprocess(model_bytes: bytes) -> Stripped:
    """Remove TFLite_Detection_PostProcess, and the ``PASSES`` ops after it (module docstring): outputs
    become box encodings [1,N,4] and class scores [1,N,C+1]. ``ModelError`` when another op reads its outputs."""
    model = read_model(model_bytes)
    graph = model.subgraphs[0]
    op = _postprocess_op(model)
    after = _ops_after(model, op)
    steps = _after_steps(Flatbuffer(model_bytes), [int(t) for t in op.outputs])
    box_index, score_index, anchor_index = (int(t) for t in op.inputs[:3])
    options = _options(op)
    removed = [op, *after]
    for o in removed:
        graph.operators.remove(o)
    for code in sorted({o.opcodeIndex for o in removed}, reverse=True):
        if not any(o.opcodeIndex == code for o in graph.operators):
            _drop_opcode(model, code)
    kept = {int(t) for o in graph.operators for t in (*o.inputs, *o.outputs)} | {int(t) for t in graph.inputs}
    drop = {int(t) for o in removed for t in o.outputs}
    drop |= {int(t) for o in after for t in o.inputs if int(t) not in kept} - {box_index, score_index, anchor_index}
    remap = _drop_tensors(model, drop)
    box_index, score_index, anchor_index = remap[box_index], remap[score_index], remap[anchor_index]
    graph.outputs = [box_index, score_index]
    for sig in model.signatureDefs or []:
        sig.outputs = []
        for key, index in (("box_encodings", box_index), ("class_predictions", score_index)):
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = key, index
            sig.outputs.append(entry)
    record: dict[str, Any] = {"anchors_tensor": anchor_index, "postprocess_options": options}
    if steps:
        record["after_postprocess"] = steps
    _set_metadata(model, record)
    data = write_model(model)
    return Stripped(data, options, anchor_index, read_anchors(data))


def _ops_after(model: Any, post: Any) -> list[Any]:
    """The ops that read the post-process op's outputs, directly or through one another, in graph order."""
    graph = model.subgraphs[0]
    values, found = {int(t) for t in post.outputs}, []
    for op in graph.operators[graph.operators.index(post) + 1:]:
        reads = [int(t) in values for t in op.inputs]
        if not any(reads):
            continue
        name = _opcode_name(model, op.opcodeIndex)
        if name not in PASSES or any(reads[1:]):
            raise ModelError(f"{POSTPROCESS_OP}'s outputs feed a {name} op; accel splits the op off only when what "
                             f"follows it re-encodes or reshapes its outputs ({', '.join(PASSES)})")
        found.append(op)
        values.update(int(t) for t in op.outputs)
    return found


def _after_steps(fb: Flatbuffer, post_outputs: Sequence[int]) -> dict[str, list[list[Any]]]:
    """Role -> what the ``PASSES`` ops between that output slot of the op and a graph output did, in order:
    [op name, output dtype, scale, zero point] each (scale 0: not quantized); only roles with such ops."""
    slots = {int(t): role for role, t in zip(ROLES, post_outputs, strict=False)}
    steps: dict[str, list[list[Any]]] = {}
    for output in fb.outputs:
        src, chain = passes_back(fb, output.index)
        role = slots.get(src)
        if role is not None and role not in steps and chain:
            outs = [fb.tensors[op.outputs[0]] for op in chain]
            steps[role] = [[op.name, t.dtype, t.scale, t.zero_point] for op, t in zip(chain, outs, strict=True)]
    return steps


def read_postprocess(model: bytes | Flatbuffer) -> tuple[np.ndarray, dict[str, Any]]:
    """The anchors [N, 4] (float32, ycenter/xcenter/h/w) and the removed op's options recorded by
    ``strip_postprocess`` in a stripped model (its bytes, or the parsed file); ``ModelError`` when the model
    was not stripped by accel."""
    fb, info = _record(model)
    return _anchor_values(fb, int(info["anchors_tensor"])), dict(info.get("postprocess_options") or {})


def read_after_postprocess(model: bytes | Flatbuffer) -> dict[str, list[list[Any]]]:
    """What the ops removed after the op did to each of its outputs (``strip_postprocess``: role -> [op name,
    output dtype, scale, zero point] in order); {} when no op followed it. ``ModelError`` as ``read_postprocess``."""
    return dict(_record(model)[1].get("after_postprocess") or {})


def _record(model: bytes | Flatbuffer) -> tuple[Flatbuffer, dict[str, Any]]:
    fb = model if isinstance(model, Flatbuffer) else Flatbuffer(bytes(model))
    record = fb.metadata(METADATA_KEY)
    if record is None:
        raise ModelError(f"no {METADATA_KEY} metadata: the model was not stripped by accel.model.edit")
    return fb, dict(json.loads(record))


def read_anchors(model_bytes: bytes) -> np.ndarray:
    """The anchors [N, 4] (float32) recorded by ``strip_postprocess`` in a stripped model."""
    return read_postprocess(model_bytes)[0]


def _anchor_values(fb: Flatbuffer, index: int) -> np.ndarray:
    t = fb.tensors[index]
    if t.dtype not in ("float32", "uint8"):
        raise ModelError(f"anchors tensor has type {t.dtype}; expected float32 or uint8")
    value = fb.constant(index)
    if value is None:
        raise ModelError(f"anchors tensor {index} holds no constant values of its shape {list(t.shape)}")
    if t.dtype == "uint8" and t.quantized:
        return ((value.astype(np.float32) - float(t.zero_point)) * float(t.scale)).astype(np.float32)
    return value.astype(np.float32)


def _set_metadata(model: Any, info: Mapping[str, Any]) -> None:
    model.metadata = [e for e in (model.metadata or []) if e.name not in (METADATA_KEY, METADATA_KEY.encode())]
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_KEY, len(model.buffers)
    model.buffers.append(AlignedBuffer.of(np.frombuffer(json.dumps(info, default=float).encode(), np.uint8)))
    model.metadata.append(entry)


def _drop_opcode(model: Any, index: int) -> None:
    model.operatorCodes.pop(index)
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex > index:
                op.opcodeIndex -= 1


def _drop_tensors(model: Any, drop: set[int]) -> dict[int, int]:
    """Remove tensors of subgraph 0 that no op reads or writes any more; return old -> new indices."""
    graph = model.subgraphs[0]
    remap: dict[int, int] = {}
    kept: list[Any] = []
    for i, t in enumerate(graph.tensors):
        if i not in drop:
            remap[i] = len(kept)
            kept.append(t)
    graph.tensors = kept

    def fix(indices: Any) -> list[int]:
        return [remap[int(i)] if int(i) >= 0 else int(i) for i in indices if int(i) not in drop]

    for op in graph.operators:
        op.inputs, op.outputs = fix(op.inputs), fix(op.outputs)
        if op.intermediates is not None:
            op.intermediates = fix(op.intermediates)
    graph.inputs, graph.outputs = fix(graph.inputs), fix(graph.outputs)
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == 0:
            for m in (sig.inputs or []) + (sig.outputs or []):
                m.tensorIndex = remap.get(int(m.tensorIndex), m.tensorIndex)
    return remap
