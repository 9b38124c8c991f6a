"""Whether the TFLite runtime accepts a model, asked the way it asks, in a child process: its flatbuffer
verifier and interpreter builder (``Interpreter(model_content=...)``), then every op's prepare step
(``allocate_tensors``, the builtin kernels without XNNPACK).

accel's own reader (``accel.model.flatbuffer``) reads what it needs and checks that weights lie inside the
file, but it is not the runtime's verifier: a damaged file can read well enough to describe and still be
"not a valid Flatbuffer buffer" to the runtime, or pass the verifier with tables no kernel can prepare
(a convolution whose filter has lost a dimension). The child is needed because on some damaged files the
runtime crashes the process (a segfault) instead of raising. A custom op the builtin kernels lack is no
reason to refuse a model: a delegate may provide it (Edge TPU models), so "unresolved custom op" passes.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from collections.abc import Sequence

from accel.core.errors import ModelError

__all__ = ["runtime_output_shapes", "runtime_verdicts", "verify_model"]

# One verdict line per model read from stdin (each prefixed by its 8-byte length): "ok", "refuses it: <why>",
# "cannot prepare it: <why>", or "none" when no runtime imports (nothing to verify against: the runs say so).
_CHILD = r"""
import struct, sys
try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:
    try:
        from tflite_runtime.interpreter import Interpreter, OpResolverType
    except ImportError:
        Interpreter = None
def first(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
read, out = sys.stdin.buffer.read, sys.stdout
while len(head := read(8)) == 8:
    buf = read(struct.unpack("<Q", head)[0])
    if Interpreter is None:
        out.write("none\n")
        continue
    try:
        it = Interpreter(model_content=buf,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except Exception as exc:
        out.write("refuses it: " + first(exc) + "\n")
    else:
        try:
            it.allocate_tensors()
            out.write("ok\n")
        except Exception as exc:
            why = first(exc)
            out.write("ok\n" if "unresolved custom op" in why else "cannot prepare it: " + why + "\n")
        del it
    out.flush()
"""

_TIMEOUT_S = 120.0  # the builder reads a model in well under a second; a hang must not hang accel
_accepted: set[str] = set()  # sha256 of models accepted in this process: a model is verified once


def runtime_verdicts(models: Sequence[bytes], timeout_s: float = _TIMEOUT_S) -> list[str | None]:
    """For each model's bytes: None when the runtime accepts it (or no runtime imports), else what the runtime
    did, in words that follow "the TFLite runtime": "refuses it: <its message>", "cannot prepare it: <its
    message>", "crashed reading it (signal 11)" or "did not finish reading it within 120 s". The models are
    checked in one child process; when it dies, the model it died on is checked again alone (one before it
    may have damaged the child's memory) and the rest go to a fresh child."""
    verdicts: list[str | None] = []
    while len(verdicts) < len(models):
        pending = models[len(verdicts):]
        lines, died = _ask(pending, timeout_s)
        verdicts += lines
        if died is not None:
            alone, died_alone = _ask(pending[len(lines): len(lines) + 1], timeout_s) if lines else ([], died)
            verdicts += alone or [died_alone]
    return verdicts


def _ask(models: Sequence[bytes], timeout_s: float) -> tuple[list[str | None], str | None]:
    """The child's verdicts on ``models`` in order, up to the one it died on, and why it died (None: it did not)."""
    payload = b"".join(struct.pack("<Q", len(m)) + m for m in models)
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD], input=payload, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        done = (exc.stdout or b"").decode("utf-8", "replace").splitlines()
        return _parsed(done), f"did not finish reading it within {timeout_s:g} s"
    lines = _parsed(proc.stdout.decode("utf-8", "replace").splitlines()[: len(models)])
    if len(lines) == len(models):
        return lines, None
    signal = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    return lines, f"crashed reading it ({signal})"


def _parsed(lines: list[str]) -> list[str | None]:
    return [None if line in ("ok", "none") else line for line in lines]


def verify_model(buf: bytes, where: str) -> None:
    """``ModelError`` (one line, naming ``where``) unless the TFLite runtime accepts the model ``buf``."""
    digest = hashlib.sha256(buf).hexdigest()
    if digest in _accepted:
        return
    why = runtime_verdicts([buf])[0]
    if why is None:
        _accepted.add(digest)
    else:
        raise ModelError(f"{where}: the TFLite runtime {why}; the file is damaged or not a model this runtime "
                         "can read: re-export or re-download it")


# The output shapes after one inference on zeros (the model on stdin): a JSON list, or "none".
_SHAPES = r"""
import json, sys
import numpy as np
try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
it = Interpreter(model_content=sys.stdin.buffer.read(),
                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
print(json.dumps([[int(v) for v in it.get_tensor(d["index"]).shape] for d in it.get_output_details()]))
"""


def runtime_output_shapes(buf: bytes, timeout_s: float = _TIMEOUT_S) -> list[tuple[int, ...]] | None:
    """The graph outputs' shapes as the runtime sizes them at the stored input shape (one inference on zeros
    in a child process: a damaged file may crash the runtime), in graph order; None when the runtime cannot
    tell. For files whose stored output shapes are placeholders (a converter writes 1 for a dimension it
    left dynamic, -1 in the signature: ``tf.reshape(x, [tf.shape(x)[0], -1, 4])``)."""
    import json

    try:
        proc = subprocess.run([sys.executable, "-c", _SHAPES], input=buf, capture_output=True, timeout=timeout_s)
        shapes = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1]) \
            if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, OSError, ValueError, IndexError):
        return None
    return [tuple(s) for s in shapes] if isinstance(shapes, list) else None
