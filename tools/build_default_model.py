"""Build accel's embedded default detector: ``accel/data/default_detector.tflite`` (+ ``_int8``).

The model is a small SSD-style single-shot detector with EfficientDet-Lite0's interface:

* input ``images``: uint8 [1, 320, 320, 3], RGB, raw pixels; rescaled to [-1, 1] inside the graph;
* outputs of ``TFLite_Detection_PostProcess``, in the subgraph order of Model Maker's EfficientDet-Lite0
  exports: scores [1, 25], boxes [1, 25, 4] (ymin, xmin, ymax, xmax, normalized), count [1],
  classes [1, 25]; signature ``serving_default`` maps ``output_0..3`` to count, scores, classes, boxes.

Steps: ``build_network()`` -> ``make_anchors()`` -> [``train_default_model.train()``] -> ``convert()`` /
``convert_int8()`` -> ``graft_postprocess()`` -> ``verify()`` -> [``train_default_model.evaluate()``].
With ``--train`` the network is trained on synthetic leaf scenes (``tools/train_default_model.py``: data,
SSD matching, focal + Huber loss, evaluation with pycocotools' COCOeval on held-out scenes) and also
exported as full int8 (``--out-int8``: int8 network, uint8 input with scale 1 and zero point 0, float
post-process outputs). Without ``--train`` the weights are a seeded random initialisation (an untrained
model, for plumbing only).

Usage (needs the ``build`` and ``eval`` extras: ``pip install -e '.[build,eval]'``)::

    python tools/build_default_model.py --train --seed 0 \\
        --out accel/data/default_detector.tflite --out-int8 accel/data/default_detector_int8.tflite

It runs on 2 CPU threads (``--threads``) in about 9-13 minutes on a 2-core x86-64 machine: rendering
4000 frames, 16 epochs, conversion, and scoring both models on 1000 held-out frames.

Determinism: the same seed, thread count, machine and library versions (TF 2.21 / Keras 3.15, numpy,
Pillow) give byte-identical files: training runs with fixed seeds and
``tf.config.experimental.enable_op_determinism()``. A different ``--threads`` gives different (equally
good) weights; other CPUs or versions are not guaranteed to reproduce the bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

try:
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # a build-only environment: TensorFlow ships the same generated module
    from tensorflow.lite.python import schema_py_generated as schema

import train_default_model as training  # tools/ is on sys.path when this file runs as a script

from accel.model.edit import AlignedBuffer  # buffers packed 16-byte aligned, as TFLite's writer does

IMAGE_SIZE = 320
FEATURE_MAPS = (20, 10)  # strides 16 and 32
SCALES = (0.1, 0.3, 0.6)  # anchor size per feature map (plus one beyond the last, for the 2nd scale)
ASPECT_RATIOS = (1.0, 2.0, 0.5)  # width / height
ANCHORS_PER_CELL = 2 * len(ASPECT_RATIOS)
NUM_CLASSES = 1  # "leaf"; the class head adds a background column 0 (1 - leaf: one class only)
LABELS = ("leaf",)
# Depthwise-separable backbone blocks after the stride-2 stem: (output channels, stride).
BACKBONE = ((24, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (192, 2), (192, 1))
POSTPROCESS_OPTIONS: dict[str, Any] = {
    "max_detections": 25,
    "max_classes_per_detection": 1,
    "detections_per_class": 100,
    "use_regular_nms": False,
    "nms_score_threshold": 1e-8,
    "nms_iou_threshold": 0.5,
    "num_classes": NUM_CLASSES,
    "y_scale": 10.0,
    "x_scale": 10.0,
    "h_scale": 5.0,
    "w_scale": 5.0,
}
# (tensor name, signature key, shape) in subgraph output order; the post-process op itself emits
# boxes, classes, scores, count.
OUTPUTS = (
    ("detection_scores", "output_1", [1, 25]),
    ("detection_boxes", "output_3", [1, 25, 4]),
    ("num_detections", "output_0", [1]),
    ("detection_classes", "output_2", [1, 25]),
)
_OP_OUTPUT_ORDER = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def build_network(seed: int, batch_size: int | None = 1, float_input: bool = False) -> Any:
    """Return the Keras detector: images -> raw box encodings [B,N,4], class scores [B,N,2].

    ``float_input=False`` takes uint8 pixels (the float32 export); ``True`` takes float32 pixels 0..255
    (training, and the int8 export, whose converter turns that input into uint8 with scale 1, zero point 0).
    Both variants have the same weights in the same order (``set_weights`` copies between them). The layer
    ``class_logits`` holds the logits behind the scores (column 0 background, column 1 leaf).
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)

    def bn_relu6(x: Any, layer: Any) -> Any:
        # He init keeps the activations' scale through the ReLUs (an untrained build must still give
        # outputs that vary with the image: with Glorot init the signal fades to ~0 by the heads).
        x = layer(x)
        x = layers.BatchNormalization(name=f"{layer.name}_bn")(x)
        return layers.ReLU(6.0, name=f"{layer.name}_relu6")(x)

    def dw(stride: int, name: str) -> Any:
        # Keras' "he_normal" takes fan-in = 9 x channels for a depthwise kernel; each output sees only 9.
        init = keras.initializers.RandomNormal(stddev=float(np.sqrt(2.0 / 9.0)))
        return layers.DepthwiseConv2D(
            3, stride, "same", use_bias=False, depthwise_initializer=init, name=name
        )

    def separable(x: Any, filters: int, stride: int, name: str) -> Any:
        x = bn_relu6(x, dw(stride, f"{name}_dw"))
        pointwise = layers.Conv2D(
            filters, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_pw"
        )
        return bn_relu6(x, pointwise)

    def head(x: Any, per_anchor: int, name: str, bias: float = 0.0) -> Any:
        # SSDLite head: depthwise 3x3, then a 1x1 projection.
        x = bn_relu6(x, dw(1, f"{name}_dw"))
        projection = layers.Conv2D(
            ANCHORS_PER_CELL * per_anchor, 1, kernel_initializer="he_normal",
            bias_initializer=keras.initializers.Constant(bias), name=f"{name}_proj",
        )
        return layers.Reshape((-1, per_anchor), name=f"{name}_flat")(projection(x))

    dtype = "float32" if float_input else "uint8"
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), batch_size=batch_size, dtype=dtype, name="images")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, dtype="float32", name="to_unit_range")(images)
    x = bn_relu6(
        x, layers.Conv2D(16, 3, 2, "same", use_bias=False, kernel_initializer="he_normal", name="stem")
    )
    features = []
    for i, (filters, stride) in enumerate(BACKBONE):
        x = separable(x, filters, stride, f"block{i}")
        if x.shape[1] in FEATURE_MAPS and (i + 1 == len(BACKBONE) or BACKBONE[i + 1][1] == 2):
            features.append(x)
    if tuple(f.shape[1] for f in features) != FEATURE_MAPS:
        raise ValueError(f"BACKBONE yields feature maps {[f.shape for f in features]}, want {FEATURE_MAPS}")
    boxes = [head(f, 4, f"box{f.shape[1]}") for f in features]
    # One logit per anchor (RetinaNet's prior: sigmoid(bias) = 0.01 leaf at the start of training); the
    # background column is its negation, so that background score = 1 - leaf score exactly.
    leaf = [head(f, NUM_CLASSES, f"cls{f.shape[1]}", bias=-float(np.log(99.0))) for f in features]
    box_encodings = layers.Concatenate(axis=1, name="box_encodings")(boxes)
    leaf_logits = layers.Concatenate(axis=1, name="leaf_logits")(leaf)
    background = layers.Rescaling(-1.0, name="background_logits")(leaf_logits)
    class_logits = layers.Concatenate(axis=-1, name="class_logits")([background, leaf_logits])
    # TFLite_Detection_PostProcess uses class predictions as scores as they are: sigmoid in the graph.
    scores = layers.Activation("sigmoid", name="class_predictions")(class_logits)
    return keras.Model(images, {"box_encodings": box_encodings, "class_predictions": scores})


def make_anchors() -> np.ndarray:
    """Return SSD anchors [N, 4] (ycenter, xcenter, h, w; normalized), in the heads' output order."""
    rows = []
    for k, size in enumerate(FEATURE_MAPS):
        scales = (SCALES[k], float(np.sqrt(SCALES[k] * SCALES[k + 1])))
        for i in range(size):
            for j in range(size):
                for scale in scales:
                    for ratio in ASPECT_RATIOS:
                        root = float(np.sqrt(ratio))
                        rows.append(((i + 0.5) / size, (j + 0.5) / size, scale / root, scale * root))
    return np.asarray(rows, dtype=np.float32)


def convert(model: Any) -> bytes:
    """Convert the Keras model to a float32 .tflite with uint8 input and the two raw outputs.

    ``from_keras_model`` freezes the variables and folds BatchNorm into the convolutions; it also
    writes the ``serving_default`` signature (input key ``images``) that ``graft_postprocess`` edits.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export lists every captured variable
        return bytes(converter.convert())


def convert_int8(model: Any, calibration: np.ndarray) -> bytes:
    """Convert a float-input model (``build_network(float_input=True)``) to full int8 with uint8 input.

    Post-training quantization calibrated on ``calibration`` (uint8 [n, 320, 320, 3] frames): int8
    weights and activations, a uint8 input with scale 1 and zero point 0 (raw pixels, as accel feeds a
    uint8 input), and float32 raw outputs (DEQUANTIZE), which the float post-process op then takes, as in
    EfficientDet-Lite0's quantized exports.
    """
    import tensorflow as tf

    def representative() -> Any:
        for k, image in enumerate(calibration):
            sample = image[np.newaxis].astype(np.float32)
            if k == 0:  # pin the input range to the full 0..255, whatever the frames span: scale 1
                sample[0, 0, 0, 0], sample[0, 0, 0, 1] = 0.0, 255.0
            yield [sample]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # the input's statistics come from the representative frames, not from user-given ranges
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return bytes(converter.convert())


def graft_postprocess(tflite: bytes, anchors: np.ndarray, description: str) -> bytes:
    """Append TFLite_Detection_PostProcess to the converted model and make its outputs the model's."""
    import flatbuffers
    from flatbuffers import flexbuffers

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(tflite, 0))
    model.buffers = [AlignedBuffer.of(b.data, b.offset, b.size) for b in model.buffers]
    graph = model.subgraphs[0]
    signature = model.signatureDefs[0]
    raw = {m.name.decode(): m.tensorIndex for m in signature.outputs}  # keys of the Keras outputs
    box_index, score_index = raw["box_encodings"], raw["class_predictions"]
    graph.tensors[box_index].name = "raw_outputs/box_encodings"
    graph.tensors[score_index].name = "raw_outputs/class_predictions"

    def add_tensor(name: str, shape: list[int], data: np.ndarray | None = None) -> int:
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type = name, shape, schema.TensorType.FLOAT32
        tensor.buffer = 0  # buffer 0 is the schema's empty sentinel
        if data is not None:
            tensor.buffer = len(model.buffers)
            model.buffers.append(AlignedBuffer.of(np.frombuffer(data.astype("<f4").tobytes(), np.uint8)))
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    anchor_index = add_tensor("anchors", list(anchors.shape), anchors)
    out = {name: add_tensor(name, shape) for name, _, shape in OUTPUTS}

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = "TFLite_Detection_PostProcess", 1
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs = [box_index, score_index, anchor_index]
    op.outputs = [out[name] for name in _OP_OUTPUT_ORDER]
    op.customOptions = list(flexbuffers.Dumps(POSTPROCESS_OPTIONS))
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    graph.operators.append(op)
    graph.outputs = [out[name] for name, _, _ in OUTPUTS]

    signature.outputs = []
    for name, key, _ in sorted(OUTPUTS, key=lambda o: o[1]):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = key, out[name]
        signature.outputs.append(entry)
    model.description = description
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"build_default_model: verification failed: {what}")


def verify(path: Path, runs: int = 20) -> float:
    """Run the model on a random image; check the four outputs; return the mean latency in ms."""
    try:
        from ai_edge_litert import interpreter as litert

        interpreter_class = litert.Interpreter
    except ImportError:  # build-only environment: TensorFlow's own (deprecated) interpreter
        import tensorflow as tf

        interpreter_class = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it is deprecated
        warnings.simplefilter("ignore")
        interpreter = interpreter_class(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.get_signature_list()
    (inp,) = interpreter.get_input_details()
    _check(inp["dtype"] == np.uint8 and list(inp["shape"]) == [1, IMAGE_SIZE, IMAGE_SIZE, 3], f"input {inp}")
    # raw pixels: not quantized (float model) or scale 1, zero point 0 (int8 model)
    _check(tuple(inp["quantization"]) in ((0.0, 0), (1.0, 0)), f"input quantization {inp['quantization']}")
    image = np.random.default_rng(0).integers(0, 256, inp["shape"], dtype=np.uint8)
    interpreter.set_tensor(inp["index"], image)
    interpreter.invoke()
    start = time.perf_counter()
    for _ in range(runs):
        interpreter.invoke()
    latency_ms = (time.perf_counter() - start) * 1e3 / runs
    details = interpreter.get_output_details()
    got = [(d["name"], list(d["shape"])) for d in details]
    _check(got == [(name, shape) for name, _, shape in OUTPUTS], f"outputs {got}")
    values = {d["name"]: interpreter.get_tensor(d["index"]) for d in details}
    count = int(values["num_detections"][0])
    boxes = values["detection_boxes"][0, :count]
    _check(0 < count <= 25, f"num_detections {count}")
    _check(bool(np.isfinite(boxes).all() and np.abs(boxes).max() < 2.0), f"boxes out of range: {boxes}")
    _check(bool((boxes[:, 2:] >= boxes[:, :2]).all()), f"boxes not (ymin, xmin, ymax, xmax): {boxes}")
    classes = set(values["detection_classes"][0, :count].tolist())
    _check(classes <= set(range(NUM_CLASSES)), f"classes {classes}")
    return latency_ms


def _write(path: Path, flat: bytes) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flat)
    latency_ms = verify(path)
    print(f"wrote {path} ({len(flat)} bytes, sha256 {hashlib.sha256(flat).hexdigest()}); "
          f"latency {latency_ms:.2f} ms (1 thread, mean of 20)")
    return latency_ms


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("accel/data/default_detector.tflite"))
    parser.add_argument("--out-int8", type=Path, default=None, help="also write the full-int8 model (needs --train)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", action="store_true", help="train on synthetic scenes (else: random weights)")
    defaults = training.TrainConfig()
    parser.add_argument("--frames", type=int, default=defaults.frames, help="training frames")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="CPU threads for everything")
    parser.add_argument("--calibration-frames", type=int, default=200, help="int8 calibration frames")
    parser.add_argument("--eval-frames", type=int, default=1000, help="held-out frames to score (0: skip)")
    args = parser.parse_args(argv)
    if args.out_int8 and not args.train:
        parser.error("--out-int8 needs --train (an untrained network has nothing to calibrate for)")

    start = time.perf_counter()
    anchors = make_anchors()
    labels = args.out.with_name("labels.txt")  # found by accel beside every model in the folder
    if not args.train:
        network = build_network(args.seed)
        _check(anchors.shape[0] == network.output.box_encodings.shape[1], f"anchors {anchors.shape}")
        description = (
            "accel default detector: untrained SSD-style, EfficientDet-Lite0 interface; "
            f"built by tools/build_default_model.py seed={args.seed}"
        )
        _write(args.out, graft_postprocess(convert(network), anchors, description))
        labels.write_text("".join(f"{label}\n" for label in LABELS))
        print(f"parameters: {network.count_params()}  anchors: {anchors.shape[0]}  (untrained)")
        return 0

    config = training.TrainConfig(seed=args.seed, frames=args.frames, epochs=args.epochs, threads=args.threads)
    training.configure_tensorflow(config.threads, config.seed)
    network = build_network(config.seed, batch_size=None, float_input=True)
    _check(anchors.shape[0] == network.output.box_encodings.shape[1], f"anchors {anchors.shape}")
    summary = training.train(network, anchors, FEATURE_MAPS, config)
    weights = network.get_weights()
    recipe = f"seed={config.seed} frames={config.frames} epochs={config.epochs}"

    t0 = time.perf_counter()
    exported = build_network(config.seed)
    exported.set_weights(weights)
    description = (
        "accel default detector: SSD-style trained on synthetic leaves, EfficientDet-Lite0 interface, float32; "
        f"built by tools/build_default_model.py --train {recipe}"
    )
    outputs = {args.out: graft_postprocess(convert(exported), anchors, description)}
    if args.out_int8:
        quantizable = build_network(config.seed, float_input=True)
        quantizable.set_weights(weights)
        calibration = training.calibration_frames(config.seed, args.calibration_frames)
        outputs[args.out_int8] = graft_postprocess(
            convert_int8(quantizable, calibration), anchors, description.replace("float32", "full int8")
        )
    convert_s = time.perf_counter() - t0
    for path, flat in outputs.items():
        _write(path, flat)
    labels.write_text("".join(f"{label}\n" for label in LABELS))

    t0 = time.perf_counter()
    if args.eval_frames:
        for path in outputs:
            metrics = training.evaluate(path, training.HELD_OUT_SEED, args.eval_frames, threads=config.threads)
            print(f"{path}: held-out (scene seed {training.HELD_OUT_SEED}): {training.describe_metrics(metrics)}")
    eval_s = time.perf_counter() - t0
    print(
        f"parameters: {network.count_params()}  anchors: {anchors.shape[0]}  steps: {summary['steps']}\n"
        f"wall time: data {summary['data_s']:.0f} s, training {summary['train_s']:.0f} s, "
        f"conversion {convert_s:.0f} s, evaluation {eval_s:.0f} s, total {time.perf_counter() - start:.0f} s "
        f"({config.threads} threads)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
