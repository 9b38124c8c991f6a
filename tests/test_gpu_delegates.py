"""gpu-delegate and external (classic Interpreter + load_delegate), and litert-gpu (CompiledModel on the GPU).

The library-loaded delegates run against tests/delegate_stub/stub_delegate.c: a real TFLite external delegate
(the ABI, no accelerator) that rejects unknown options, claims no nodes and writes every key=value it received
to $STUB_DELEGATE_RECORD. Expected GPU-delegate keys come from shared/FACTS.md (the delegate's own option list).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accel.core.errors import ConfigError
from accel.delegates import get_delegate
from accel.model import default_model_path

STUB_SOURCE = Path(__file__).parent / "delegate_stub" / "stub_delegate.c"


@pytest.fixture(scope="session")
def stub_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler (cc/gcc/clang) to build the stub external delegate")
    out = tmp_path_factory.mktemp("stub") / "stub.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(out), str(STUB_SOURCE)], check=True)
    return out


@pytest.mark.parametrize(("friendly", "expected"), [
    ({}, {}),
    ({"precision": "fp16"}, {"is_precision_loss_allowed": "1"}),
    ({"precision": "fp32"}, {"is_precision_loss_allowed": "0"}),
    ({"inference_preference": "sustained-speed"}, {"inference_preference": "1"}),
    ({"inference_priority1": "min-latency", "inference_priority3": "min-memory"},
     {"inference_priority1": "2", "inference_priority3": "3"}),
    ({"backend": "opencl"}, {"experimental_flags": "3"}),  # quantized (the delegate's default) | OpenCL only
    ({"backend": "gl", "quantized": False}, {"experimental_flags": "4"}),
    ({"quantized": True}, {"experimental_flags": "1"}),
    ({"max_delegated_partitions": 2}, {"max_delegated_partitions": "2"}),
    ({"serialization_dir": "/tmp/c", "model_token": "m1"},
     {"experimental_flags": "9", "serialization_dir": "/tmp/c", "model_token": "m1"}),
    ({"serialization_dir": "/tmp/c"}, {"experimental_flags": "9", "serialization_dir": "/tmp/c", "model_token": "tok"}),
], ids=["nothing-set", "fp16", "fp32", "preference", "priorities", "opencl", "gl-unquantized", "quantized",
        "partitions", "cache", "cache-derived-token"])
def test_gpu_delegate_options_map_only_what_was_set(friendly: dict, expected: dict) -> None:  # type: ignore[type-arg]
    from accel.delegates.external import gpu_delegate_options

    assert gpu_delegate_options(friendly, model_token="tok") == expected


@pytest.mark.parametrize(("delegate", "options", "message"), [
    ("gpu-delegate", {"backend": "vulkan"}, r"delegates.gpu-delegate.backend: expected one of opencl, gl"),
    ("gpu-delegate", {"precision": "int8"}, r"delegates.gpu-delegate.precision: expected fp16 or fp32"),
    ("gpu-delegate", {"speed": 1}, r"delegates.gpu-delegate: unknown option 'speed'"),
    ("external", {}, r"delegates.external: no library"),
    ("external", {"tpu": {"options": {"a": "1"}}}, r"delegates.external.tpu.library: expected the path"),
    ("external", {"tpu": {"library": "x.so", "options": {"a": [1]}}}, r"delegates.external.tpu.options: expected"),
], ids=["unknown-backend", "bad-precision", "unknown-key", "external-empty", "no-library", "options-not-strings"])
def test_bad_options_name_the_key(delegate: str, options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        get_delegate(delegate).variants(options)


def test_external_variants_are_named_by_instance(tmp_path: Path) -> None:
    library = tmp_path / "libedgetpu.so.1"
    library.write_bytes(b"")  # the library must exist when the variants are made; it is loaded only to run
    variants = get_delegate("external").variants({"edgetpu": {"library": str(library),
                                                              "options": {"device": "usb", "verbose": True}}})
    assert [v.label for v in variants] == ["external edgetpu"]
    assert dict(variants[0].option("options")) == {"device": "usb", "verbose": "true"}
    flat = get_delegate("external").variants({"library": str(library)})
    assert [v.label for v in flat] == ["external libedgetpu.so.1"]


@pytest.mark.parametrize("options", [
    pytest.param({"library": "/nonexistent/libx.so"}, id="flat"),
    pytest.param({"tpu": {"library": "/nonexistent/libx.so"}}, id="named"),
])
def test_external_library_that_does_not_exist_is_a_config_error(options: dict) -> None:  # type: ignore[type-arg]
    """Found when the variants are made, not when one runs (issue 15 part 11)."""
    with pytest.raises(ConfigError, match=r"library: /nonexistent/libx.so not found \(give the path"):
        get_delegate("external").variants(options)


def test_gpu_delegate_probe_says_where_it_looked_and_how_to_build(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from accel.delegates import external

    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "libs"))
    monkeypatch.chdir(tmp_path)
    if external.find_gpu_delegate() is not None:
        pytest.skip(f"this machine has a GPU delegate at {external.find_gpu_delegate()}")
    found = get_delegate("gpu-delegate").probe()
    assert not found.ok
    assert f"libtensorflowlite_gpu_delegate.so not found in {tmp_path / 'libs'}, /usr/local/lib" in found.reason
    assert "bazel build -c opt --config=elinux_aarch64 --copt=-DCL_DELEGATE_NO_GL" in found.reason


@pytest.fixture(scope="module")
def compared(stub_library: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    """One `accel compare` run: cpu-reference, two external instances (one with an unknown option) and
    gpu-delegate pointed at the stub."""
    folder = tmp_path_factory.mktemp("external")
    (folder / "accel.toml").write_text(f"""
[delegates.external.stub]
library = "{stub_library}"
options = {{verbose = "1"}}

[delegates.external.bad]
library = "{stub_library}"
options = {{bogus = "1"}}

[delegates.gpu-delegate]
library = "{stub_library}"
precision = "fp16"
inference_priority1 = "min-latency"
""")
    record = folder / "received.txt"
    out = folder / "out.json"
    args = ["compare", "--model", str(default_model_path()), "--delegates", "cpu-reference,external,gpu-delegate",
            "--config", str(folder / "accel.toml"), "--frames", "3", "--seconds", "0", "--warmup", "0",
            "--json", str(out)]
    proc = subprocess.run([sys.executable, "-m", "accel", *args], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "STUB_DELEGATE_RECORD": str(record)}, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr  # 1: a variant failed ("external bad", on purpose)
    return json.loads(out.read_text()), record.read_text().splitlines()


def _variant(doc: dict, label: str) -> dict:  # type: ignore[type-arg]
    return next(v for v in doc["variants"] if v["variant"] == label)


def test_external_runs_and_shows_nothing_was_delegated(compared: tuple[dict, list[str]]) -> None:  # type: ignore[type-arg]
    doc, _ = compared
    stub = _variant(doc, "external stub")
    assert stub["status"] == "ok"
    assert stub["placement"]["accelerator"] == "external stub"
    assert stub["placement"]["delegated_ops"] == 0
    assert stub["placement"]["total_ops"] == _variant(doc, "cpu-reference threads=1")["placement"]["total_ops"]
    assert "nothing was delegated" in stub["placement"]["detail"]
    assert stub["agreement"]["reference"].startswith("cpu-reference")
    assert stub["agreement"]["score"] == 1.0  # the same CPU kernels ran every op


def test_external_unknown_option_fails_only_its_variant(compared: tuple[dict, list[str]]) -> None:  # type: ignore[type-arg]
    doc, _ = compared
    bad = _variant(doc, "external bad")
    assert bad["status"] == "failed"
    assert "stub delegate: unknown option 'bogus'" in bad["error"]
    assert {v["variant"]: v["status"] for v in doc["variants"] if v["variant"] != "external bad"} == {
        "cpu-reference threads=1": "ok", "external stub": "ok",
        "gpu-delegate precision=fp16 inference_priority1=min-latency": "ok"}


def test_gpu_delegate_passes_mapped_keys_only(compared: tuple[dict, list[str]]) -> None:  # type: ignore[type-arg]
    doc, received = compared
    gpu = _variant(doc, "gpu-delegate precision=fp16 inference_priority1=min-latency")
    assert gpu["placement"]["delegated_ops"] == 0
    # The stub appends one line per key per creation: the external instances' then gpu-delegate's.
    gpu_keys = [line for line in received if line.split("=")[0] not in ("verbose", "bogus")]
    assert sorted(gpu_keys) == ["inference_priority1=2", "is_precision_loss_allowed=1"]


def test_prepare_model_splits_the_postprocess_op_and_keeps_its_anchors(tmp_path: Path) -> None:
    from accel.delegates.gpu import prepare_model
    from accel.model import load_model

    original = load_model(default_model_path())
    split = prepare_model(original, tmp_path)
    assert split.family.value == "ssd-raw"
    assert "TFLite_Detection_PostProcess" not in split.ops
    n = original.decode_hints["anchors"].shape[0]
    assert [t.shape for t in split.outputs] == [(1, n, 4), (1, n, original.num_classes + 1)]
    # Anchors folded from the op's input in the original == anchors read back from the split file's metadata.
    np.testing.assert_allclose(split.decode_hints["anchors"], original.decode_hints["anchors"], atol=1e-6)
    assert split.decode_hints["box_scales"] == original.decode_hints["box_scales"]
    # Every option of the op comes along, so the split model decodes as the op did.
    assert split.decode_hints["postprocess"] == original.postprocess_options == split.postprocess_options
    assert prepare_model(original, tmp_path).path == split.path  # cached by the model's sha256
    assert prepare_model(split, tmp_path) is split  # nothing to split


def test_litert_gpu_refuses_an_unsplit_postprocess_model() -> None:
    from accel.core.errors import DelegateError
    from accel.delegates import Variant
    from accel.model import load_model

    with pytest.raises(DelegateError, match="run the split model from accel.delegates.gpu.prepare_model"):
        get_delegate("litert-gpu").open(load_model(default_model_path()),
                                        Variant("litert-gpu", (("precision", "fp16"),)))


@pytest.fixture(scope="module")
def gpu_adapter() -> str:
    found = get_delegate("litert-gpu").probe()
    if not found.ok:
        assert found.reason.startswith("no Vulkan adapter ("), found.reason
        pytest.skip(f"litert-gpu: {found.reason}")
    return found.reason


_GPU_VS_CPU = """
import sys
from pathlib import Path
import numpy as np
from accel.delegates import Variant, get_delegate
from accel.delegates.gpu import prepare_model
from accel.model import default_model_path, load_model

split = prepare_model(load_model(default_model_path()), Path(sys.argv[1]))
x = np.random.default_rng(3).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
ref = get_delegate("cpu-reference").open(split, Variant("cpu-reference", (("threads", 1),)))
opts = (("precision", "fp32"), *((("fallback", True),) if sys.argv[2] == "1" else ()))
gpu = get_delegate("litert-gpu").open(split, Variant("litert-gpu", opts))
want, got = ref.run([x]), gpu.run([x])
print("DETAIL", gpu.placement.detail)
print("MAXDIFF", max(float(np.abs(b.astype(np.float64) - a).max()) for a, b in zip(want, got, strict=True)))
"""


@pytest.mark.gpu
@pytest.mark.parametrize("fallback", [False, True], ids=["gpu", "gpu+cpu"])
def test_litert_gpu_runs_the_split_model_like_the_cpu(gpu_adapter: str, fallback: bool, tmp_path: Path) -> None:
    # In a child process, as accel runs every GPU variant: a driver must never share pytest's process
    # (with TensorFlow loaded by other tests, the WebGPU accelerator has crashed in it).
    proc = subprocess.run([sys.executable, "-c", _GPU_VS_CPU, str(tmp_path), "1" if fallback else "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("DETAIL", "MAXDIFF")))
    assert "is_fully_accelerated=True" in lines["DETAIL"]
    assert float(lines["MAXDIFF"]) <= 2e-3


@pytest.mark.gpu
def test_litert_gpu_runs_the_split_detector_through_compare(tmp_path: Path) -> None:
    """The default detector ends in TFLite_Detection_PostProcess: compare runs its network on the GPU and
    decodes it as ssd-raw, and the answers agree with cpu-reference's on the same frames."""
    import json
    import subprocess
    import sys

    from accel.delegates import get_delegate

    available = get_delegate("litert-gpu").probe()
    if not available.ok:
        pytest.skip(f"no GPU adapter here: {available.reason}")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--delegates", "cpu-reference,litert-gpu",
                           "--frames", "5", "--seconds", "0", "--warmup", "1", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    gpu = next(v for v in json.loads(out.read_text())["variants"] if v["delegate"] == "litert-gpu")
    assert gpu["status"] == "ok"
    assert gpu["model_ran"]["family"] == "ssd-raw"
    assert gpu["adapter"]["backend"] == "Vulkan"  # the adapter that ran is in the record
    assert "is_fully_accelerated=True" in gpu["placement"]["detail"]
    assert gpu["agreement"]["score"] >= 0.9 and gpu["agreement"]["mean_iou"] >= 0.9


def test_adapter_line_is_parsed_from_the_worker_log() -> None:
    import tempfile

    from accel.results.record import Adapter
    from accel.run.worker import adapter_of, read_log

    with tempfile.TemporaryFile() as log:  # the worker's stderr log, which has no name on disk
        log.write(b"INFO: something\nSelected adapter: llvmpipe (LLVM 15.0.6, 256 bits), arch=software, "
                  b"vendor=mesa, backend=Vulkan, adapterType=CPU / Software\n")
        log.flush()  # the offset is now at the end: read_log reads from the start without moving it
        assert adapter_of(read_log(log)) == Adapter("llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan", "CPU / Software",
                                                  True)
    assert adapter_of("no adapter here\n") is None


def test_litert_gpu_whole_postprocess_graph_ends_as_a_recorded_outcome(gpu_adapter: str, tmp_path: Path) -> None:
    """split = false runs the detector whole under GPU|CPU, the path on which LiteRT has aborted with
    "free(): invalid size" for SSD detectors (shared/FACTS.md). With LiteRT 2.3.0 on lavapipe it completes
    for accel's models (the op falls back to the CPU); wherever it aborts, the abort is the variant's
    outcome. Either way the comparison completes and the reference variant is intact on disk."""
    import json

    config = tmp_path / "accel.toml"
    config.write_text("[delegates.cpu-reference]\nenabled = true\n[delegates.litert-gpu]\nenabled = true\n"
                      "precision = \"fp32\"\nfallback = true\nsplit = false\n")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--config", str(config), "--frames", "3",
                           "--seconds", "0", "--warmup", "0", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    gpu = next(v for v in doc["variants"] if v["delegate"] == "litert-gpu")
    assert gpu["variant"] == "litert-gpu precision=fp32 fallback=True split=False"
    assert "model_ran" not in gpu  # the original graph ran, post-process op and all
    if gpu["status"] == "crashed":
        assert "SIGABRT" in gpu["error"]
    else:
        assert gpu["status"] == "ok"
        assert "fell back to CPU" in gpu["placement"]["detail"]  # the op cannot run on the GPU
    ref = next(v for v in doc["variants"] if v["delegate"] == "cpu-reference")
    assert ref["status"] == "ok" and ref["frames_measured"] == 3 and doc["complete"]


@pytest.mark.parametrize(("options", "labels"), [
    pytest.param({}, ["litert-gpu precision=fp16"], id="default-split"),
    pytest.param({"split": False, "fallback": True}, ["litert-gpu precision=fp16 fallback=True split=False"],
                 id="whole-graph"),
])
def test_litert_gpu_split_option(options: dict, labels: list[str]) -> None:  # type: ignore[type-arg]
    assert [v.label for v in get_delegate("litert-gpu").variants(options)] == labels


def test_litert_gpu_split_option_must_be_boolean() -> None:
    from accel.core.errors import ConfigError

    with pytest.raises(ConfigError, match="delegates.litert-gpu.split: expected true or false"):
        get_delegate("litert-gpu").variants({"split": "no"})


@pytest.mark.gpu
def test_a_model_the_gpu_refuses_in_a_sweep_is_recorded_with_why_and_the_rest_run(
        gpu_adapter: str, tiny_classifier: tuple[Path, object, object], tmp_path: Path) -> None:
    """GPU only (fallback = false) on the whole graph (split = false): the GPU cannot take the detector's
    TFLite_Detection_PostProcess op, so LiteRT refuses to load that model; the classifier beside it has only
    ops the GPU takes. The refusal is the detector's litert-gpu record, with why; every other job runs."""
    config = tmp_path / "accel.toml"
    config.write_text("[delegates.xnnpack]\nenabled = true\nthreads = [1]\n[delegates.litert-gpu]\nenabled = true\n"
                      "precision = \"fp32\"\nfallback = false\nsplit = false\n")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--config", str(config), "--model",
                           str(tiny_classifier[0]), "--model", str(default_model_path()), "--delegates",
                           "xnnpack,litert-gpu", "--frames", "3", "--seconds", "0", "--warmup", "0", "--json",
                           str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]  # a variant failed: the run says so in its exit code
    doc = json.loads(out.read_text())
    status = {(v["model"], v["delegate"]): v for v in doc["variants"]}
    detector, classifier = default_model_path().name, tiny_classifier[0].name
    assert status[detector, "litert-gpu"]["status"] == "failed"
    assert f"cannot load {detector}" in status[detector, "litert-gpu"]["error"]
    assert "fallback = true runs it on the CPU" in status[detector, "litert-gpu"]["error"]
    assert [status[k]["status"] for k in ((classifier, "xnnpack"), (classifier, "litert-gpu"),
                                          (detector, "xnnpack"))] == ["ok", "ok", "ok"]
    assert doc["complete"] and len(doc["models"]) == 2
    row = next(ln for ln in out.with_suffix(".md").read_text().splitlines() if ln.startswith(f"| {detector}"))
    assert "| failed |" in row and "ran; 1 not: litert-gpu" in row
