"""Datasets: read and check one, replay its images as frames, score detections with pycocotools, and
write the synthetic scenes as one.

A COCO dataset folder holds the images and an instances JSON (COCO "object detection" format): either
``DIR/annotations/instances*.json`` or a single ``DIR/*.json``; each image's ``file_name`` is looked up under
``DIR/images/``, ``DIR`` and the JSON's folder, the first that exists. A folder with no JSON but one
``data.yaml`` (or the yaml named) is an Ultralytics YOLO dataset, read into the same COCO form
(accel.dataset.yolo), so scoring is the same for both.

The evaluator is pycocotools' ``COCOeval``, the reference implementation behind every published COCO AP;
its wheels cover x86-64 and aarch64 for CPython 3.11-3.13, so a Pi installs it without a compiler.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accel.core.errors import ConfigError, DatasetError, SourceError
from accel.core.frames import Box, Frame, PixelFormat
from accel.sources import MAX_PIXELS

__all__ = ["Dataset", "DatasetError", "DatasetSource", "evaluate", "load_dataset", "write_synthetic"]


@dataclass(frozen=True)
class Dataset:
    """A checked dataset in COCO form: images in file order, categories by id, and each image's file (by
    image id). ``format`` is "coco" or "yolo"; ``annotations`` is the instances JSON or the data.yaml, and
    ``split`` the data.yaml split that was read ("" for COCO)."""

    root: Path
    annotations: Path
    images: tuple[dict[str, Any], ...]
    categories: dict[int, str]
    doc: dict[str, Any] = field(repr=False)
    files: dict[int, Path] = field(default_factory=dict, repr=False)
    format: str = "coco"
    split: str = ""

    def image_path(self, image: dict[str, Any]) -> Path:
        return self.files[int(image["id"])]

    def annotated_categories(self) -> set[int]:
        """The category ids that have ground truth (the ones AP is averaged over)."""
        return {int(a["category_id"]) for a in self.doc["annotations"]}


def _find_annotations(root: Path) -> tuple[str, Path]:
    """The annotations file of a dataset folder and its format: one COCO instances JSON (in annotations/ or
    the folder itself), else one YOLO data.yaml."""
    jsons = sorted((root / "annotations").glob("instances*.json")) if (root / "annotations").is_dir() else []
    jsons = jsons or sorted(root.glob("*.json"))
    yamls = [root / "data.yaml"] if (root / "data.yaml").is_file() else sorted([*root.glob("*.yaml"),
                                                                                  *root.glob("*.yml")])
    if len(jsons) == 1:
        return "coco", jsons[0]
    if not jsons and len(yamls) == 1:
        return "yolo", yamls[0]
    found = ", ".join(p.name for p in [*jsons, *yamls]) or "none"
    raise DatasetError(f"dataset {root}: expected one instances JSON in annotations/ or the folder itself, or one "
                       f"YOLO data.yaml, found {found}; to choose, name the file: --dataset {root / 'FILE'}")


def load_dataset(path: str | Path, split: str = "val") -> Dataset:
    """Read and check a dataset: a COCO folder or instances JSON (images beside it, in ``images/`` or where
    its ``file_name``s say), or a YOLO folder or data.yaml, of which ``split`` is read."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"dataset not found: {p}")
    if p.is_file():
        kind, ann = ("yolo" if p.suffix.lower() in (".yaml", ".yml") else "coco"), p
    else:
        kind, ann = _find_annotations(p)
    if kind == "yolo":
        from accel.dataset.yolo import read_yolo

        y = read_yolo(ann, split)
        categories = {int(c["id"]): str(c["name"]) for c in y.doc["categories"]}
        return Dataset(y.root, ann, tuple(y.doc["images"]), categories, y.doc, y.files, "yolo", split)
    return _load_coco(p.parent if p.is_file() else p, ann)


def _load_coco(root: Path, ann: Path) -> Dataset:
    if ann.parent.name == "annotations":
        root = ann.parent.parent
    try:
        doc = json.loads(ann.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {ann}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{ann} is not valid JSON (line {exc.lineno}: {exc.msg}); re-export the annotations") \
            from exc
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                    "categories")):
        raise DatasetError(f"{ann} is not a COCO instances file: expected lists 'images', 'annotations' and "
                           "'categories'")
    try:
        categories = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
        images = tuple(dict(im) for im in doc["images"])
        ids = {int(im["id"]) for im in images}
        if len(ids) != len(images):
            raise ValueError("image ids repeat")
        for a in doc["annotations"]:
            if int(a["image_id"]) not in ids or int(a["category_id"]) not in categories or len(a["bbox"]) != 4:
                raise ValueError(f"annotation {a.get('id')} refers to an unknown image or category, or has no "
                                 "[x, y, w, h] bbox")
        for im in images:
            str(im["file_name"]), int(im["width"]), int(im["height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{ann}: malformed COCO entry ({exc})") from exc
    if not images:
        raise DatasetError(f"{ann} lists no images")
    return Dataset(root, ann, images, categories, doc, _image_files(root, ann, images))


def _image_files(root: Path, ann: Path, images: tuple[dict[str, Any], ...]) -> dict[int, Path]:
    """Each image's file: its ``file_name`` under ``root/images``, ``root`` or the JSON's folder, the first
    that exists, so both ``000123.jpg`` and ``images/val/000123.jpg`` (Ultralytics' converted sets) resolve."""
    bases = list(dict.fromkeys([root / "images", root, ann.parent]))
    files: dict[int, Path] = {}
    missing: list[tuple[str, list[Path]]] = []
    for im in images:
        tried = list(dict.fromkeys(base / str(im["file_name"]) for base in bases))
        found = next((t for t in tried if t.is_file()), None)
        if found is None:
            missing.append((str(im["file_name"]), tried))
        else:
            files[int(im["id"])] = found
    if missing:
        name, tried = missing[0]
        raise DatasetError(f"dataset {root}: {len(missing)} of {len(images)} images are missing (first: {name}; "
                           f"tried {', '.join(map(str, tried))})")
    return files


class DatasetSource:
    """The dataset's images as RGB frames, in the JSON's order, with their ground truth; frame ``index``
    is the position in ``dataset.images``."""

    name = "dataset"
    format = PixelFormat.RGB

    def __init__(self, dataset: Dataset, max_pixels: int = MAX_PIXELS) -> None:
        self.dataset, self.max_pixels = dataset, max_pixels
        self._next = 0
        first = dataset.images[0]
        self.width, self.height = int(first["width"]), int(first["height"])
        self._truth: dict[int, list[Box]] = {}
        for a in dataset.doc["annotations"]:
            x, y, w, h = (float(v) for v in a["bbox"])
            self._truth.setdefault(int(a["image_id"]), []).append(
                Box(x, y, x + w, y + h, int(a["category_id"])))

    def read(self) -> Frame:
        from PIL import Image, ImageOps

        from accel.sources.files import open_picture

        i = self._next % len(self.dataset.images)
        self._next += 1
        image = self.dataset.images[i]
        t0 = time.perf_counter()
        try:
            with open_picture(self.dataset.image_path(image), self.max_pixels) as im:
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        except SourceError as exc:
            raise DatasetError(str(exc)) from None
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"cannot read {self.dataset.image_path(image)}: {exc}") from exc
        h, w = rgb.shape[:2]
        truth = tuple(Box(b.x0 / w, b.y0 / h, b.x1 / w, b.y1 / h, b.class_id)
                      for b in self._truth.get(int(image["id"]), []))
        return Frame(rgb, w, h, PixelFormat.RGB, w * 3, time.monotonic(), time.perf_counter() - t0, i, truth)

    def describe(self) -> dict[str, Any]:
        ds = self.dataset
        return {"kind": "dataset", "target": str(ds.root), "annotations": str(ds.annotations), "format": ds.format,
                **({"split": ds.split} if ds.split else {}), "images": len(ds.images),
                "categories": len(ds.categories)}

    def close(self) -> None:
        pass

    def __enter__(self) -> DatasetSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Darknet's coco.names (and VOC) spell six COCO classes differently; they are the same classes.
_ALIASES = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "pottedplant": "potted plant",
            "diningtable": "dining table", "tvmonitor": "tv", "tv monitor": "tv"}


def _name_key(name: str) -> str:
    key = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    return _ALIASES.get(key, key)


def category_map(labels: tuple[str, ...], num_classes: int | None, categories: dict[int, str],
                 used: Iterable[int] | None = None) -> dict[int, int]:
    """Model class id -> dataset category id.

    With labels, by name (ignoring case, spaces, ``_`` and ``-``; darknet's spellings such as ``motorbike``
    count as COCO's): a YOLO model's 80 classes (ids 0..79) and
    an SSD's 90-id TF label map (ids with gaps) both map onto the same COCO or YOLO dataset. Model classes
    that name no category are left out (their detections are not scored); every category with ground truth
    (``used``, default all) must be named by a label, else ``ConfigError``. Without labels, by position (class
    i is the i-th category in id order) when the counts agree."""
    if labels:
        by_name = {_name_key(name): cid for cid, name in categories.items()}
        mapping = {i: by_name[_name_key(n)] for i, n in enumerate(labels) if _name_key(n) in by_name}
        wanted = sorted(set(categories) if used is None else set(used) & set(categories))
        unmatched = [categories[c] for c in wanted if c not in set(mapping.values())]
        if not mapping:
            raise ConfigError(_unmatched(list(categories.values()), len(categories), labels))
        if unmatched:
            raise ConfigError(_unmatched(unmatched, len(wanted), labels))
        return mapping
    ids = sorted(categories)
    if num_classes is not None and num_classes != len(ids):
        raise ConfigError(f"the model has {num_classes} classes and the dataset {len(ids)} categories, and no "
                          "labels file says which is which: pass --labels")
    return dict(enumerate(ids))


def _unmatched(names: list[str], wanted: int, labels: tuple[str, ...]) -> str:
    def few(items: list[str]) -> str:
        return ", ".join(repr(x) for x in items[:5]) + (", ..." if len(items) > 5 else "")

    known = [n for n in labels if _name_key(n) not in ("", "???")]
    return (f"{len(names)} of {wanted} dataset categories name no class of the model ({few(names)}); the model's "
            f"labels are {few(known)}: give the model's own labels file (--labels), or name the dataset's "
            "classes as the model does (data.yaml names, or the JSON's categories)")


def evaluate(dataset: Dataset, detections: dict[int, list[dict[str, Any]]], classes: dict[int, int],
             threshold: float) -> dict[str, Any]:
    """COCO AP, AP50, AP75 over every image (pycocotools), and precision/recall at ``threshold`` (IoU 0.5).

    ``detections`` maps a frame index (position in ``dataset.images``) to its detections as in the result
    JSON (normalized xyxy ``box``, ``class_id``, ``score``); ``classes`` maps class ids to category ids."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise DatasetError("accuracy needs pycocotools: pip install 'accel[eval]'") from exc
    results = []
    for index, dets in detections.items():
        image = dataset.images[int(index)]
        w, h = float(image["width"]), float(image["height"])
        for d in dets:
            if d["class_id"] not in classes:
                continue
            x0, y0, x1, y1 = d["box"]
            results.append({"image_id": int(image["id"]), "category_id": classes[d["class_id"]], "score": d["score"],
                            "bbox": [x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h]})
    evaluated_ids = [int(dataset.images[int(i)]["id"]) for i in detections]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {**dataset.doc, "annotations": [dict(a, iscrowd=a.get("iscrowd", 0),
                                                          area=a.get("area", a["bbox"][2] * a["bbox"][3]))
                                                     for a in dataset.doc["annotations"]]}
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = evaluated_ids
        if results:
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    stats = ev.stats if results else np.zeros(12)
    precision, recall = _pr_at(gt, results, evaluated_ids, threshold)
    return {"AP": float(stats[0]), "AP50": float(stats[1]), "AP75": float(stats[2]), "precision": precision,
            "recall": recall, "threshold": threshold, "images": len(evaluated_ids), "evaluator": "pycocotools"}


def _pr_at(gt: Any, results: list[dict[str, Any]], image_ids: list[int], threshold: float) -> tuple[float, float]:
    """Precision and recall of the detections scoring >= threshold: greedy matching by score, same category,
    IoU >= 0.5 (pycocotools' maskUtils.iou on xywh boxes), crowd annotations ignored."""
    from pycocotools import mask as mask_utils

    tp = fp = n_gt = 0
    for image_id in image_ids:
        truth = [a for a in gt.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        n_gt += len(truth)
        dets = sorted((r for r in results if r["image_id"] == image_id and r["score"] >= threshold),
                      key=lambda r: -r["score"])
        used: set[int] = set()
        for d in dets:
            cands = [(i, a) for i, a in enumerate(truth) if a["category_id"] == d["category_id"] and i not in used]
            if cands:
                ious = mask_utils.iou([d["bbox"]], [a["bbox"] for _, a in cands], [0] * len(cands))[0]
                best = int(np.argmax(ious))
                if ious[best] >= 0.5:
                    used.add(cands[best][0])
                    tp += 1
                    continue
            fp += 1
    return (tp / (tp + fp) if tp + fp else 0.0), (tp / n_gt if n_gt else 0.0)


def write_synthetic(out: str | Path, frames: int, seed: int = 1000, size: tuple[int, int] = (640, 480)) -> Path:
    """Write ``frames`` synthetic scenes as a COCO dataset: PNG images (lossless, so every backend sees the
    pixels the scene was drawn with) and ``annotations/instances.json`` with the leaves' boxes."""
    from PIL import Image

    from accel.sources.synthetic import LABELS, render_scene

    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    w, h = size
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(frames):
        scene = render_scene(i, seed=seed, width=w, height=h)
        name = f"{i:06d}.png"
        Image.fromarray(scene.rgb).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for b in scene.boxes:
            bw, bh = (b.x1 - b.x0) * w, (b.y1 - b.y0) * h
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": b.class_id + 1,
                                "bbox": [b.x0 * w, b.y0 * h, bw, bh], "area": bw * bh, "iscrowd": 0})
    doc = {"info": {"description": f"accel synthetic scenes, seed {seed}"}, "images": images,
           "annotations": annotations,
           "categories": [{"id": i + 1, "name": name} for i, name in enumerate(LABELS)]}
    path = root / "annotations" / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path
