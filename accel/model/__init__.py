"""Models: what a .tflite file is, read once from its flatbuffer, and what can be done with it.

Modules, each depending only on those above it (and ``accel.core.errors``):

* ``info``: ``ModelInfo``, ``TensorInfo`` and ``Family`` (the one list of model families);
* ``flatbuffer``: the one reader of .tflite bytes (``TFL3`` check, op names, ops, tensors, buffers, constants);
* ``anchors``: SSD anchor boxes, generated as the TF Object Detection API does or taken from a model;
* ``graph``: constants folded through data-movement ops, activations behind outputs, the tensor an output
  carries on through re-encoding and reshaping ops (``PASSES``);
* ``edit``: flatbuffer edits (add or remove TFLite_Detection_PostProcess, add constants);
* ``families``: family detection, output roles and decoder hints;
* ``load``: ``load_model`` and ``read_model_file`` (the file's bytes, read once);
* ``verify``: whether the TFLite runtime accepts a model (its verifier, in a child process);
* ``fold``: what a graph computes from constants and static shapes, folded into constants (litert-gpu's
  ``prepare = "auto"``); ``cached``: files derived from a model, kept by its hash and written atomically;
* ``costs``: MACs, FLOPs and parameters; ``gpu_ops``: the ops the GPU delegate takes; ``gpu_ready``: what the
  GPU path cannot take, why and what to do; ``labels``: label files.
"""

from __future__ import annotations

from accel.model.anchors import AnchorOptions, corners_to_centers, derive_feature_maps, ssd_anchors, ssd_raw_anchors
from accel.model.costs import Costs, costs_or_why, model_costs
from accel.model.edit import (
    graft_postprocess,
    read_anchors,
    read_model,
    set_postprocess_options,
    strip_postprocess,
    write_model,
)
from accel.model.gpu_ops import GPU_OPS, gpu_support
from accel.model.info import Family, ModelInfo, TensorInfo, default_model_path
from accel.model.labels import embedded_labels, find_labels, load_labels, parse_labels
from accel.model.load import load_model, read_model_file
from accel.model.verify import verify_model

__all__ = [
    "AnchorOptions",
    "Costs",
    "Family",
    "GPU_OPS",
    "ModelInfo",
    "TensorInfo",
    "corners_to_centers",
    "costs_or_why",
    "default_model_path",
    "derive_feature_maps",
    "embedded_labels",
    "find_labels",
    "gpu_support",
    "graft_postprocess",
    "load_labels",
    "load_model",
    "model_costs",
    "parse_labels",
    "read_anchors",
    "read_model_file",
    "read_model",
    "set_postprocess_options",
    "ssd_anchors",
    "ssd_raw_anchors",
    "strip_postprocess",
    "verify_model",
    "write_model",
]
