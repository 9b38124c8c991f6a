"""Settings made from the config: the source a live run paces and a replay captures unpaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from accel.core.errors import ConfigError
from accel.model import ModelInfo, default_model_path, load_model
from accel.plan.config import Config, load_config
from accel.plan.settings import Settings, source_spec


@pytest.fixture(scope="module")
def model() -> ModelInfo:
    return load_model(default_model_path())


def _config(tmp_path: Path, text: str = "", **overrides: object) -> Config:
    path = tmp_path / "accel.toml"
    path.write_text(text)
    return load_config(path, {f"pipeline.{k}": v for k, v in overrides.items()}, env={})


@pytest.mark.parametrize(
    ("source", "source_fps", "fps"),
    [("synthetic", 0.0, 0.0), ("synthetic", 15.0, 15.0), ("video:clip.mp4", 0.0, 0.0),
     ("image:photos/", 5.0, 5.0), ("picamera2", 0.0, None), ("v4l2:0", 0.0, None)],
    ids=["synthetic-own-rate", "synthetic-15", "video-own-rate", "images-5", "picamera2", "v4l2"],
)
def test_live_runs_pace_the_source_and_cameras_pace_themselves(tmp_path: Path, model: ModelInfo, source: str,
                                                               source_fps: float, fps: float | None) -> None:
    config = _config(tmp_path, "[pipeline]\nbuffer_count = 3\n", live=True, source=source, source_fps=source_fps)
    spec = source_spec(config, model)
    assert (spec.fps, spec.buffer_count) == (fps, 3)
    assert Settings.from_config(config, model).live_source == spec


@pytest.mark.parametrize("source_fps", [0.0, 25.0])
def test_replay_capture_is_never_paced(tmp_path: Path, model: ModelInfo, source_fps: float) -> None:
    config = _config(tmp_path, source_fps=source_fps)
    assert source_spec(config, model).fps is None
    assert Settings.from_config(config, model).live_source is None


def test_a_rate_for_a_camera_is_an_error_naming_the_key(tmp_path: Path, model: ModelInfo) -> None:
    config = _config(tmp_path, live=True, source="picamera2", source_fps=15.0)
    with pytest.raises(ConfigError, match=r"option --source-fps: picamera2 cameras deliver at "
                                          r"their sensor's own rate .* got source_fps = 15: set it to 0"):
        source_spec(config, model)
