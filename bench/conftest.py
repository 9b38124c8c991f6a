"""Benchmarks read the same accel.toml as `accel compare` (./accel.toml, $ACCEL_CONFIG, or defaults):
one inference benchmark per enabled delegate variant, one pre/post-processing benchmark per kernel set.
Models and frames load in fixtures, never inside the timed call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accel.compare import plan
from accel.config import Config, load_config
from accel.model import ModelInfo, default_model_path, load_model


def _config() -> Config:
    return load_config()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cfg = _config()
    if "variant" in metafunc.fixturenames:
        runs = plan(cfg).runs
        variants = list(dict.fromkeys(v for v, _ in runs))
        metafunc.parametrize("variant", variants, ids=[v.label.replace(" ", "-") for v in variants])
    if "kernels_name" in metafunc.fixturenames:
        names = cfg.pipeline["kernels"]
        metafunc.parametrize("kernels_name", names, ids=names)


@pytest.fixture(scope="session")
def config() -> Config:
    return _config()


@pytest.fixture(scope="session")
def model(config: Config) -> ModelInfo:
    path = Path(config.model["path"]) if config.model["path"] else default_model_path()
    return load_model(path, config.model["family"])


@pytest.fixture(scope="session")
def frames(config: Config, model: ModelInfo) -> list[Any]:
    from accel.compare import _capture, _source_spec

    spec = _source_spec(config, model)
    return _capture(spec, min(20, config.pipeline["frames"]))[0]
