"""The litert-cpu delegate (LiteRT CompiledModel) gives the classic Interpreter's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accel.delegates import Variant, get_delegate
from accel.model import default_model_path, load_model


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_model_matches_interpreter(threads: int) -> None:
    model = load_model(default_model_path())
    x = np.random.default_rng(3).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
    ref = get_delegate("cpu-reference").open(model, Variant("cpu-reference", (("threads", 1),)))
    cm = get_delegate("litert-cpu").open(model, Variant("litert-cpu", (("threads", threads),)))
    try:
        want, got = ref.run([x]), cm.run([x])
        assert [o.shape for o in got] == [t.shape for t in model.outputs]  # graph order, not signature order
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        assert cm.last_invoke_s > 0
    finally:
        ref.close()
        cm.close()


def test_unknown_kernel_mode_names_the_key() -> None:
    from accel.core.errors import ConfigError

    with pytest.raises(ConfigError, match="delegates.litert-cpu.kernel_mode: expected one of xnnpack"):
        get_delegate("litert-cpu").variants({"kernel_mode": "fast"})


def test_weight_cache_second_start_is_measured_in_a_fresh_process(tmp_path: Path) -> None:
    """With weight_cache set, compare times a second start once the cache file exists; the cache was
    empty before the first start and filled after it."""
    import json

    from accel.compare.comparison import compare
    from accel.plan.config import load_config

    cache = tmp_path / "cache"
    config = tmp_path / "accel.toml"
    config.write_text(f'[delegates.litert-cpu]\nenabled = true\nthreads = [1]\nweight_cache = "{cache}"\n')
    cfg = load_config(config, {"pipeline.frames": 3, "pipeline.seconds": 0.0, "pipeline.warmup": 0}, env={})
    doc, path = compare(cfg, result_path=tmp_path / "r.json")
    v = next(v for v in json.loads(path.read_text())["variants"] if v["delegate"] == "litert-cpu")
    assert v["status"] == "ok"
    assert v["cache"]["was_empty"] is True and v["cache"]["filled"] is True
    files = list(cache.iterdir())
    assert [str(f) for f in files] == [v["cache"]["path"]] and files[0].stat().st_size > 0
    second = v["cache"]["second_start"]
    assert second["load_ms"] > 0 and second["first_inference_ms"] > 0 and "error" not in second


def test_weight_cache_must_be_a_path() -> None:
    from accel.core.errors import ConfigError

    with pytest.raises(ConfigError, match="delegates.litert-cpu.weight_cache: expected a folder path"):
        get_delegate("litert-cpu").variants({"threads": [1], "weight_cache": 3})
