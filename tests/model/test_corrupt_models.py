"""Damaged models, made from the repo's own with a fixed seed: accel describes them or refuses them in one
line, and whatever the TFLite runtime refuses, cannot prepare or crashes on accel refuses too, never a
traceback.

Each case is one damage to ``default_detector.tflite`` (float) or ``default_detector_int8.tflite``:
truncations, bit flips, random bytes and zeroed runs in the flatbuffer's tables (every byte outside the
weight buffers) and in the weights, and other files renamed .tflite. All of them go through the library
(``load_model``, ``model_costs``, ``gpu_support``), accel's ``runtime_verdicts`` and the oracle for what the
runtime refuses: the runtime asked directly by a child written here, apart from the code under test, whose
verdicts ``runtime_verdicts`` must match and from which the CLI's expected exit codes come. A few dozen
cases, picked to cover every outcome, go through ``accel inspect`` and ``accel compare`` in this process
(the runtime itself only ever runs in a child). Non-regular files (a pipe, /dev/zero, a folder) have their
own tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from accel.cli.main import main
from accel.core.errors import ModelError
from accel.model import costs_or_why, default_model_path, gpu_support, load_model
from accel.model.flatbuffer import read_flatbuffer
from accel.model.verify import runtime_verdicts

MODELS = {"float": default_model_path(), "int8": default_model_path().with_name("default_detector_int8.tflite")}
SEED = 15


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes


def _weight_mask(buf: bytes) -> np.ndarray:
    """True for the bytes of the weight buffers, False for the tables around them."""
    fb = read_flatbuffer(buf)
    mask = np.zeros(len(buf), bool)
    for i in range(fb.model.BuffersLength()):
        tab = fb.model.Buffers(i)._tab
        o = tab.Offset(4)
        if o:
            start = tab.Vector(o)
            mask[start: start + tab.VectorLen(o)] = True
    return mask


def _damaged(name: str, buf: bytes, rng: np.random.Generator) -> Iterator[Case]:
    weights = _weight_mask(buf)
    tables, stored = np.flatnonzero(~weights), np.flatnonzero(weights)
    for k, cut in enumerate([8, 100, len(buf) // 2, len(buf) - 1, *rng.integers(9, len(buf), 8)]):
        yield Case(f"{name}-truncated-{k}-at-{cut}", buf[:cut])
    for k in range(60):
        b, at = bytearray(buf), int(rng.choice(tables))
        b[at] ^= 1 << int(rng.integers(8))
        yield Case(f"{name}-table-flip-{k}-at-{at}", bytes(b))
    for k in range(40):
        b, at = bytearray(buf), int(rng.choice(tables))
        b[at] = int(rng.integers(256))
        yield Case(f"{name}-table-byte-{k}-at-{at}", bytes(b))
    for k in range(30):
        b, at, n = bytearray(buf), int(rng.choice(tables)), int(rng.integers(1, 64))
        b[at: at + n] = bytes(len(b[at: at + n]))
        yield Case(f"{name}-table-zeroed-{k}-at-{at}", bytes(b))
    for k in range(6):
        b = bytearray(buf)
        for at in rng.choice(stored, 16):
            b[at] ^= 1 << int(rng.integers(8))
        yield Case(f"{name}-weights-flipped-{k}", bytes(b))
        at, n = int(rng.choice(stored)), int(rng.integers(64, 4096))
        b[at: at + n] = bytes(len(b[at: at + n]))
        yield Case(f"{name}-weights-zeroed-{k}", bytes(b))


def _other_files() -> Iterator[Case]:
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("model.tflite", default_model_path().read_bytes())
    yield from (Case("empty", b""), Case("png", png.getvalue()), Case("zip-of-a-model", packed.getvalue()),
                Case("text", b"TFL3 is what a model starts with, after four bytes\n"), Case("zeros", bytes(4096)))


@cache
def cases() -> tuple[Case, ...]:
    rng = np.random.default_rng(SEED)
    out = [c for name, path in MODELS.items() for c in _damaged(name, path.read_bytes(), rng)]
    return (*out, *_other_files())


# The oracle: each model file named on the command line, in order, through the runtime's interpreter builder
# and every op's prepare step (builtin kernels, no XNNPACK), one line each after "ready": "accepted" or
# "refused". A custom op the builtin kernels lack is no refusal (README: a delegate may provide it). No import
# fallback: without ai_edge_litert there is no "ready" and the oracle fails.
_ORACLE = r"""
import sys
from ai_edge_litert.interpreter import Interpreter, OpResolverType
print("ready", flush=True)
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                    ).allocate_tensors()
        verdict = "accepted"
    except Exception as exc:
        verdict = "accepted" if "unresolved custom op" in str(exc) else "refused"
    print(verdict, flush=True)
"""


def _oracle_child(paths: list[Path]) -> list[str]:
    """One child's verdicts on ``paths``, in order, up to the model it died on (if it did)."""
    proc = subprocess.run([sys.executable, "-c", _ORACLE, *map(str, paths)], capture_output=True, text=True,
                          timeout=300)
    lines = proc.stdout.splitlines()
    assert lines[:1] == ["ready"], proc.stderr
    return lines[1: len(paths) + 1]


def oracle(paths: list[Path]) -> list[str]:
    """The runtime's verdict on each file: "accepted", "refused", or "crashed" when it kills a fresh child
    alone. When a child dies, the model it died on is asked again alone (one before it may have damaged the
    child) and the rest go to a fresh child."""
    out: list[str] = []
    while len(out) < len(paths):
        out += _oracle_child(paths[len(out):])
        if len(out) < len(paths):
            out += _oracle_child(paths[len(out): len(out) + 1]) or ["crashed"]
    return out


@dataclass(frozen=True)
class Verdict:
    ours: str | None  # accel's reader: None (described) or its one-line ModelError
    runtime: str | None  # accel's runtime_verdicts (under test): None (accepted) or why not
    refused: bool  # the oracle: the runtime refuses, cannot prepare or crashes on it


@cache
def verdicts() -> dict[str, Verdict]:
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder, f"{k}.tflite") for k in range(len(cases()))]
        for case, path in zip(cases(), paths, strict=True):
            path.write_bytes(case.data)
        told = oracle(paths)
    runtime = runtime_verdicts([c.data for c in cases()])
    return {c.id: Verdict(_ours(c), why, said != "accepted")
            for c, why, said in zip(cases(), runtime, told, strict=True)}


def _accepted(v: Verdict) -> bool:
    """What the CLI must accept (exit 0): what both accel's reader and the oracle accept."""
    return v.ours is None and not v.refused


def _ours(case: Case) -> str | None:
    try:
        model = load_model(case.id, content=case.data)
    except ModelError as exc:
        return str(exc)
    costs = costs_or_why(case.data)  # an annotation: a model the reader described may still lack its costs
    assert "please report this bug" not in str(costs.get("costs_why")), (case.id, costs)
    gpu_support(model.ops)
    return None


def test_the_library_describes_or_refuses_in_one_line() -> None:
    """Every case: described, or one ModelError line (any other exception fails the test by itself)."""
    for case_id, v in verdicts().items():
        assert v.ours is None or "\n" not in v.ours, case_id


def test_runtime_verdicts_agree_with_the_oracle() -> None:
    """accel's runtime_verdicts accepts exactly what the runtime, asked directly, accepts."""
    disagree = {case_id: v.runtime for case_id, v in verdicts().items() if (v.runtime is not None) != v.refused}
    assert not disagree


def test_the_cases_cover_every_outcome() -> None:
    """The damage is varied enough to matter: some cases are accepted by both readers, some refused by both,
    some refused by the runtime only (what accel's own reader cannot see), some by accel's reader only (a
    tensor index out of range, which the runtime's verifier lets through)."""
    outcomes = {(v.ours is None, not v.refused) for v in verdicts().values()}
    assert outcomes == {(True, True), (False, False), (True, False), (False, True)}


# One byte of the int8 model's tables that passes the runtime's verifier and segfaults its interpreter builder
# (found by a search over 1,500 random bytes; ai-edge-litert 2.x).
CRASHER = ("int8", 174517, 142)


def test_a_model_that_crashes_the_runtime_is_refused(tmp_path: Path) -> None:
    name, at, value = CRASHER
    data = bytearray(MODELS[name].read_bytes())
    data[at] = value
    path = tmp_path / "crasher.tflite"
    path.write_bytes(data)
    if (said := oracle([path])[0]) != "crashed":
        pytest.skip(f"this runtime no longer crashes on the {name} model with byte {at} = {value} ({said})")
    for args in (["inspect", str(path)], ["compare", "--model", str(path), "--delegates", "cpu-reference",
                                          "--json", str(tmp_path / "r.json")]):
        code, _, err = _cli(*args)
        assert code == 2 and err.count("\n") == 1, err
        assert "crasher.tflite: the TFLite runtime crashed reading it (signal 11); the file is damaged" in err


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _picked() -> list[Case]:
    """Up to six cases of each outcome (both readers accept, both refuse, one of them refuses), in a fixed order."""
    groups: dict[tuple[bool, bool], list[Case]] = {}
    for case in cases():
        v = verdicts()[case.id]
        groups.setdefault((v.ours is None, not v.refused), []).append(case)
    return [c for group in groups.values() for c in group[:6]]


@pytest.fixture(scope="module")
def picked(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Case, Path]]:
    folder = tmp_path_factory.mktemp("corrupt")
    written = []
    for case in _picked():
        path = folder / f"{case.id}.tflite"
        path.write_bytes(case.data)
        written.append((case, path))
    return written


def test_inspect_refuses_what_either_reader_refuses(picked: list[tuple[Case, Path]]) -> None:
    for case, path in picked:
        v = verdicts()[case.id]
        code, _, err = _cli("inspect", "--json", str(path))
        lines = err.strip().splitlines()
        if _accepted(v):
            assert (code, lines) == (0, []), case.id
        else:
            assert code == 2 and len(lines) == 1 and lines[0].startswith("accel: error: "), (case.id, err)
            if v.ours is None:
                assert f"the TFLite runtime {v.runtime}" in lines[0], case.id


def test_compare_refuses_before_any_run(picked: list[tuple[Case, Path]], tmp_path: Path) -> None:
    """compare reads and verifies the model first: a bad one is exit 2 and one line, whatever the delegates."""
    for case, path in picked[::2]:
        v = verdicts()[case.id]
        code, _, err = _cli("compare", "--model", str(path), "--delegates", "null", "--frames", "1", "--warmup", "0",
                            "--seconds", "0", "--in-process", "--json", str(tmp_path / "r.json"))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == (0 if _accepted(v) else 2), (case.id, err)
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("accel: error: "), (case.id, err)


def test_a_pipe_is_read_once(tmp_path: Path) -> None:
    """A FIFO (what ``<(cat model.tflite)`` is) can be read only once: inspect still describes it."""
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    data = MODELS["int8"].read_bytes()
    writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)
    writer.start()
    code, out, err = _cli("inspect", "--json", str(fifo))
    writer.join(10)
    assert (code, err) == (0, "")
    assert '"family": "ssd"' in out


@pytest.mark.parametrize(("path", "message"), [
    pytest.param("/dev/zero", "is a character device, expected a .tflite file", id="dev-zero"),
    pytest.param("/dev/null", "is a character device", id="dev-null"),
    pytest.param("/", "is a folder", id="folder"),
])
def test_non_regular_files_are_refused(path: str, message: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    code, _, err = _cli("inspect", path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("bash") is None, reason="process substitution <(...) needs bash")
def test_process_substitution(tmp_path: Path) -> None:
    """What a user types: ``<(cat model.tflite)`` is a pipe the shell names /dev/fd/N, readable once."""
    model = MODELS["float"]
    accel = f"{shlex.quote(sys.executable)} -m accel"
    script = (f"{accel} inspect --json <(cat {shlex.quote(str(model))}) > inspect.json && "
              f"{accel} compare --model <(cat {shlex.quote(str(model))}) --delegates null --frames 1 --warmup 0 "
              "--seconds 0 --json r.json")
    env = {**os.environ, "HOME": str(tmp_path)}  # where the piped model is kept: ~/.cache/accel/piped
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "inspect.json").read_text())["family"] == "ssd"
    ran = json.loads((tmp_path / "r.json").read_text())["model"]
    assert ran["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    kept = Path(ran["path"])  # kept as a regular file for the workers, which open it by path
    assert kept.parent == tmp_path / ".cache" / "accel" / "piped" and kept.read_bytes() == model.read_bytes()


def _with_bias_zero_point(zero_point: int) -> bytes:
    """The int8 default detector with its first quantized int32 tensor (a bias) given ``zero_point``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(MODELS["int8"].read_bytes(), 0))
    tensors = model.subgraphs[0].tensors
    bias = next(t for t in tensors if t.type == s.TensorType.INT32 and t.quantization is not None
                and t.quantization.zeroPoint is not None and len(t.quantization.zeroPoint))
    bias.quantization.zeroPoint = np.full(len(bias.quantization.zeroPoint), zero_point, np.int64)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_DEFAULT_DELEGATE = r"""
import sys
from ai_edge_litert.interpreter import Interpreter, OpResolverType
for resolver in (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, OpResolverType.AUTO):
    try:
        Interpreter(model_path=sys.argv[1], experimental_op_resolver_type=resolver).allocate_tensors()
        print("accepted")
    except Exception:
        print("refused")
"""


def test_a_zero_point_outside_its_types_rules_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """An int32 bias whose zero point is 8388608 (TFLite's quantization spec: 0) passes the runtime's builtin
    kernels but not its default delegate, XNNPACK (asked here in a child, apart from the code under test):
    accel's reader refuses it in one line naming the tensor, and inspect and compare exit 2."""
    path = tmp_path / "bias_zp.tflite"
    path.write_bytes(_with_bias_zero_point(8388608))
    said = subprocess.run([sys.executable, "-c", _DEFAULT_DELEGATE, str(path)], capture_output=True, text=True,
                          timeout=120).stdout.split()
    assert said == ["accepted", "refused"]  # builtin kernels, then with XNNPACK
    with pytest.raises(ModelError, match=r"tensor \d+ \('.*BiasAdd.*', int32\) has quantization zero point "
                                         r"8388608; TFLite's quantization spec allows 0 for int32"):
        read_flatbuffer(path)
    for argv in (["inspect", str(path)], ["compare", "--model", str(path), "--frames", "1"]):
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            assert main(argv) == 2, err.getvalue()
        assert "zero point 8388608" in err.getvalue() and "Traceback" not in err.getvalue()
    ok = tmp_path / "ok.tflite"  # the same edit with the spec's zero point reads as the original does
    ok.write_bytes(_with_bias_zero_point(0))
    assert load_model(ok).family == load_model(MODELS["int8"]).family
