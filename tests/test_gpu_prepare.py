"""litert-gpu's ``prepare`` option: a graph whose shapes are computed at run time (a dynamic-batch export) is
folded before it runs on the GPU, the record says which file ran and how it was made, and the answers agree
with cpu-reference on the original model; with ``prepare = "none"`` the failure explains itself.

GPU runs go through ``python -m accel compare`` in a child process, as accel runs every GPU variant (Mesa's
lavapipe here; skipped when litert-gpu has no adapter)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from accel.core.errors import ConfigError
from accel.delegates import get_delegate


def test_prepare_none_is_in_the_label_and_auto_is_the_default() -> None:
    gpu = get_delegate("litert-gpu")
    assert [v.label for v in gpu.variants({})] == ["litert-gpu precision=fp16"]
    assert [v.label for v in gpu.variants({"prepare": "none"})] == ["litert-gpu precision=fp16 prepare=none"]
    with pytest.raises(ConfigError, match='delegates.litert-gpu.prepare: expected "auto" or "none"'):
        gpu.variants({"prepare": "fold"})


@pytest.fixture(scope="module")
def gpu_adapter() -> str:
    found = get_delegate("litert-gpu").probe()
    if not found.ok:
        pytest.skip(f"litert-gpu: {found.reason}")
    return found.reason


def _compare(folder: Path, model: Path, *extra: str, config: str = "", rc: int = 0) -> dict:  # type: ignore[type-arg]
    (folder / "accel.toml").write_text(config)
    out = folder / "r.json"
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--model", str(model), "--delegates",
                           "cpu-reference,litert-gpu", "--frames", "3", "--seconds", "0", "--warmup", "1",
                           "--json", str(out), *extra], cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == rc, proc.stderr[-3000:]
    return {v["delegate"]: v for v in json.loads(out.read_text())["variants"]}


def _check_prepared(gpu: dict, shape_ops: int) -> None:  # type: ignore[type-arg]
    assert gpu["status"] == "ok", gpu.get("error")
    assert "is_fully_accelerated=True" in gpu["placement"]["detail"]
    assert gpu["placement"]["delegated_ops"] == gpu["placement"]["total_ops"]
    assert f"SHAPE {shape_ops}" in gpu["model_ran"]["why"] and "folded" in gpu["model_ran"]["why"]
    assert Path(gpu["model_ran"]["path"]).is_file()


@pytest.mark.gpu
def test_st_ssd_runs_on_the_gpu_once_folded(gpu_adapter: str, shared_dir: Path, tmp_path: Path) -> None:
    model = shared_dir / "models" / "st_ssd_mobilenet_v2_fpnlite_035_256_int8_person_nopp.tflite"
    # beagles.jpg holds no person above the default 0.3: 0.1 gives the person head real candidates to agree on
    variants = _compare(tmp_path, model, "--source", f"image:{shared_dir / 'images' / 'beagles.jpg'}",
                        "--threshold", "0.1")
    _check_prepared(variants["litert-gpu"], 15)
    agreement = variants["litert-gpu"]["agreement"]
    assert agreement["reference"].startswith("cpu-reference") and agreement["score"] >= 0.95
    assert all(len(d) > 0 for d in variants["cpu-reference"]["detections"].values())


@pytest.mark.gpu
@pytest.mark.parametrize("counts", [True, False], ids=["reshape-to-counts", "reshape-to-minus-1"])
def test_a_dynamic_batch_export_runs_folded_and_fails_explained_unfolded(gpu_adapter: str, tmp_path: Path,
                                                                         counts: bool) -> None:
    if importlib.util.find_spec("tensorflow") is None:  # not imported here: see dynamic_batch.build_in_child
        pytest.skip("building the dynamic-batch detector needs TensorFlow (pip install 'accel[build]')")
    sys.path.insert(0, str(Path(__file__).parent / "model"))
    from dynamic_batch import build_in_child

    model = build_in_child(tmp_path / "dynamic_batch_ssd.tflite", counts=counts)
    folded = _compare(tmp_path, model, "--threshold", "0.1")
    _check_prepared(folded["litert-gpu"], 2)
    assert folded["litert-gpu"]["agreement"]["score"] >= 0.9  # random weights: many near-equal scores
    # exit 1: a variant failed (README's exit codes)
    as_is = _compare(tmp_path, model, config='[delegates.litert-gpu]\nprepare = "none"\n', rc=1)["litert-gpu"]
    assert as_is["status"] == "failed" and as_is["variant"].endswith("prepare=none")
    assert "Failed to modify graph with delegate" in as_is["error"]
    assert "GPU readiness: 2 SHAPE ops compute shapes at run time" in as_is["error"]
    assert 'prepare = "auto"' in as_is["error"]


def test_an_unwritable_cache_is_one_delegate_error(tmp_path: Path) -> None:
    from accel.core.errors import DelegateError
    from accel.delegates.gpu import prepare_model
    from accel.model import default_model_path, load_model

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(DelegateError, match=r"litert-gpu: cannot write its prepared model .*make .* writable"):
        prepare_model(load_model(default_model_path()), blocked / "cache")
