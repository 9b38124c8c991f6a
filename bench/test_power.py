"""What power sampling costs: inference FPS of the default model (xnnpack, 1 thread) with and without a
10 Hz ``Sampler`` (plus its 1 Hz thermal samples) on a meter doing real file reads, side by side in one
run. Rounds are interleaved in blocks (off, on, on, off, ...) so drift and neighbours hit both conditions;
medians per condition. ``fps_change`` is recorded, not asserted (the target: under 1% either way).

And what attributing power costs: 8 variant windows charged from 6 minutes and from 1 hour of 10 Hz
samples; ``ratio_10x`` (time for 36,000 samples / time for 3,600) is about 10 when attribution is linear
in the samples, about 100 if it turned quadratic."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from accel.delegates import Variant, get_delegate
from accel.kernels import get_kernels
from accel.model import ModelInfo
from accel.plan.config import Config
from accel.power import PowerMeter, Reading
from accel.power.fake import ManualClock, MeterScript, ScriptedMeter
from accel.power.hwmon import HwmonMeter
from accel.power.rapl import RaplMeter
from accel.power.sampler import Sampler, attribute
from accel.results.record import Power
from accel.run.pipeline import input_spec

RATE_HZ = 10.0
BLOCK = 250       # rounds per block: ~0.3 s at ~1 ms/inference, so an "on" block sees a few 10 Hz reads
BLOCKS = 12       # blocks in all, half of them sampled
WARMUP = 50


@pytest.fixture
def file_meter(tmp_path: Path) -> Iterator[PowerMeter]:
    """The real RAPL counter when readable here, else an INA219 on a fake sysfs tree (real file reads)."""
    rapl = RaplMeter()
    if rapl.probe().ok:
        yield rapl
        return
    dev = tmp_path / "hwmon" / "hwmon2"
    dev.mkdir(parents=True)
    (dev / "name").write_text("ina219\n")
    (dev / "curr1_input").write_text("1250\n")
    (dev / "in1_input").write_text("5100\n")
    meter = HwmonMeter(name="ina219", root=str(tmp_path / "hwmon"))
    assert meter.probe().ok
    with meter:
        yield meter


@pytest.fixture
def run_once(model: ModelInfo, frames: list[Any], config: Config) -> Iterator[Callable[[], Any]]:
    """One inference of the default model on xnnpack, 1 thread; the input is prepared outside the timing."""
    spec = input_spec(model, config.pipeline.resize, config.pipeline.fill, config.model.input_range)
    tensor, _ = get_kernels("numpy").preprocess(frames[0], spec)
    runner = get_delegate("xnnpack").open(model, Variant("xnnpack", (("threads", 1),)))
    try:
        yield lambda: runner.run([tensor])
    finally:
        runner.close()


def _sampled(block: int) -> bool:
    return block % 4 in (1, 2)  # off, on, on, off: a linear drift hits both conditions equally


class _Toggle:
    """Starts a Sampler at the first round of an "on" block and stops it after the last, outside the
    timed calls; the sampler's first reading is waited for so start-up never lands in a timed round."""

    def __init__(self, meter: PowerMeter) -> None:
        self.meter = meter
        self.sampler: Sampler | None = None
        self.modes: list[bool] = []
        self.readings = 0

    def set(self, on: bool) -> None:
        if on and self.sampler is None:
            self.sampler = Sampler(self.meter, rate_hz=RATE_HZ).start()
            deadline = time.monotonic() + 1.0
            while not self.sampler.readings and time.monotonic() < deadline:
                time.sleep(0.0005)
        elif not on and self.sampler is not None:
            self.sampler.stop()
            self.readings += len(self.sampler.readings)
            assert not self.sampler.errors, self.sampler.errors
            self.sampler = None
        self.modes.append(on)

    def round(self, i: int) -> None:
        self.set(i >= WARMUP and _sampled((i - WARMUP) // BLOCK))


def _change(durations: list[float], modes: list[bool]) -> tuple[float, float, float]:
    """(FPS without, FPS with, relative FPS change) from per-round durations."""
    off = statistics.median(d for d, m in zip(durations, modes, strict=True) if not m)
    on = statistics.median(d for d, m in zip(durations, modes, strict=True) if m)
    return 1.0 / off, 1.0 / on, (1.0 / on) / (1.0 / off) - 1.0


def test_sampling_overhead(benchmark: Any, run_once: Callable[[], Any], file_meter: PowerMeter,
                           produced: Callable[..., None]) -> None:
    toggle = _Toggle(file_meter)

    def setup() -> None:
        toggle.round(len(toggle.modes))

    benchmark.group = "power sampling"
    benchmark.pedantic(run_once, setup=setup, rounds=BLOCK * BLOCKS, warmup_rounds=WARMUP, iterations=1)
    toggle.set(False)
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        pytest.skip("benchmarks disabled (--benchmark-disable): no timings to compare")
    durations = list(stats.stats.data)
    modes = toggle.modes[WARMUP:-1]
    assert len(durations) == len(modes) == BLOCK * BLOCKS
    fps_off, fps_on, change = _change(durations, modes)
    benchmark.extra_info.update({
        "meter": file_meter.name, "rate_hz": RATE_HZ, "readings": toggle.readings,
        "fps_without_sampler": fps_off, "fps_with_sampler": fps_on, "fps_change": change,
    })
    # Each run of "on" blocks starts a sampler, which reads when its thread starts and again at stop:
    # that many readings however slow the machine, the rest depends on it.
    starts = sum(1 for b in range(BLOCKS) if _sampled(b) and not (b > 0 and _sampled(b - 1)))
    assert toggle.readings >= 2 * starts
    produced(benchmark.extra_info, "fps_without_sampler", "fps_with_sampler", "fps_change")


def test_inference_power(benchmark: Any, run_once: Callable[[], Any], power: Any) -> None:
    """The default model's watts and J/frame where a meter exists ("n/a (no meter: ...)" otherwise)."""
    benchmark.group = "power sampling"
    with power.measure(benchmark):
        benchmark.pedantic(run_once, rounds=200, warmup_rounds=10, iterations=1)
    benchmark.extra_info["fps"] = 1.0 / benchmark.stats.stats.mean
    assert ("watts" in benchmark.extra_info) != ("power" in benchmark.extra_info)


SCALING_WINDOWS = 8      # variant windows charged per run, spread over it
SCALING_ROUNDS = 7       # interleaved timings per size; the fastest of each counts


def _ten_hz(n: int) -> list[Reading]:
    """``n`` readings at 10 Hz of a board whose draw wanders between 1 and 5 W."""
    return [Reading(i / RATE_HZ, watts=3.0 + 2.0 * math.sin(i / 37.0)) for i in range(n)]


def _charge_variants(samples: Sequence[Reading], meter: PowerMeter) -> list[Power]:
    """What ``accel compare`` does after each variant: attribute its window, here 8 spread over the run."""
    first, span = samples[0].t, samples[-1].t - samples[0].t
    return [attribute(samples, first + span * (k + 0.1) / SCALING_WINDOWS, first + span * (k + 0.9) / SCALING_WINDOWS,
                      frames=1000, idle_w=2.0, meter=meter) for k in range(SCALING_WINDOWS)]


def _seconds(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def test_attribution_scaling(benchmark: Any, produced: Callable[..., None]) -> None:
    """Attributing 36,000 samples (a one-hour ``--sustained`` run at 10 Hz) and 3,600 (six minutes),
    same meter rate, same 8 windows. The benchmark times the hour; ``ratio_10x`` comes from the fastest
    of interleaved timings of both sizes, so a neighbour that slows one round does not skew it."""
    meter = ScriptedMeter(watts=lambda t: 0.0, clock=ManualClock(), script=MeterScript(name="scripted"))
    minutes, hour = _ten_hz(3_600), _ten_hz(36_000)
    benchmark.group = "power attribution"
    charged = benchmark.pedantic(_charge_variants, args=(hour, meter), rounds=5, warmup_rounds=1, iterations=1)
    assert len(charged) == SCALING_WINDOWS and all(block.energy_j is not None for block in charged)
    small, large = [], []
    for _ in range(SCALING_ROUNDS):
        small.append(_seconds(lambda: _charge_variants(minutes, meter)))
        large.append(_seconds(lambda: _charge_variants(hour, meter)))
    benchmark.extra_info.update({
        "rate_hz": RATE_HZ, "windows": SCALING_WINDOWS,
        "seconds_3600": min(small), "seconds_36000": min(large),
        "ratio_10x": min(large) / min(small),
        "samples_per_s": len(hour) * SCALING_WINDOWS / min(large),
    })
    produced(benchmark.extra_info, "seconds_3600", "seconds_36000", "ratio_10x", "samples_per_s")
