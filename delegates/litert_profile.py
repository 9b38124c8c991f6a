"""LiteRT's own per-op profiler, reached through its C API (``libLiteRt.so`` in the ``ai-edge-litert`` wheel)
with ctypes: neither ``Interpreter`` nor ``CompiledModel`` in the Python package exposes per-op times, and
``benchmark_model --enable_op_profiling`` is not on the package index (../shared/FACTS.md, "Per-op profiling").

``ProfiledModel`` compiles a model for the CPU with profiling switched on (an opaque runtime option: it is a
compile-time setting) and XNNPACK's thread count, runs it on given input tensors, and hands back the
profiler's events of each run: the whole ``Invoke``, every XNNPACK operator (type 8: XNNPACK's own name,
its index within its partition) and every op left to the builtin kernels (type 2: the TFLite op name and its
node index). Telemetry events (type 32, elapsed 2^32) are dropped. Tag strings are copied at once: the
profiler frees them on its next reset.
"""

from __future__ import annotations

import ctypes as C
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accel.core.errors import DelegateError

__all__ = ["BUILTIN", "DELEGATE", "INVOKE", "XNNPACK", "Event", "ProfiledModel", "library_path"]

INVOKE, BUILTIN, DELEGATE, XNNPACK, TELEMETRY = 1, 2, 4, 8, 32  # the profiler's event types
_P = C.c_void_p
_LOCK_READ, _LOCK_WRITE = 0, 1


class _Event(C.Structure):  # ProfiledEventData, 104 bytes on a 64-bit machine
    _fields_ = [("tag", C.c_char_p), ("type", C.c_int), ("start_us", C.c_uint64), ("elapsed_us", C.c_uint64),
                ("memory", C.c_size_t * 6), ("metadata1", C.c_int64), ("metadata2", C.c_int64),
                ("source", C.c_int)]


@dataclass(frozen=True)
class Event:
    """One profiler event: ``tag`` (the op's or the phase's name), ``type``, ``elapsed_us``, and ``index``
    (a builtin op's TFLite node index; an XNNPACK op's index within its partition; else the runtime's)."""

    tag: str
    type: int
    elapsed_us: int
    index: int


def library_path() -> Path:
    """``libLiteRt.so`` of the installed ``ai-edge-litert``; DelegateError when there is none."""
    try:
        import ai_edge_litert
    except ImportError as exc:
        raise DelegateError(f"per-op profiles need ai-edge-litert ({exc}): pip install ai-edge-litert") from None
    path = Path(os.path.dirname(ai_edge_litert.__file__)) / "libLiteRt.so"
    if not path.is_file():
        raise DelegateError(f"per-op profiles need LiteRT's C API, {path}, which this ai-edge-litert lacks")
    return path


class ProfiledModel:
    """A ``.tflite`` compiled by LiteRT's C API for the CPU (XNNPACK on ``threads``), profiling on."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self._lib = lib = C.CDLL(str(library_path()))
        self._libc = C.CDLL(None)
        self._libc.strdup.restype, self._libc.strdup.argtypes = _P, [C.c_char_p]
        self._env, self._model, self._cm = _P(), _P(), _P()
        self._call("LiteRtCreateEnvironment", [C.c_int, _P, C.POINTER(_P)], 0, None, C.byref(self._env))
        self._call("LiteRtCreateModelFromFile", [_P, C.c_char_p, C.POINTER(_P)], self._env, str(path).encode(),
                   C.byref(self._model))
        options = _P()
        self._call("LiteRtCreateOptions", [C.POINTER(_P)], C.byref(options))
        self._call("LiteRtSetOptionsHardwareAccelerators", [_P, C.c_int], options, 1)  # CPU
        for ident, payload in ((b"runtime_options_string", b"enable_profiling = true\n"),
                               (b"xnnpack", f"num_threads = {int(threads)}\n".encode())):
            opaque = _P()  # the options take ownership of the payload and free it with free()
            self._call("LiteRtCreateOpaqueOptions", [C.c_char_p, _P, _P, C.POINTER(_P)], ident,
                       self._libc.strdup(payload), C.cast(self._libc.free, _P), C.byref(opaque))
            self._call("LiteRtAddOpaqueOptions", [_P, _P], options, opaque)
        self._call("LiteRtCreateCompiledModel", [_P, _P, _P, C.POINTER(_P)], self._env, self._model, options,
                   C.byref(self._cm))
        lib.LiteRtDestroyOptions.argtypes = [_P]
        lib.LiteRtDestroyOptions(options)
        self._sig = _P()
        self._call("LiteRtGetModelSignature", [_P, C.c_size_t, C.POINTER(_P)], self._model, 0, C.byref(self._sig))
        self._ins = self._buffers("Input")
        self._outs = self._buffers("Output")
        self._prof = _P()
        self._call("LiteRtCompiledModelGetProfiler", [_P, C.POINTER(_P)], self._cm, C.byref(self._prof))
        if not self._prof:
            raise DelegateError(f"{Path(path).name}: LiteRT gave no profiler although profiling was asked for")
        for name in ("LiteRtStartProfiler", "LiteRtStopProfiler", "LiteRtResetProfiler"):
            getattr(lib, name).argtypes = [_P]
        self._call("LiteRtStartProfiler", [_P], self._prof)
        self.last_invoke_s = 0.0

    def _call(self, name: str, argtypes: list[Any], *args: Any) -> None:
        fn = getattr(self._lib, name)
        fn.argtypes, fn.restype = argtypes, C.c_int
        status = fn(*args)
        if status != 0:
            raise DelegateError(f"LiteRT's C API: {name} failed (status {status})")

    def _buffers(self, kind: str) -> list[tuple[Any, int]]:
        """One managed host buffer per signature input (or output), as the compiled model requires."""
        count = C.c_size_t()
        self._call(f"LiteRtGetNumSignature{kind}s", [_P, C.POINTER(C.c_size_t)], self._sig, C.byref(count))
        out = []
        for i in range(count.value):
            req, tensor, buf, size = _P(), _P(), _P(), C.c_size_t()
            self._call(f"LiteRtGetCompiledModel{kind}BufferRequirements", [_P, C.c_size_t, C.c_size_t,
                       C.POINTER(_P)], self._cm, 0, i, C.byref(req))
            self._call(f"LiteRtGetSignature{kind}TensorByIndex", [_P, C.c_size_t, C.POINTER(_P)], self._sig, i,
                       C.byref(tensor))
            ranked = C.create_string_buffer(512)  # LiteRtRankedTensorType, passed back as it came
            self._call("LiteRtGetRankedTensorType", [_P, _P], tensor, ranked)
            self._call("LiteRtCreateManagedTensorBufferFromRequirements", [_P, _P, _P, C.POINTER(_P)], self._env,
                       ranked, req, C.byref(buf))
            self._call("LiteRtGetTensorBufferPackedSize", [_P, C.POINTER(C.c_size_t)], buf, C.byref(size))
            out.append((buf, size.value))
        return out

    def run(self, inputs: list[np.ndarray], like: list[np.ndarray]) -> list[np.ndarray]:
        """One invoke on ``inputs`` (in signature order); the outputs shaped and typed as ``like``."""
        for (buf, size), tensor in zip(self._ins, inputs, strict=True):
            data = np.ascontiguousarray(tensor)
            if data.nbytes != size:
                raise DelegateError(f"an input of {data.nbytes} bytes for a tensor of {size}")
            self._copy(buf, data.ctypes.data, size, _LOCK_WRITE, into=True)
        ins = (_P * len(self._ins))(*[b for b, _ in self._ins])
        outs = (_P * len(self._outs))(*[b for b, _ in self._outs])
        t0 = time.perf_counter()
        self._call("LiteRtRunCompiledModel", [_P, C.c_size_t, C.c_size_t, _P, C.c_size_t, _P], self._cm, 0,
                   len(self._ins), ins, len(self._outs), outs)
        self.last_invoke_s = time.perf_counter() - t0
        result = []
        for (buf, size), ref in zip(self._outs, like, strict=True):
            array = np.empty(ref.shape, ref.dtype)
            if array.nbytes != size:
                raise DelegateError(f"an output of {size} bytes for a tensor of {array.nbytes}")
            self._copy(buf, array.ctypes.data, size, _LOCK_READ, into=False)
            result.append(array)
        return result

    def _copy(self, buf: Any, address: int, size: int, mode: int, into: bool) -> None:
        host = _P()
        self._call("LiteRtLockTensorBuffer", [_P, C.POINTER(_P), C.c_int], buf, C.byref(host), mode)
        try:
            if into:
                C.memmove(host, address, size)
            else:
                C.memmove(address, host, size)
        finally:
            self._call("LiteRtUnlockTensorBuffer", [_P], buf)

    def events(self) -> list[Event]:
        """The profiler's events since the last ``reset`` (telemetry dropped), copied."""
        count = C.c_int()
        self._call("LiteRtGetNumProfilerEvents", [_P, C.POINTER(C.c_int)], self._prof, C.byref(count))
        if count.value <= 0:
            return []
        raw = (_Event * count.value)()
        self._call("LiteRtGetProfilerEvents", [_P, C.c_int, _P], self._prof, count.value, raw)
        return [Event((e.tag or b"").decode("utf-8", "replace"), int(e.type), int(e.elapsed_us), int(e.metadata1))
                for e in raw if e.type != TELEMETRY]

    def reset(self) -> None:
        """Forget the events so far (the profiler's buffer does not grow: reset between batches of runs)."""
        self._call("LiteRtResetProfiler", [_P], self._prof)
        self._call("LiteRtStartProfiler", [_P], self._prof)

    def close(self) -> None:
        lib = self._lib
        for buf, _ in self._ins + self._outs:
            lib.LiteRtDestroyTensorBuffer.argtypes = [_P]
            lib.LiteRtDestroyTensorBuffer(buf)
        self._ins, self._outs = [], []
        for name, handle in (("LiteRtDestroyCompiledModel", self._cm), ("LiteRtDestroyModel", self._model),
                             ("LiteRtDestroyEnvironment", self._env)):
            if handle:
                getattr(lib, name).argtypes = [_P]
                getattr(lib, name)(handle)
        self._cm = self._model = self._env = _P()
