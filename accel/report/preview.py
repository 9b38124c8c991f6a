"""The detections preview: a few replayed frames saved as PNG beside result.json, and each variant's boxes
drawn on them (Pillow)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accel.report import figures as f

_THUMB_W = 240


def save_frames(frames: Sequence[Any], directory: Path, count: int = 4) -> dict[str, str]:
    """Save the first ``count`` frames (``accel.core.frames.Frame``, any pixel format and row stride) as RGB PNGs
    under ``directory/frames/``; return ``{"<frame index>": "frames/<index>.png"}`` for
    ``source.saved_frames`` (paths relative to ``directory``, the result.json's folder)."""
    from PIL import Image

    from accel.kernels.numpy_ref import to_rgb

    folder = Path(directory) / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, str] = {}
    for frame in list(frames)[:max(count, 0)]:
        rel = f"frames/{frame.index}.png"
        Image.fromarray(to_rgb(frame), "RGB").save(Path(directory) / rel)
        saved[str(frame.index)] = rel
    return saved


def strips(run: f.Run, base: Path | None) -> tuple[list[tuple[str, bytes]], str | None]:
    """One PNG strip per variant that ran (the saved frames with its boxes), and a note when some or all
    frames cannot be shown."""
    from PIL import Image

    saved = f.get(run.doc, "source", "saved_frames") or {}
    if not saved:
        return [], "n/a: this run saved no frames (source.saved_frames is absent)"
    if base is None:
        return [], "n/a: the result file's folder is unknown, so its saved frames cannot be found"
    images: list[tuple[str, Image.Image]] = []
    missing = []
    for index, rel in sorted(saved.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0):
        path = base / rel
        try:
            with Image.open(path) as im:
                images.append((str(index), im.convert("RGB")))
        except OSError:
            missing.append(str(path))
    note = f"n/a: missing or unreadable: {', '.join(missing)}" if missing else None
    if not images:
        return [], note
    ran = [r for r in run.records if r.ok]  # colours follow the charts' order
    return [(f.label(r), _strip(images, (r.run.detections if r.run is not None else None) or {}, i))
            for i, r in enumerate(ran)], note


def _strip(images: list[tuple[str, Any]], detections: dict[str, Any], colour_index: int) -> bytes:
    from PIL import Image, ImageDraw

    thumbs = []
    for index, im in images:
        scale = _THUMB_W / im.width
        thumb = im.resize((_THUMB_W, max(1, round(im.height * scale))), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(thumb)
        w, h = thumb.size
        dets = detections.get(index)
        for rank, det in enumerate(dets or []):
            if "box" not in det:  # a classifier's top-k: its answers as text lines
                text = f"{det.get('label') or det.get('class_id')} {det.get('score', 0):.2f}"
                draw.text((4, 4 + 12 * rank), text, fill=_PALETTE[colour_index % len(_PALETTE)])
                continue
            x0, y0, x1, y1 = det["box"]
            box = (x0 * w, y0 * h, max(x0 * w, x1 * w), max(y0 * h, y1 * h))
            draw.rectangle(box, outline=_PALETTE[colour_index % len(_PALETTE)], width=2)
            label = f"{det.get('label') or det.get('class_id')} {det.get('score', 0):.2f}"
            draw.text((box[0] + 2, box[1] + 1), label, fill=(255, 255, 255))
        if dets is None:
            draw.text((4, 4), "no detections recorded for this frame", fill=(255, 64, 64))
        draw.text((4, h - 14), f"frame {index}", fill=(255, 255, 0))
        thumbs.append(thumb)
    gap = 4
    strip = Image.new("RGB", (sum(t.width for t in thumbs) + gap * (len(thumbs) - 1),
                              max(t.height for t in thumbs)), (255, 255, 255))
    x = 0
    for t in thumbs:
        strip.paste(t, (x, 0))
        x += t.width + gap
    buf = io.BytesIO()
    strip.save(buf, format="PNG")
    return buf.getvalue()


_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
