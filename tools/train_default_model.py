"""Train and score accel's default detector on synthetic leaf scenes (used by ``build_default_model.py``).

Data: ``accel.sources.synthetic.render_scene(index, seed)`` frames at 640x480, stretched to 320x320 with
``accel.kernels.numpy_ref.resize_bilinear``: exactly what accel feeds a 320x320 detector with ``resize =
"stretch"``. Training frames use scene seed ``seed`` (indices 0..frames-1); held-out frames use
``HELD_OUT_SEED`` and up, which no training run uses.

Targets: SSD matching. An anchor is positive when its IoU with a leaf is >= ``POSITIVE_IOU``, ignored
between ``NEGATIVE_IOU`` and that, negative below; each leaf's best anchor is positive whatever its IoU.
Positive anchors regress the leaf's box in TFLite_Detection_PostProcess' coding (``BOX_SCALES``).
Loss: sigmoid focal loss (alpha 0.25, gamma 2) on the leaf logit plus Huber loss on the box encodings of
positive anchors, both divided by the number of positives. Augmentation: random horizontal and vertical
flips, done by flipping the image and permuting the anchors' targets (the anchor grid is symmetric).

``evaluate()`` scores a .tflite file with pycocotools' COCOeval through LiteRT's classic ``Interpreter``.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FRAME_SIZE = (640, 480)  # width, height: the synthetic camera's default
IMAGE_SIZE = 320
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w: the post-process op's y_scale, x_scale, h_scale, w_scale
POSITIVE_IOU = 0.4
NEGATIVE_IOU = 0.3
HELD_OUT_SEED = 1_000_000  # scene seeds >= this are never trained on
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
BOX_WEIGHT = 2.0  # box loss relative to the focal loss


@dataclass(frozen=True)
class TrainConfig:
    """What a training run depends on besides the code: the seed picks the scenes, the initial weights,
    the batch order and the flips."""

    seed: int = 0
    frames: int = 4000
    epochs: int = 16
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    threads: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.seed < HELD_OUT_SEED:
            raise ValueError(f"seed must be in [0, {HELD_OUT_SEED}) (higher scene seeds are held out), got {self.seed}")
        if self.frames < self.batch_size or self.epochs < 1 or self.threads < 1:
            raise ValueError(f"need frames >= batch_size, epochs >= 1, threads >= 1; got {self}")


def _render(job: tuple[int, int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
    from accel.kernels.numpy_ref import resize_bilinear
    from accel.sources.synthetic import render_scene

    seed, start, count = job
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    boxes = []
    for k in range(count):
        scene = render_scene(start + k, seed, *FRAME_SIZE)
        images[k] = resize_bilinear(scene.rgb, IMAGE_SIZE, IMAGE_SIZE)
        # (ymin, xmin, ymax, xmax) normalized: stretching keeps normalized coordinates
        boxes.append(np.array([(b.y0, b.x0, b.y1, b.x1) for b in scene.boxes], np.float32).reshape(-1, 4))
    return images, boxes


def render_frames(seed: int, count: int, start: int = 0, workers: int = 2) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frames ``start..start+count-1`` of scene seed ``seed`` as model inputs: uint8 [count, 320, 320, 3]
    and per frame the leaves' boxes [k, 4] (ymin, xmin, ymax, xmax, normalized). Same result for any
    number of ``workers`` (each frame depends on its seed and index only)."""
    chunk = max(1, -(-count // (4 * workers)))
    jobs = [(seed, start + i, min(chunk, count - i)) for i in range(0, count, chunk)]
    if workers <= 1 or len(jobs) == 1:
        parts = [_render(job) for job in jobs]
    else:
        import multiprocessing

        # spawn, not fork: the parent may already run TensorFlow's thread pools
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_render, jobs))
    return np.concatenate([p[0] for p in parts]), [b for p in parts for b in p[1]]


def _corners(anchors: np.ndarray) -> np.ndarray:
    cy, cx, h, w = anchors.T
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], 1)


def match_anchors(anchors: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SSD matching of one frame: labels int8 [N] (1 leaf, 0 background, -1 ignored) and box encodings
    float32 [N, 4] (ty, tx, th, tw; meaningful where the label is 1) for anchors [N, 4] (cy, cx, h, w)."""
    n = len(anchors)
    labels, targets = np.zeros(n, np.int8), np.zeros((n, 4), np.float32)
    if len(boxes) == 0:
        return labels, targets
    a = _corners(anchors)[:, None, :]
    b = boxes[None, :, :]
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None), -1)
    union = np.prod(a[..., 2:] - a[..., :2], -1) + np.prod(b[..., 2:] - b[..., :2], -1) - inter
    iou = inter / union
    best = iou.argmax(1)
    best_iou = iou[np.arange(n), best]
    labels[best_iou >= NEGATIVE_IOU] = -1
    labels[best_iou >= POSITIVE_IOU] = 1
    forced = iou.argmax(0)  # every leaf gets its best anchor
    best[forced] = np.arange(len(boxes))
    labels[forced] = 1
    g = boxes[best]
    gh, gw = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    gy, gx = g[:, 0] + gh / 2, g[:, 1] + gw / 2
    cy, cx, h, w = anchors.T
    sy, sx, sh, sw = BOX_SCALES
    targets[:] = np.stack([sy * (gy - cy) / h, sx * (gx - cx) / w, sh * np.log(gh / h), sw * np.log(gw / w)], 1)
    return labels, targets


def _flip_permutations(feature_maps: Sequence[int], per_cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchor index permutations for a horizontal and a vertical image flip (anchors ordered row, column,
    then per cell, as ``make_anchors`` orders them)."""
    horizontal, vertical, offset = [], [], 0
    for size in feature_maps:
        grid = np.arange(size * size * per_cell).reshape(size, size, per_cell) + offset
        horizontal.append(grid[:, ::-1].ravel())
        vertical.append(grid[::-1].ravel())
        offset += grid.size
    return np.concatenate(horizontal), np.concatenate(vertical)


def train(
    model: Any,
    anchors: np.ndarray,
    feature_maps: Sequence[int],
    config: TrainConfig,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``model`` in place; returns a summary (losses per epoch, times, data counts).

    ``model`` maps float32 [B, 320, 320, 3] pixels (0..255) to ``box_encodings`` [B, N, 4]; its layer
    ``class_logits`` [B, N, 2] holds the logits (column 1: leaf). Call ``configure_tensorflow`` first.
    """
    import keras
    import tensorflow as tf

    start = time.perf_counter()
    images, boxes = render_frames(config.seed, config.frames, workers=config.threads)
    matched = [match_anchors(anchors, b) for b in boxes]
    labels = np.stack([m[0] for m in matched])
    targets = np.stack([m[1] for m in matched])
    data_s = time.perf_counter() - start
    positives = float((labels == 1).sum(1).mean())
    log(f"data: {config.frames} frames, {sum(map(len, boxes))} leaves, {positives:.1f} positive anchors per frame, "
        f"{data_s:.1f} s")

    train_model = keras.Model(model.input, [model.output.box_encodings, model.get_layer("class_logits").output])
    steps_per_epoch = config.frames // config.batch_size
    total = steps_per_epoch * config.epochs
    warmup = min(config.warmup_steps, total // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup
    )
    optimizer = keras.optimizers.Adam(schedule)
    variables = train_model.trainable_variables
    # a mirrored leaf's centre offset changes sign along the flipped axis (encodings are ty, tx, th, tw)
    h_sign, v_sign = np.array([1, -1, 1, 1], np.float32), np.array([-1, 1, 1, 1], np.float32)
    h_perm, v_perm = _flip_permutations(feature_maps, len(anchors) // sum(s * s for s in feature_maps))

    @tf.function(jit_compile=False)
    def step(x: Any, y: Any, t: Any) -> Any:
        with tf.GradientTape() as tape:
            box_pred, logits = train_model(x, training=True)
            leaf = logits[..., 1]
            positive = tf.cast(tf.equal(y, 1), tf.float32)
            valid = tf.cast(tf.greater_equal(y, 0), tf.float32)
            n_pos = tf.maximum(tf.reduce_sum(positive), 1.0)
            p = tf.sigmoid(leaf)
            ce = tf.nn.sigmoid_cross_entropy_with_logits(positive, leaf)
            p_t = positive * p + (1 - positive) * (1 - p)
            alpha = positive * FOCAL_ALPHA + (1 - positive) * (1 - FOCAL_ALPHA)
            cls_loss = tf.reduce_sum(alpha * (1 - p_t) ** FOCAL_GAMMA * ce * valid) / n_pos
            diff = tf.abs(box_pred - t)
            huber = tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)
            box_loss = tf.reduce_sum(tf.reduce_sum(huber, -1) * positive) / n_pos
            loss = cls_loss + BOX_WEIGHT * box_loss
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return cls_loss, box_loss

    rng = np.random.default_rng([config.seed, 1])
    history = []
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(config.frames)
        flips = rng.integers(0, 4, config.frames)  # bit 0: horizontal, bit 1: vertical
        sums = np.zeros(2)
        for s in range(steps_per_epoch):
            idx = np.sort(order[s * config.batch_size : (s + 1) * config.batch_size])
            x, y, t = images[idx].copy(), labels[idx].copy(), targets[idx].copy()
            for k, flip in enumerate(flips[idx]):
                if flip & 1:
                    x[k], y[k], t[k] = x[k, :, ::-1].copy(), y[k, h_perm], t[k, h_perm] * h_sign
                if flip & 2:
                    x[k], y[k], t[k] = x[k, ::-1].copy(), y[k, v_perm], t[k, v_perm] * v_sign
            cls_loss, box_loss = step(tf.constant(x, tf.float32), tf.constant(y), tf.constant(t))
            sums += (float(cls_loss), float(box_loss))
        mean = sums / steps_per_epoch
        history.append({"epoch": epoch + 1, "cls_loss": mean[0], "box_loss": mean[1], "s": time.perf_counter() - t0})
        log(f"epoch {epoch + 1}/{config.epochs}: focal {mean[0]:.4f}  box {mean[1]:.4f}  "
            f"({history[-1]['s']:.1f} s)")
    return {"data_s": data_s, "train_s": time.perf_counter() - start - data_s, "history": history,
            "leaves": sum(map(len, boxes)), "positives_per_frame": positives, "steps": total}


def calibration_frames(seed: int, count: int) -> np.ndarray:
    """Frames for post-training int8 calibration: the training distribution (scene seed ``seed``), from
    index 10,000,000 on so that they are not training frames, and never a held-out seed."""
    images, _ = render_frames(seed, count, start=10_000_000)
    return images


def configure_tensorflow(threads: int, seed: int) -> None:
    """Threads, seeds and op determinism; call before TensorFlow runs anything."""
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def detect(interpreter: Any, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run one uint8 [320, 320, 3] image; returns boxes [n, 4] (ymin, xmin, ymax, xmax, normalized,
    clipped to [0, 1]) and scores [n], read from the outputs by name."""
    (inp,) = interpreter.get_input_details()
    interpreter.set_tensor(inp["index"], image[np.newaxis])
    interpreter.invoke()
    out = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    count = int(out["num_detections"][0])
    return np.clip(out["detection_boxes"][0, :count], 0.0, 1.0), out["detection_scores"][0, :count]


def evaluate(
    tflite_path: str | Path, seed: int = HELD_OUT_SEED, n_frames: int = 500, threads: int = 2
) -> dict[str, float]:
    """COCO box AP of a .tflite detector on synthetic frames ``0..n_frames-1`` of scene seed ``seed``.

    Frames are rendered at 640x480 and stretched to 320x320 (accel's preprocessing); boxes are scored
    in 640x480 pixels by pycocotools' COCOeval (all 101-point interpolation, maxDets 100). Returns
    ``AP`` (IoU 0.5:0.95), ``AP50``, ``AP75``, ``frames``, ``leaves`` and ``ms_per_frame`` (invoke only).
    """
    from ai_edge_litert.interpreter import Interpreter
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, truth = render_frames(seed, n_frames, workers=threads)
    interpreter = Interpreter(model_path=str(tflite_path), num_threads=threads)
    interpreter.allocate_tensors()
    width, height = FRAME_SIZE
    scale = np.array([height, width, height, width], np.float64)
    gt: dict[str, list[dict[str, Any]]] = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "leaf"}]}
    detections: list[dict[str, Any]] = []
    invoke_s = 0.0
    for image_id, (image, boxes) in enumerate(zip(images, truth, strict=True), start=1):
        gt["images"].append({"id": image_id, "width": width, "height": height})
        for y0, x0, y1, x1 in boxes.astype(np.float64) * scale:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                                      "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                      "iscrowd": 0})
        t0 = time.perf_counter()
        found, scores = detect(interpreter, image)
        invoke_s += time.perf_counter() - t0
        for (y0, x0, y1, x1), score in zip(found.astype(np.float64) * scale, scores, strict=True):
            detections.append({"image_id": image_id, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                               "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress and the summary table
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        result = coco.loadRes(detections) if detections else COCO()
        evaluator = COCOeval(coco, result, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(s) for s in evaluator.stats]
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2], "frames": float(n_frames),
            "leaves": float(len(gt["annotations"])), "ms_per_frame": 1e3 * invoke_s / max(1, n_frames)}


def describe_metrics(metrics: dict[str, float]) -> str:
    """One line: AP / AP50 / AP75 and the frame count."""
    return (f"AP {metrics['AP']:.3f}  AP50 {metrics['AP50']:.3f}  AP75 {metrics['AP75']:.3f}  "
            f"({int(metrics['frames'])} frames, {int(metrics['leaves'])} leaves, "
            f"{metrics['ms_per_frame']:.2f} ms/frame)")

