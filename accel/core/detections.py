"""Post-processing results: detections (normalized xyxy boxes) and classifications."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one frame, arrays of equal length ``n``.

    ``boxes``: float32 (n, 4) normalized x0, y0, x1, y1 (fractions of the original frame);
    ``class_ids``: int32 (n,); ``scores``: float32 (n,); ``labels``: names when a labels file was given.
    """

    boxes: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.int32), np.zeros((0,), np.float32))

    def to_json(self) -> list[dict[str, object]]:
        """Plain lists for the result document."""
        out: list[dict[str, object]] = []
        for i in range(len(self)):
            item: dict[str, object] = {
                "box": [round(float(v), 5) for v in self.boxes[i]],
                "class_id": int(self.class_ids[i]),
                "score": round(float(self.scores[i]), 5),
            }
            if self.labels:
                item["label"] = self.labels[i]
            out.append(item)
        return out


@dataclass(frozen=True, eq=False)
class Classification:
    """Top-k classes of one frame, best first."""

    class_ids: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_json(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for i in range(len(self)):
            item: dict[str, object] = {"class_id": int(self.class_ids[i]), "score": round(float(self.scores[i]), 5)}
            if self.labels:
                item["label"] = self.labels[i]
            out.append(item)
        return out
