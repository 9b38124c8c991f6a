"""The CLI as a user meets it: bad input gets one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from accel.model import default_model_path


def accel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "accel", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("accel: error: ")
    return lines[0]


def _setup(tmp: Path, case: str) -> list[str]:
    model = default_model_path().read_bytes()
    if case == "truncated-model":
        (tmp / "cut.tflite").write_bytes(model[: len(model) // 3])
        return ["compare", "--model", "cut.tflite"]
    if case == "text-as-model":
        (tmp / "notes.tflite").write_text("these are my notes, not a model\n")
        return ["compare", "--model", "notes.tflite"]
    if case == "missing-model":
        return ["compare", "--model", "effdet0.tflite"]
    if case == "bad-config-key":
        (tmp / "accel.toml").write_text("[pipeline]\nframes = 10\nthreads = 4\n")
        return ["compare"]
    if case == "bad-delegate-option":
        (tmp / "accel.toml").write_text("[delegates.xnnpack]\nthreads = [\"4x\"]\n")
        return ["compare"]
    if case == "unknown-delegate":
        return ["compare", "--delegates", "xnnpack,warp-drive"]
    if case == "unreadable-image-folder":
        (tmp / "photos").mkdir()
        (tmp / "photos" / "readme.txt").write_text("no pictures here")
        return ["compare", "--source", "image:photos"]
    if case == "missing-image-folder":
        return ["compare", "--source", "image:nowhere"]
    if case == "unknown-source":
        return ["compare", "--source", "webcam"]
    if case == "negative-source-fps":
        return ["compare", "--live", "--source-fps", "-1"]
    if case == "camera-source-fps":
        return ["compare", "--live", "--source", "picamera2", "--source-fps", "15"]
    if case == "inspect-text":
        (tmp / "x.tflite").write_text("hello")
        return ["inspect", "x.tflite"]
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("truncated-model", "truncated"),
        ("text-as-model", "is not a TFLite model"),
        ("missing-model", "model file not found: effdet0.tflite"),
        ("bad-config-key", "accel.toml: pipeline.threads (line 3): unknown key"),
        ("bad-delegate-option", "accel.toml: delegates.xnnpack.threads (line 2): expected a list of integers"),
        ("unknown-delegate", "option --delegates: unknown delegate 'warp-drive'"),
        ("unreadable-image-folder", "photos"),
        ("missing-image-folder", "nowhere"),
        ("unknown-source", "webcam"),
        ("inspect-text", "is not a TFLite model"),
        ("negative-source-fps", "option --source-fps: expected frames per second >= 0"),
        ("camera-source-fps", "option --source-fps: picamera2 cameras deliver at their sensor's"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tmp_path: Path, case: str, says: str) -> None:
    proc = accel(*_setup(tmp_path, case), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert says in one_error_line(proc)
    assert not (tmp_path / "results").exists()  # nothing half-written for a run that never started


def test_compare_writes_result_and_table(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = accel("compare", "--frames", "5", "--seconds", "0", "--warmup", "1", "--threads", "1",
                 "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 3 and doc["complete"] is True
    assert [v["variant"] for v in doc["variants"]] == ["cpu-reference threads=1", "xnnpack threads=1"]
    for v in doc["variants"]:
        assert v["status"] == "ok" and v["frames_measured"] == 5 and v["fps"] > 0
        assert v["runtime"].startswith("ai-edge-litert")
        assert len(v["raw_ms"]["inference"]) == 5
    assert doc["model"]["sha256"] and doc["machine"]["python"]
    assert "xnnpack threads=1" in proc.stdout and "infer ms" in proc.stdout


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    """--dry-run: every (variant x kernel set x execution) the flags ask for, counted by hand, and a backend
    that cannot run here with why; exit 0, and no result folder is made."""
    from accel.delegates import get_delegate

    if get_delegate("gpu-delegate").probe().ok:
        pytest.skip("the GPU delegate's library is installed here: no backend to skip")
    proc = accel("compare", "--dry-run", "--delegates", "null,xnnpack,gpu-delegate", "--threads", "1,2",
                 "--kernels", "numpy", "--execution", "serial,pipelined", "--json", "out/r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    jobs = [ln.split(". ", 1)[1] for ln in lines if ln.strip()[:1].isdigit()]
    # null (1 variant) + xnnpack (threads 1 and 2) = 3 variants, x 1 kernel set x 2 executions
    assert len(jobs) == 6 and lines[2] == "jobs (6):"
    assert "model default_detector.tflite | variant xnnpack threads=2 | kernels numpy | execution pipelined" in jobs
    assert {j.split(" | ")[3] for j in jobs} == {"execution serial", "execution pipelined"}
    skipped = lines[lines.index("skipped (2):") + 1:]
    assert [ln.split(":")[0].strip() for ln in skipped] == ["gpu-delegate + numpy, serial",
                                                             "gpu-delegate + numpy, pipelined"]
    assert all("unavailable: libtensorflowlite_gpu_delegate.so not found" in ln for ln in skipped)
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


def test_inspect_json(tmp_path: Path) -> None:
    proc = accel("inspect", str(default_model_path()), "--json", cwd=tmp_path)
    assert proc.returncode == 0
    info = json.loads(proc.stdout)
    assert info["family"] == "ssd" and info["inputs"][0]["shape"] == [1, 320, 320, 3]


def test_delegates_lists_every_backend(tmp_path: Path) -> None:
    proc = accel("delegates", "--json", cwd=tmp_path)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"cpu-reference", "xnnpack", "null"} <= set(rows)
    assert rows["xnnpack"]["available"] is True


def test_kernel_set_options_from_config(tmp_path: Path) -> None:
    (tmp_path / "accel.toml").write_text("[kernels.numpy]\nthreads = 2\n")
    proc = accel("compare", "--frames", "2", cwd=tmp_path)
    assert proc.returncode == 2
    assert "accel.toml: kernels.numpy.threads (line 2): unknown option 'threads'" in one_error_line(proc)


@pytest.mark.opencl
def test_opencl_device_from_config_and_transfer_split(tmp_path: Path) -> None:
    from accel.kernels import get_kernels

    try:
        ks = get_kernels("opencl")
        device = ks.describe()["device"]  # type: ignore[attr-defined]
    except Exception as exc:  # no pyopencl or no device here
        pytest.skip(f"no OpenCL device: {exc}")
    (tmp_path / "accel.toml").write_text(f'[kernels.opencl]\ndevice = "{device[:6]}"\n[pipeline]\n'
                                         'kernels = ["opencl"]\n[delegates.cpu-reference]\nenabled = false\n')
    out = tmp_path / "r.json"
    proc = accel("compare", "--frames", "3", "--seconds", "0", "--threads", "1", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    v = json.loads(out.read_text())["variants"][0]
    assert v["kernels_info"]["device"] == device
    assert {"preprocess_upload", "preprocess_kernel", "preprocess_download"} <= set(v["stages"])
    assert "postprocess_kernel" not in v["stages"]  # the ssd family is decoded by the numpy reference


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0),
                                               ("1h30m", 5400.0), ("2.5m", 150.0)])
def test_sustained_durations(text: str, seconds: float) -> None:
    from accel.plan.flags import duration

    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "5d", "m"])
def test_bad_sustained_duration_is_refused(text: str) -> None:
    import argparse

    from accel.plan.flags import duration

    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration like 90s, 10m or 1h"):
        duration(text)
