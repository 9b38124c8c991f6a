"""Ultralytics YOLO-format datasets, read into the COCO form that accel scores with pycocotools.

A ``data.yaml`` says where the images are and what the classes are called:

- ``path``: the dataset root, absolute or relative to the yaml's folder (or, as Ultralytics also reads it,
  to the working directory); default the yaml's folder.
- ``train``, ``val``, ``test``: a folder of images (searched recursively), a ``.txt`` file listing image
  paths, or a list of either, relative to the root.
- ``names``: the class names, a list or an ``{id: name}`` map (``nc`` alone gives ``class_0``...).

An image's labels are the ``.txt`` at its path with the last ``images`` folder replaced by ``labels``: one
object a line, ``class cx cy w h`` normalized to the image size, or ``class x1 y1 x2 y2 ...`` (a segmentation
polygon, read as its bounding box). An image with no label file, or an empty one, has no objects. Image sizes
come from the files' headers (EXIF orientation applied, as the frames are), not from decoding the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accel.core.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "YoloSplit", "label_path", "read_yolo"]

#: Image files a split folder may hold (those of Ultralytics' list that Pillow reads).
IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp")
_SPLITS = ("train", "val", "test")
_TOLERANCE = 1e-3  # label tools round: 1.0004 is the image edge, 1.2 is a pixel coordinate


@dataclass(frozen=True)
class YoloSplit:
    """One split of a YOLO dataset as a COCO instances document: images with ids from 1, categories with
    the YOLO class ids, boxes in pixels ``[x, y, w, h]``; ``files`` maps image id to its file."""

    root: Path
    doc: dict[str, Any]
    files: dict[int, Path]


def read_yolo(yaml_path: Path, split: str) -> YoloSplit:
    """Read ``split`` of the YOLO dataset that ``yaml_path`` describes. Raises ``DatasetError`` (one line)
    for a missing key, split folder or image, a label line that is not numbers, or an unknown class id."""
    spec = _read_yaml(yaml_path)
    names = _names(spec, yaml_path)
    root = _root(spec, yaml_path)
    paths = _split_images(spec, split, root, yaml_path)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    files: dict[int, Path] = {}
    for image_id, path in enumerate(paths, 1):
        w, h = _image_size(path)
        images.append({"id": image_id, "file_name": _relative(path, root), "width": w, "height": h})
        files[image_id] = path
        for cls, (x, y, bw, bh) in _labels(label_path(path), names, w, h):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cls,
                                "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
    doc = {"info": {"description": f"YOLO dataset {yaml_path}, split {split}"}, "images": images,
           "annotations": annotations, "categories": [{"id": i, "name": n} for i, n in sorted(names.items())]}
    return YoloSplit(root, doc, files)


def label_path(image: Path) -> Path:
    """The label file of an image: the last ``images`` folder in its path becomes ``labels`` (Ultralytics'
    rule), and the suffix ``.txt``; an image outside any ``images`` folder has its labels beside it."""
    parts = image.parts
    at = [i for i, part in enumerate(parts[:-1]) if part == "images"]
    if at:
        parts = (*parts[:at[-1]], "labels", *parts[at[-1] + 1:])
    return Path(*parts).with_suffix(".txt")


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}: {getattr(exc, 'problem', '')})" if mark is not None else ""
        raise DatasetError(f"{path} is not valid YAML{where}") from exc
    if not isinstance(spec, dict):
        raise DatasetError(f"{path} is not a YOLO data.yaml: expected keys 'names' and 'val' (or 'train', 'test')")
    return spec


def _names(spec: dict[str, Any], path: Path) -> dict[int, str]:
    names, nc = spec.get("names"), spec.get("nc")
    if names is None and isinstance(nc, int) and nc > 0:
        return {i: f"class_{i}" for i in range(nc)}
    if isinstance(names, list) and names:
        table = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict) and names:
        try:
            table = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: names: expected a list of names or a map of class id -> name, got keys "
                               f"{', '.join(map(str, list(names)[:5]))}") from None
        if min(table) < 0:
            raise DatasetError(f"{path}: names: class ids must be >= 0, got {min(table)}")
    else:
        raise DatasetError(f"{path}: missing key 'names' (the class names: a list, or a map of class id -> name)")
    if nc is not None and nc != len(table):
        raise DatasetError(f"{path}: nc is {nc} but names has {len(table)} entries: make them agree")
    return table


def _first_existing(tried: list[Path]) -> Path | None:
    return next((p for p in tried if p.exists()), None)


def _root(spec: dict[str, Any], path: Path) -> Path:
    given = spec.get("path")
    if not given:
        return path.parent
    p = Path(str(given)).expanduser()
    tried = [p] if p.is_absolute() else list(dict.fromkeys([path.parent / p, Path.cwd() / p]))
    found = _first_existing(tried)
    if found is None or not found.is_dir():
        raise DatasetError(f"{path}: path {given!r} (the dataset root) is not a folder (tried "
                           f"{', '.join(map(str, tried))})")
    return found.resolve()


def _split_images(spec: dict[str, Any], split: str, root: Path, path: Path) -> list[Path]:
    """The image files of a split, in order: folders sorted, list files in their order, duplicates once."""
    value = spec.get(split)
    if not value:
        present = [k for k in (*_SPLITS, "minival") if spec.get(k)]
        raise DatasetError(f"{path}: no '{split}' split (it has {', '.join(map(str, present)) or 'none'}): set "
                           "[accuracy] split to one of them, or add the key to the yaml")
    images: list[Path] = []
    for entry in value if isinstance(value, list) else [value]:
        rel = str(entry)
        tried = list(dict.fromkeys([root / rel, *([root / rel[3:]] if rel.startswith("../") else []),
                                    path.parent / rel]))
        found = _first_existing(tried)
        if found is None:
            raise DatasetError(f"{path}: {split}: {rel} does not exist (tried {', '.join(map(str, tried))})")
        if found.is_dir():
            images += sorted(p for p in found.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif found.suffix.lower() == ".txt":
            images += _listed(found, root)
        elif found.suffix.lower() in IMAGE_SUFFIXES:
            images.append(found)
        else:
            raise DatasetError(f"{path}: {split}: {found} is neither a folder of images nor a .txt list of them")
    if not images:
        raise DatasetError(f"{path}: split '{split}' ({value}) has no images ({', '.join(IMAGE_SUFFIXES)})")
    return list(dict.fromkeys(images))


def _listed(listing: Path, root: Path) -> list[Path]:
    """The images a split's .txt names, one a line: absolute, ``./``-relative to the list's folder, or
    relative to the list's folder or the root."""
    try:
        lines = [ln.strip() for ln in listing.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {listing}: {exc}") from exc
    out: list[Path] = []
    missing: list[tuple[str, list[Path]]] = []
    for line in filter(None, lines):
        p = Path(line)
        tried = [p] if p.is_absolute() else list(dict.fromkeys([listing.parent / p, root / p]))
        found = _first_existing(tried)
        if found is None:
            missing.append((line, tried))
        else:
            out.append(found)
    if missing:
        name, tried = missing[0]
        raise DatasetError(f"{listing}: {len(missing)} of {len(missing) + len(out)} listed images are missing "
                           f"(first: {name}; tried {', '.join(map(str, tried))})")
    return out


def _image_size(path: Path) -> tuple[int, int]:
    """Width and height as the frames will be: from the header, swapped for a 90-degree EXIF orientation."""
    from PIL import Image

    from accel.sources.files import open_picture

    try:
        with open_picture(path, None) as im:  # the header only: the size is checked when the image is read
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _labels(path: Path, names: dict[int, str], w: int, h: int) -> list[tuple[int, tuple[float, ...]]]:
    """An image's objects as (class id, pixel ``(x, y, w, h)``): none when the label file is absent."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    out: list[tuple[int, tuple[float, ...]]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            cls, (x0, y0, x1, y1) = _box(line, names, f"{path} line {n}")
            out.append((cls, (x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h)))
    return out


def _box(line: str, names: dict[int, str], where: str) -> tuple[int, tuple[float, float, float, float]]:
    """One label line as (class id, normalized ``(x0, y0, x1, y1)`` clipped to the image)."""
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        raise DatasetError(f"{where}: expected numbers 'class cx cy w h' (or 'class x1 y1 x2 y2 ...' for a "
                           f"polygon), got {line.strip()!r}") from None
    cls, coords = values[0], values[1:]
    if not cls.is_integer() or int(cls) not in names:
        raise DatasetError(f"{where}: class {line.split()[0]} is not in data.yaml's names (ids "
                           f"{min(names)}..{max(names)}): fix the label or the names")
    if len(coords) == 4:
        cx, cy, bw, bh = coords
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
    elif len(coords) >= 6 and len(coords) % 2 == 0:
        xs, ys = coords[0::2], coords[1::2]
        box = (min(xs), min(ys), max(xs), max(ys))
    else:
        raise DatasetError(f"{where}: expected 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...', got "
                           f"{len(values)} numbers")
    if not all(math.isfinite(v) and -_TOLERANCE <= v <= 1 + _TOLERANCE for v in coords):
        raise DatasetError(f"{where}: coordinates must be fractions of the image size (0..1), got "
                           f"{line.strip()!r}: convert pixel labels to normalized ones")
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in box)
    return int(cls), (x0, y0, x1, y1)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
