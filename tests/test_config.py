from __future__ import annotations

from pathlib import Path

import pytest

from accel.core.errors import ConfigError
from accel.plan.config import load_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "accel.toml"
    p.write_text(text)
    return p


def test_example_file_is_valid_and_matches_defaults(tmp_path: Path) -> None:
    example = load_config(REPO / "accel.toml", env={})
    defaults = load_config(write(tmp_path, ""), env={})
    assert example.pipeline == defaults.pipeline
    assert example.model == defaults.model
    assert example.output == defaults.output
    assert list(example.delegates) == ["cpu-reference", "xnnpack"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[pipeline]\nframez = 3\n", "pipeline.framez (line 2): unknown key; known: source",
                     id="unknown-key"),
        pytest.param("[pipeline]\n\nframes = \"4x\"\n", "pipeline.frames (line 3): expected int, got '4x'",
                     id="wrong-type"),
        pytest.param("[pipeline]\nframes = 0\n", "pipeline.frames (line 2): expected 1..10000000", id="impossible"),
        pytest.param("[pipeline]\nresize = \"crop\"\n", "expected one of auto, stretch, letterbox, got 'crop'",
                     id="enum"),
        pytest.param("[pipelines]\n", "pipelines (line 1): unknown section", id="unknown-section"),
        pytest.param("[delegates.xnnpack]\nenabled = \"yes\"\n", "delegates.xnnpack.enabled (line 2): expected "
                     "true or false", id="enabled-type"),
        pytest.param("[pipeline\n", "not valid TOML", id="syntax"),
        pytest.param("[pipeline]\nsource_fps = -5\n", "pipeline.source_fps (line 2): expected frames per second "
                     ">= 0, at most 10000 (0: the source's own rate), got -5.0", id="negative-source-fps"),
        pytest.param("[pipeline]\nsource_fps = \"fast\"\n", "pipeline.source_fps (line 2): expected float",
                     id="source-fps-type"),
        pytest.param("[pipeline]\nsource_fps = inf\n", "pipeline.source_fps (line 2): expected a finite number",
                     id="infinite-source-fps"),
        pytest.param("[pipeline]\nbuffer_count = 0\n", "pipeline.buffer_count (line 2): expected 1..256, got 0",
                     id="no-buffers"),
        pytest.param("[pipeline]\nbuffer_count = 2.5\n", "pipeline.buffer_count (line 2): expected int",
                     id="fractional-buffers"),
    ],
)
def test_bad_config_names_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={})
    assert expected in str(err.value)
    assert err.value.exit_code == 2


def test_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\nframes = 7\nseconds = 1.5\nwarmup = 3\n")
    cfg = load_config(path, {"pipeline.frames": 9}, env={"ACCEL_FRAMES": "8", "ACCEL_SECONDS": "0.5"})
    assert cfg.pipeline.frames == 9  # CLI
    assert cfg.pipeline.seconds == 0.5  # environment
    assert cfg.pipeline.warmup == 3  # file
    assert cfg.pipeline.fill == 114  # default
    assert cfg.origins["pipeline.frames"] == "option --frames"


def test_flags_env_and_file_build_one_frozen_config(tmp_path: Path) -> None:
    """The command line's own parser and overrides(), the environment and a file, merged once: flags win over
    the environment, the environment over the file; --threads reaches only the enabled delegates it names;
    and the result cannot be changed afterwards, not even inside a delegate's table."""
    import dataclasses

    from accel.cli.args import parser
    from accel.plan.flags import FLAG_OF, overrides

    path = write(tmp_path, "[pipeline]\nframes = 7\nseconds = 1.5\nkernels = [\"numpy\"]\n"
                           "[delegates.xnnpack]\nthreads = [4]\n[delegates.litert-cpu]\nenabled = false\n")
    args = parser().parse_args(["compare", "--frames", "9", "--threads", "1,2", "--threshold", "0.6"])
    cfg = load_config(path, overrides(args), env={"ACCEL_FRAMES": "8", "ACCEL_SECONDS": "0.5"}, flags=FLAG_OF)
    assert (cfg.pipeline.frames, cfg.pipeline.seconds, cfg.pipeline.kernels) == (9, 0.5, ("numpy",))
    assert cfg.pipeline.score_threshold == 0.6 and cfg.origins["pipeline.score_threshold"] == "option --threshold"
    assert cfg.delegates["xnnpack"] == {"threads": (1, 2)} and "litert-cpu" not in cfg.delegates
    assert cfg.origins["delegates.xnnpack.threads"] == "option --threads"
    assert "delegates.litert-cpu.threads" not in cfg.origins  # not enabled: the flag set nothing there
    assert cfg.to_json()["delegates"]["xnnpack"] == {"threads": [1, 2]}  # JSON as before: lists
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.pipeline.frames = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.delegates["xnnpack"]["threads"] = [3]  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.origins["pipeline.frames"] = "elsewhere"  # type: ignore[index]


def test_env_bad_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment ACCEL_FRAMES: expected int"):
        load_config(write(tmp_path, ""), env={"ACCEL_FRAMES": "many"})


def test_source_pacing_keys_from_file_environment_and_command_line(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, ""), env={})
    assert (defaults.pipeline.source_fps, defaults.pipeline.buffer_count) == (0.0, 4)
    path = write(tmp_path, "[pipeline]\nsource_fps = 10\nbuffer_count = 2\n")
    assert load_config(path, env={}).pipeline.source_fps == 10.0
    from_env = load_config(path, env={"ACCEL_SOURCE_FPS": "24"})
    assert from_env.pipeline.source_fps == 24.0 and from_env.origins["pipeline.source_fps"] == "environment " \
        "ACCEL_SOURCE_FPS"
    cli = load_config(path, {"pipeline.source_fps": 12.5}, env={"ACCEL_SOURCE_FPS": "24"})
    assert (cli.pipeline.source_fps, cli.pipeline.buffer_count) == (12.5, 2)
    with pytest.raises(ConfigError, match="environment ACCEL_SOURCE_FPS: expected float, got 'quick'"):
        load_config(path, env={"ACCEL_SOURCE_FPS": "quick"})
    with pytest.raises(ConfigError, match="environment ACCEL_SOURCE_FPS: expected frames per second >= 0"):
        load_config(path, env={"ACCEL_SOURCE_FPS": "-1"})
    with pytest.raises(ConfigError, match="option --source-fps: expected frames per second >= 0"):
        load_config(path, {"pipeline.source_fps": -3.0}, env={})


def test_delegate_toggles_and_selection(tmp_path: Path) -> None:
    path = write(tmp_path, "[delegates.xnnpack]\nenabled = false\n[delegates.null]\nenabled = true\n")
    assert list(load_config(path, env={}).delegates) == ["cpu-reference", "null"]
    only = load_config(path, {"delegates": ["xnnpack"]}, env={})
    assert list(only.delegates) == ["xnnpack"]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})
