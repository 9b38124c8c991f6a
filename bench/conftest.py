"""Benchmarks read the same accel.toml as `accel compare` (./accel.toml, $ACCEL_CONFIG, or defaults):
one inference benchmark per enabled delegate variant, one pre/post-processing benchmark per kernel set.
Models and frames load in fixtures, never inside the timed call.

Every benchmark JSON's machine_info gains an ``accel`` entry (Pi model, governor, throttled state, power
meter found or why none); the ``power`` fixture records W and J/frame in ``extra_info`` when a meter is
present ("n/a (no meter: ...)" otherwise).

Benchmarks record, tests assert: ratios and derived figures (FPS, overheads, scaling) go into
``extra_info`` and a benchmark asserts only that they were produced (``produced`` below), never how big
they are, since a neighbour on a shared machine moves them. Whether a run got slower than an earlier one is
for ``tools/bench_compare.py OLD.json NEW.json`` or pytest-benchmark's ``--benchmark-compare-fail``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from accel.model import ModelInfo, default_model_path, load_model
from accel.plan.config import Config, load_config
from accel.plan.job import check_backends
from accel.power import PowerMeter


def pytest_configure(config: pytest.Config) -> None:
    """The long benches (``@pytest.mark.long``) run only when a ``-m`` expression asks for them."""
    if not config.option.markexpr:
        config.option.markexpr = "not long"


def _config() -> Config:
    return load_config()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cfg = _config()
    if "variant" in metafunc.fixturenames:
        runs = check_backends(cfg).runs
        variants = list(dict.fromkeys(run[0] for run in runs))
        metafunc.parametrize("variant", variants, ids=[v.label.replace(" ", "-") for v in variants])
    if "kernels_name" in metafunc.fixturenames:
        names = cfg.pipeline.kernels
        metafunc.parametrize("kernels_name", names, ids=names)


@pytest.fixture(scope="session")
def config() -> Config:
    return _config()


@pytest.fixture(scope="session")
def model(config: Config) -> ModelInfo:
    path = Path(config.model.path) if config.model.path else default_model_path()
    return load_model(path, config.model.family)


@pytest.fixture(scope="session")
def frames(config: Config, model: ModelInfo) -> list[Any]:
    from accel.compare.comparison import capture_frames
    from accel.plan.settings import source_spec

    return capture_frames(source_spec(config, model), min(20, config.pipeline.frames))[0]


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """What a benchmark's figures depend on beyond the CPU: the board, the governor, throttling, the meter."""
    from accel.host.machine import machine_info as accel_machine
    from accel.power import find_meter
    from accel.power.thermal import read_throttled

    facts = accel_machine()
    meter, detail = find_meter()
    if meter is not None:
        meter.close()
    throttled = read_throttled()
    machine_info["accel"] = {
        "pi_model": facts["board"],
        "governor": facts["governor"],
        "throttled": hex(throttled) if throttled is not None else None,
        "meter": meter.name if meter is not None else detail,
    }


class PowerRecorder:
    """Records a benchmark's power: ``with power.measure(benchmark): benchmark.pedantic(...)`` samples the
    meter at ``rate_hz`` around the run and puts ``watts`` (mean over the run, warm-up rounds included) and
    ``j_per_frame`` (watts x mean seconds per call / frames per call) into ``benchmark.extra_info``."""

    def __init__(self, meter: PowerMeter | None, why: str, rate_hz: float = 10.0) -> None:
        self.meter, self.why, self.rate_hz = meter, why, rate_hz

    @contextmanager
    def measure(self, benchmark: Any, frames_per_call: int = 1) -> Iterator[None]:
        from accel.power.sampler import Sampler, mean_watts

        if self.meter is None:
            benchmark.extra_info["power"] = f"n/a ({self.why})"
            yield
            return
        with Sampler(self.meter, rate_hz=self.rate_hz, thermal=None) as sampler:
            t0 = time.monotonic()
            yield
            t1 = time.monotonic()
        watts = mean_watts(sampler.readings, t0, t1)
        stats = getattr(benchmark, "stats", None)
        mean = stats.stats.mean if stats is not None else None
        benchmark.extra_info.update({
            "power_meter": self.meter.name,
            "power_estimated": self.meter.estimated,
            "watts": watts,
            "j_per_frame": watts * mean / frames_per_call if watts is not None and mean else None,
        })


@pytest.fixture(scope="session")
def power() -> Iterator[PowerRecorder]:
    """The first real meter here (``meter = "auto"``), wrapped to record W and J/frame per benchmark."""
    from accel.power import find_meter

    meter, detail = find_meter()
    try:
        yield PowerRecorder(meter, detail)
    finally:
        if meter is not None:
            meter.close()


def _check_produced(info: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = info.get(key)
        assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value), \
            f"extra_info[{key!r}] should be a finite number, got {value!r}"


@pytest.fixture
def produced() -> Callable[..., None]:
    """``produced(benchmark.extra_info, "fps", ...)``: each figure is there and a finite number."""
    return _check_produced
