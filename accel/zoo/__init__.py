"""accel's model zoo: architecture-faithful, untrained TFLite twins of the models people run on a Pi.

``build(name, precision, out)`` writes a .tflite with the published model's ops, tensor shapes, parameter count
and compute (within a few percent: ``accel.model.costs``), seeded random weights, in one of three precisions:

* ``fp32``: float32 weights;
* ``fp16``: float16 weights expanded by DEQUANTIZE ops (the converter's float16 quantization);
* ``int8``: full integer quantization calibrated on a few random images; I/O as the family's common export
  (uint8 for the TF classifiers, SSD and EfficientDet-Lite; int8 for YOLOv8, as Ultralytics' int8 export).

The weights are NOT trained: latencies, sizes and op placement are the real models', detections are noise.
Names (``NAMES``): MobileNet v1/v2 classifiers, SSDLite MobileNetV2 (with TFLite_Detection_PostProcess, and a
``_nopp`` variant without it whose anchors stay in the file), EfficientDet-Lite0 (its closest buildable twin,
see ``accel.zoo.efficientdet``), YOLOv8n at 320 and 640. Building needs TensorFlow (``pip install 'accel[build]'``);
it is imported only when a model is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from accel.core.errors import ModelError
from accel.zoo import layers

__all__ = ["NAMES", "PRECISIONS", "build", "describe"]

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class _Entry:
    """How to build one zoo name: ``family`` is a module of accel.zoo with ``build_network(variant, seed,
    uint8_input)``; ``detector`` families also give ``anchors(variant)`` and ``POSTPROCESS_OPTIONS``."""

    family: str
    variant: str
    input_range: tuple[float, float]  # float range the network's input expects
    io_int8: str  # "uint8" or "int8" I/O for the int8 precision
    postprocess: bool | None = None  # detector with the op grafted (True), without it (False), classifier (None)
    uint8_input: bool = False  # fp32/fp16 models take uint8 images (normalised inside), as Model Maker's do
    twin_of: str = ""


_ENTRIES = {
    "mobilenet_v1_0.25_128": _Entry("classifiers", "mobilenet_v1_0.25_128", (-1.0, 1.0), "uint8",
                                    twin_of="MobileNet v1 0.25 128 (TF-Slim / keras.applications)"),
    "mobilenet_v1_1.0_224": _Entry("classifiers", "mobilenet_v1_1.0_224", (-1.0, 1.0), "uint8",
                                   twin_of="MobileNet v1 1.0 224 (TF-Slim / keras.applications)"),
    "mobilenet_v2_1.0_224": _Entry("classifiers", "mobilenet_v2_1.0_224", (-1.0, 1.0), "uint8",
                                   twin_of="MobileNet v2 1.0 224 (keras.applications)"),
    "ssdlite_mobilenet_v2_300": _Entry("ssdlite", "300", (-1.0, 1.0), "uint8", True,
                                       twin_of="TF OD API ssdlite_mobilenet_v2_coco"),
    "ssdlite_mobilenet_v2_300_nopp": _Entry("ssdlite", "300", (-1.0, 1.0), "uint8", False,
                                            twin_of="TF OD API ssdlite_mobilenet_v2_coco without post-process"),
    "efficientdet_lite0_320": _Entry("efficientdet", "320", (0.0, 255.0), "uint8", True, True,
                                     twin_of="Model Maker EfficientDet-Lite0 (closest buildable twin)"),
    "efficientdet_lite0_320_nopp": _Entry("efficientdet", "320", (0.0, 255.0), "uint8", False, True,
                                          twin_of="EfficientDet-Lite0 without post-process"),
    "yolov8n_320": _Entry("yolov8", "320", (0.0, 1.0), "int8", twin_of="Ultralytics YOLOv8n TFLite export, imgsz 320"),
    "yolov8n_640": _Entry("yolov8", "640", (0.0, 1.0), "int8", twin_of="Ultralytics YOLOv8n TFLite export, imgsz 640"),
}
NAMES = tuple(_ENTRIES)


def describe(name: str) -> str:
    """One line on what a zoo name is a twin of."""
    return _entry(name).twin_of


def _entry(name: str) -> _Entry:
    if name not in _ENTRIES:
        raise ModelError(f"unknown zoo model {name!r}; known: {', '.join(NAMES)}")
    return _ENTRIES[name]


def build(name: str, precision: str, out: Path, *, seed: int = 0) -> Path:
    """Build zoo model ``name`` in ``precision`` (fp32 | fp16 | int8) and write it.

    ``out`` is the .tflite file to write, or a folder (then ``{name}_{precision}.tflite`` inside it).
    Returns the path written. Raises ``ModelError`` for an unknown name or precision, or without TensorFlow.
    """
    entry = _entry(name)
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r} for {name}; valid: {', '.join(PRECISIONS)}")
    layers.require_tensorflow()
    path = Path(out)
    if path.suffix != ".tflite":
        path = path / f"{name}_{precision}.tflite"
    data = _build_bytes(entry, precision, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _family(entry: _Entry) -> Any:
    import importlib

    return importlib.import_module(f"accel.zoo.{entry.family}")


@functools.lru_cache(maxsize=2)
def _network_bytes(entry: _Entry, precision: str, seed: int) -> bytes:
    """The converted network before any post-process edit; cached so a detector's two variants (with and
    without the post-process op) share one conversion."""
    family = _family(entry)
    uint8_input = entry.uint8_input and precision != "int8"
    network = family.build_network(entry.variant, seed, uint8_input=uint8_input)
    layers.perturb_untrained(network, seed)
    io = entry.io_int8 if precision == "int8" else None
    return layers.convert(network, precision, io_dtype=io, input_range=entry.input_range, seed=seed)


def _build_bytes(entry: _Entry, precision: str, seed: int) -> bytes:
    from accel.model import graft_postprocess, strip_postprocess

    family = _family(entry)
    raw = _network_bytes(replace(entry, postprocess=None, twin_of=""), precision, seed)
    text = f"accel zoo: untrained twin of {entry.twin_of}; {precision}; seed={seed}"
    if entry.postprocess is None:
        return layers.edit(raw, text)
    raw = layers.edit(raw, text, {key: f"raw_outputs/{key}" for key in ("box_encodings", "class_predictions")})
    grafted = graft_postprocess(
        raw, family.anchors(entry.variant), family.POSTPROCESS_OPTIONS,
        inputs=("box_encodings", "class_predictions"), output_order=family.OUTPUT_ORDER)
    if entry.postprocess:
        return grafted
    return strip_postprocess(grafted).model

