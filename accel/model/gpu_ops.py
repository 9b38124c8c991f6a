"""Which TFLite ops the classic TFLite GPU delegate can take, and which of a model's ops would fall back to CPU.

Sources of truth (checked against upstream TensorFlow):

* ``tensorflow/lite/delegates/gpu/common/model_builder.cc``: ``NewOperationParser`` (an op without a parser
  is "not supported") and ``GetOpsToReplace``/``IsAllAllowedTensors`` (runtime tensors must be float32 or
  float16; int8/uint8 only when quantized models are enabled);
* ``tensorflow/lite/tools/versioning/gpu_compatibility.cc``: ``CheckGpuDelegateCompatibility``, the per-op
  constraints that used to live in model_builder.cc's ``IsSupported`` (summarised in the notes below);
* the published list in the GPU delegate guide (tensorflow.org/lite/performance/gpu, "Supported ops"): ADD,
  AVERAGE_POOL_2D, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, EXP, FULLY_CONNECTED, LOGICAL_AND, LOGISTIC,
  LSTM, MAX_POOL_2D, MAXIMUM, MINIMUM, MUL, PAD, PRELU, RELU, RELU6, RESHAPE, RESIZE_BILINEAR, SOFTMAX,
  STRIDED_SLICE, SUB, TRANSPOSE_CONV. The source accepts more; ``GpuOp.documented`` tells them apart (the
  undocumented ones arrived over TF 2.4-2.1x: a delegate built from an older commit may lack them).

Delegate-wide rules that an op histogram cannot show, reported in ``gpu_support``'s ``caveats``:
quantized (int8/uint8) models need the "quantized models" experimental flag (bit 1; on in
``TfLiteGpuDelegateOptionsV2Default``, but a ``load_delegate`` options dict that sets ``experimental_flags``
replaces it); DEQUANTIZE of float16 weights is absorbed by the delegate in any case; batch must be 1;
``max_delegated_partitions`` defaults to 1, so only the largest run of supported ops goes to the GPU and
supported ops outside it fall back too. Custom ops are refused except a few MediaPipe ones; in particular
``TFLite_Detection_PostProcess`` always falls back (strip it with ``accel.model.edit.strip_postprocess``).

``CAST`` has a parser but is counted on the CPU: ``gpu_compatibility.cc`` takes only bool -> float16/float32,
float16/float32 -> bool and float32 <-> int32 casts, while the CAST in an image model is its uint8 input
converted to float32, which it refuses ("Not supported Cast case. Input type: UINT8 and output type: FLOAT32",
TensorFlow 2.17's analyzer on accel's default detector and on the EfficientDet-Lite twins with uint8 input).
``tests/model/test_gpu_ops.py`` compares this table with TensorFlow's analyzer over the models accel builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accel.model.edit import POSTPROCESS_OP

__all__ = ["GPU_OPS", "GpuOp", "gpu_support"]


@dataclass(frozen=True)
class GpuOp:
    """One op the GPU delegate takes (it has a parser for it); ``note`` is its main constraint, if any."""

    name: str
    documented: bool = False
    note: str = ""
    quantized_only: bool = False  # taken only with the quantized-models flag


_DOCUMENTED = {"ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXP", "FULLY_CONNECTED",
               "LOGICAL_AND", "LOGISTIC", "LSTM", "MAX_POOL_2D", "MAXIMUM", "MINIMUM", "MUL", "PAD", "PRELU", "RELU",
               "RELU6", "RESHAPE", "RESIZE_BILINEAR", "SOFTMAX", "STRIDED_SLICE", "SUB", "TRANSPOSE_CONV"}
_ACT = "fused activation NONE, RELU, RELU_N1_TO_1, RELU6, TANH or SIGMOID (not SIGN_BIT)"
_TWO = "one or two runtime inputs (the other may be a constant)"
_AXES = "axes must be a constant int32 tensor"
_NOTES = {
    "ADD": "exactly two inputs",
    "ADD_N": "only two inputs",
    "AVERAGE_POOL_2D": f"one runtime input; kernel and stride > 0; {_ACT}",
    "MAX_POOL_2D": f"one runtime input; kernel and stride > 0; {_ACT}",
    "BATCH_MATMUL": "two inputs, one output",
    "CONV_2D": f"at most two runtime inputs (runtime weights allowed); stride and dilation > 0; {_ACT}",
    "DEPTHWISE_CONV_2D": f"4-D tensors; depth_multiplier 1 (or one input channel); {_ACT}",
    "TRANSPOSE_CONV": "at most two runtime inputs; stride > 0",
    "FULLY_CONNECTED": "default weights format; input not constant; keep_num_dims only when ranks match",
    "CUMSUM": "float input, constant int32 axis",
    "DEPTH_TO_SPACE": "block_size > 1",
    "SPACE_TO_DEPTH": "block_size > 1",
    "DEQUANTIZE": "int8/uint8 input needs the quantized flag; fp16 weights are absorbed; not int16",
    "QUANTIZE": "needs the quantized flag",
    "GATHER": "1-D int32 indices; input not int32",
    "MEAN": f"one runtime input; {_AXES}",
    "SUM": _AXES, "REDUCE_MAX": _AXES, "REDUCE_MIN": _AXES, "REDUCE_PROD": _AXES,
    "MUL": "two inputs, one not smaller than the other in every dimension (no outer-product broadcast); " + _ACT,
    "PAD": "3-D or 4-D (paddings 3x2 or 4x2); one runtime input",
    "PADV2": "3-D or 4-D (paddings 3x2 or 4x2); one runtime input",
    "MIRROR_PAD": "REFLECT mode only; 3-D or 4-D",
    "SOFTMAX": "beta must be 1",
    "SLICE": "3-D or 4-D input",
    "STRIDED_SLICE": "3-D or 4-D input; no ellipsis, new-axis or shrink-axis masks",
    "RESHAPE": "one runtime input (the new shape constant)",
    "TRANSPOSE": "one runtime input", "TILE": "one runtime input",
    "RESIZE_BILINEAR": "not align_corners together with half_pixel_centers",
    "LSTM": "basic kernel with TANH and no clipping, or full kernel with 20/24 inputs",
    "ONE_HOT": "int32 indices, constant scalar float on/off values, last axis",
    "SELECT": "float if/else tensors of the output's shape or constant scalars",
    "SELECT_V2": "float if/else tensors of the output's shape or constant scalars",
}
_ELEMENTWISE = ("ABS", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC", "NEG", "RSQRT", "SIGN", "SIN", "SQRT",
                "SQUARE", "TANH", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "PRELU")
_BINARY = ("DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL", "LOGICAL_AND", "LESS", "LESS_EQUAL",
           "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW", "SQUARED_DIFFERENCE", "SUB")
_OTHERS = ("CONCATENATION", "DENSIFY", "PACK", "SPLIT", "SPLIT_V", "RESIZE_NEAREST_NEIGHBOR")
# Ops with a GPU parser that the delegate refuses in the models accel runs (see the module docstring).
_REFUSED = {
    "CAST": "the GPU check takes only bool <-> float and float32 <-> int32 casts; an image model's CAST (its uint8 "
            "input to float32) runs on CPU",
}
# Custom ops with a GPU parser (MediaPipe's); everything else custom falls back.
GPU_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"})

GPU_OPS: dict[str, GpuOp] = {
    name: GpuOp(name, name in _DOCUMENTED, _NOTES.get(name, _TWO if name in _BINARY else ""),
                quantized_only=name in ("QUANTIZE", "DEQUANTIZE"))
    for name in sorted({*_NOTES, *_ELEMENTWISE, *_BINARY, *_OTHERS, *_DOCUMENTED})
}


def gpu_support(ops: Mapping[str, int], *, quantized_flag: bool = True) -> dict[str, Any]:
    """Split an op histogram (``ModelInfo.ops``) into what the GPU delegate would take and what falls back.

    ``quantized_flag``: whether the delegate runs with the quantized-models flag (its default). Returns
    ``{"gpu": {op: n}, "cpu": {op: n}, "gpu_ops": n, "cpu_ops": n, "total_ops": n, "fully_delegated": bool,
    "notes": {op: constraint or reason}, "caveats": [...]}``. This is an upper bound from op names: an op
    listed under "gpu" can still fall back when it breaks a constraint in ``notes`` (shapes, options).
    """
    gpu: dict[str, int] = {}
    cpu: dict[str, int] = {}
    notes: dict[str, str] = {}
    for name, count in sorted(ops.items()):
        entry = GPU_OPS.get(name)
        if name == POSTPROCESS_OP:
            cpu[name] = count
            notes[name] = "custom op without a GPU parser: runs on CPU; strip it to delegate the whole network"
        elif name in _REFUSED:
            cpu[name] = count
            notes[name] = _REFUSED[name]
        elif name in GPU_CUSTOM_OPS:
            gpu[name] = count
            notes[name] = "MediaPipe custom op the delegate implements"
        elif entry is None:
            cpu[name] = count
            notes[name] = "no GPU parser for this op: runs on CPU"
        elif entry.quantized_only and not quantized_flag:
            cpu[name] = count
            notes[name] = "needs the quantized-models flag (fp16 DEQUANTIZE of weights is absorbed regardless)"
        else:
            gpu[name] = count
            if entry.note:
                notes[name] = entry.note
    caveats = [
        "only the largest run of supported ops is delegated by default (max_delegated_partitions = 1): "
        "supported ops cut off from it by a CPU op fall back too",
        "runtime tensors must be float32/float16 (int8/uint8 with the quantized flag); int32 tensors fall back",
        "batch size must be 1",
    ]
    if any(name in ops for name in ("QUANTIZE", "DEQUANTIZE")):
        caveats.append("quantized model: the delegate computes in float16/float32 and re-quantizes at its edges")
    return {
        "gpu": gpu, "cpu": cpu, "gpu_ops": sum(gpu.values()), "cpu_ops": sum(cpu.values()),
        "total_ops": sum(ops.values()), "fully_delegated": not cpu, "notes": notes, "caveats": caveats,
    }
