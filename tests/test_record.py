"""The typed variant record: its JSON form is what docs/results.md documents, and it reads back whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from accel.compare.comparison import compare
from accel.core.jsonform import dump, json_keys
from accel.delegates import Placement
from accel.plan.config import load_config
from accel.results.record import (
    Adapter,
    Cache,
    Measured,
    Outcome,
    RunInfo,
    SecondStart,
    StageStats,
    Startup,
    Status,
    Timings,
    VariantRecord,
)

ROOT = Path(__file__).resolve().parents[1]
_JSON_TYPES = {"string": str, "number": (int, float), "object": dict, "array": list, "boolean": bool}


def documented_variant_keys() -> dict[str, str]:
    """key -> JSON type, read from the variant table of docs/results.md."""
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8").split("## A variant", 1)[1]
    keys: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([a-z0-9_]+)`", cells[0]):
                keys[key] = cells[1]
    return keys


@pytest.fixture(scope="module")
def run_doc(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    """A real comparison on the default model: in worker processes, as users run it."""
    cfg = load_config(None, {"delegates": ["cpu-reference", "xnnpack", "null"], "pipeline.frames": 4,
                             "pipeline.seconds": 0.0, "pipeline.warmup": 1, "power.meter": "none",
                             "output.formats": [], "delegates.xnnpack.threads": [1]}, env={})
    doc, _ = compare(cfg, result_path=tmp_path_factory.mktemp("run") / "result.json")
    return doc


def test_every_key_of_a_real_run_is_documented_with_its_type(run_doc: dict) -> None:  # type: ignore[type-arg]
    documented = documented_variant_keys()
    assert {"variant", "status", "stages", "window", "partial", "cache"} <= set(documented)  # the table was read
    assert [v["status"] for v in run_doc["variants"]] == ["ok", "ok", "ok"]
    for v in run_doc["variants"]:
        for key, value in v.items():
            assert key in documented, f"{key} is written but not documented in docs/results.md"
            assert isinstance(value, _JSON_TYPES[documented[key]]), (key, value)
        for key in ("variant", "delegate", "options", "kernels", "status", "runtime", "placement", "frames_measured",
                    "wall_s", "fps", "stages", "raw_ms", "frame_end", "window", "load_ms", "first_inference_ms"):
            assert key in v, f"an ok variant lacks {key}"


def test_records_read_back_to_the_same_json(run_doc: dict) -> None:  # type: ignore[type-arg]
    fixture = json.loads((ROOT / "tests" / "report" / "fixtures" / "result_v2.json").read_text(encoding="utf-8"))
    for v in run_doc["variants"]:
        plain = json.loads(json.dumps(v))
        assert VariantRecord.from_json(plain).to_json() == plain
    for v in fixture["variants"]:  # written before pipelined execution and per-core figures: read as serial
        plain = json.loads(json.dumps(v))
        expected = {**plain, "execution": "serial"}
        if "usage" in plain:
            expected["usage"] = {**plain["usage"], "cpu_cores_busy": None}
        assert VariantRecord.from_json(plain).to_json() == expected


def test_a_record_reads_its_parts_back_typed(run_doc: dict) -> None:  # type: ignore[type-arg]
    rec = VariantRecord.from_json(run_doc["variants"][1])
    assert rec.ok and rec.status is Status.OK and rec.variant == "xnnpack threads=1"
    assert isinstance(rec.run, RunInfo) and isinstance(rec.run.placement, Placement)
    assert rec.timings is not None and rec.timings.frames_measured == 4
    # The median of the per-frame list the record also keeps (numpy's own median of the rounded ms).
    import numpy as np

    assert rec.timings.stages["inference"].p50 == pytest.approx(np.median(rec.timings.raw_ms["inference"]), abs=1e-3)
    assert rec.window is not None and rec.window.end > rec.window.start


def test_stage_statistics_are_the_hand_computed_ones() -> None:
    stats = StageStats.of([0.001, 0.002, 0.003, 0.004])  # seconds -> 1, 2, 3, 4 ms
    # Linear-interpolation percentiles of 1..4: p50 = 2.5, p90 = 3 + 0.7 = 3.7, p99 = 3 + 0.97 = 3.97.
    assert stats.mean == pytest.approx(2.5) and stats.p50 == pytest.approx(2.5)
    assert stats.p90 == pytest.approx(3.7) and stats.p99 == pytest.approx(3.97)
    assert stats.stdev == pytest.approx((5 / 3) ** 0.5)  # sample stdev: sum of squares 5, n - 1 = 3
    assert (stats.min, stats.max) == (pytest.approx(1.0), pytest.approx(4.0))
    assert dump(StageStats.of([])) == dict.fromkeys(("mean", "p50", "p90", "p99", "stdev", "min", "max"))


def test_timings_of_frames_give_fps_window_and_rounded_lists() -> None:
    t = Timings.of({"inference": [0.0101234567, 0.02]}, [0.0123456, 0.05], start=100.0, wall_s=0.05)
    assert t.frames_measured == 2 and t.fps == pytest.approx(40.0)  # 2 frames in 50 ms
    assert t.window is not None and (t.window.start, t.window.end) == (100.0, pytest.approx(100.05))
    assert t.raw_ms == {"inference": [10.1235, 20.0]} and t.frame_end == [0.01235, 0.05]


def test_a_failed_record_has_only_what_was_known() -> None:
    rec = VariantRecord("xnnpack threads=1", "xnnpack", {"threads": 1}, "numpy", "serial",
                        Outcome.failed(RuntimeError("boom"), Status.CRASHED))
    assert rec.to_json() == {"variant": "xnnpack threads=1", "delegate": "xnnpack", "options": {"threads": 1},
                             "kernels": "numpy", "execution": "serial", "status": "crashed",
                             "error": "RuntimeError: boom"}
    measured = Measured(startup=Startup(5.0, 1.0), timings=Timings.of({}, [0.5], 1.0, 0.5))
    partial = VariantRecord("v", "d", {}, "numpy", "pipelined",
                            Outcome(Status.TIMEOUT, "timed out", partial=True, measured=measured))
    out = partial.to_json()
    assert out["partial"] is True and out["load_ms"] == 5.0 and out["window"] == {"start": 1.0, "end": 1.5}
    assert VariantRecord.from_json(out) == partial


@pytest.mark.parametrize("variant", [{"variant": "v", "status": "exploded"}, {"variant": "v"}, {"variant": "v",
                                     "status": "ok", "frames_measured": "x", "wall_s": 1.0, "fps": 1.0, "stages": 5}],
                         ids=["unknown status", "no status", "wrong types"])
def test_an_unreadable_variant_is_one_config_error(variant: dict) -> None:  # type: ignore[type-arg]
    from accel.core.errors import ConfigError

    with pytest.raises(ConfigError, match="variant 'v' of the result"):
        VariantRecord.from_json(variant)


def test_parts_write_the_keys_the_old_dicts_had() -> None:
    """Hand-written from the dicts accel wrote before the record was typed (92a141b): an adapter kept every
    key, null included; a cache's second start left out what it did not measure; partial only when true."""
    adapter = Adapter("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert VariantRecord("v", "d", {}, "numpy", "serial", Outcome(Status.OK, adapter=adapter)).to_json()["adapter"] == {
        "name": "llvmpipe (LLVM 15.0.6, 256 bits)", "backend": None, "type": None, "software": False}
    cache = Cache("/c", was_empty=True, filled=False, second_start=SecondStart(load_ms=3.0, error="crashed: x"))
    out = VariantRecord("v", "d", {}, "numpy", "serial", Outcome(Status.OK), cache=cache).to_json()
    assert out["cache"] == {"path": "/c", "was_empty": True, "filled": False,
                            "second_start": {"load_ms": 3.0, "error": "crashed: x"}}
    assert "partial" not in out


def test_flat_parts_never_share_a_key() -> None:
    keys = json_keys(VariantRecord)
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
