"""Fixtures shared by the source tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

VideoMaker = Callable[[Sequence[tuple[int, int, int]], float, tuple[int, int]], Path]


@pytest.fixture
def make_video(tmp_path: Path) -> VideoMaker:
    """``make_video(colours_bgr, fps, (width, height))``: an MJPG .avi of one flat frame per colour, written
    with OpenCV at ``fps`` (the test is skipped without OpenCV)."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV is the video decoder ('accel[video]')")

    def make(colours: Sequence[tuple[int, int, int]], fps: float, size: tuple[int, int]) -> Path:
        path = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        assert writer.isOpened()
        for colour in colours:
            writer.write(np.full((size[1], size[0], 3), colour, np.uint8))
        writer.release()
        return path

    return make
