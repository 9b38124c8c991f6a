"""The OpenCL side of the ``opencl`` kernel set: device choice, program cache, buffers and timing.

``pyopencl`` is imported by ``open_runtime`` only, never at module import. A ``Runtime`` owns one context
and one in-order profiling queue; programs are built once per context and cached by (source hash, options,
device, driver version); device buffers are reused across frames, one per role, grown when a frame needs more.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from accel.core.errors import KernelError

MISSING_PYOPENCL = "pyopencl is not installed: pip install 'accel[opencl]'"
NO_DEVICE = ("no OpenCL platform/device found: install PoCL (apt install pocl-opencl-icd) or, on a Pi, rusticl "
             "(RUSTICL_ENABLE=v3d) / clvk")


def _read_source(filename: str) -> str:
    """The text of a ``.cl`` file shipped in this package."""
    return resources.files("accel.kernels.opencl").joinpath(filename).read_text(encoding="utf-8")


def _devices(cl: Any) -> list[tuple[Any, Any]]:
    """Every (platform, device) pair the ICD loader lists; a platform without devices is skipped."""
    found: list[tuple[Any, Any]] = []
    try:
        platforms = cl.get_platforms()
    except cl.Error:  # no ICD at all: PLATFORM_NOT_FOUND_KHR
        return found
    for platform in platforms:
        try:
            found.extend((platform, d) for d in platform.get_devices())
        except cl.Error:  # e.g. rusticl without RUSTICL_ENABLE: a platform with no device
            continue
    return found


def select_device(cl: Any, platform: str | None, device: str | None) -> tuple[Any, Any]:
    """The device whose platform and device names contain the given substrings (case-insensitive);
    by default the first GPU, else the first device. Raises ``KernelError`` naming what exists."""
    pairs = _devices(cl)
    if not pairs:
        raise KernelError(NO_DEVICE)
    matching = [(p, d) for p, d in pairs
                if (platform or "").lower() in p.name.lower() and (device or "").lower() in d.name.lower()]
    if not matching:
        known = "; ".join(f"{p.name.strip()} / {d.name.strip()}" for p, d in pairs)
        raise KernelError(f"no OpenCL device matches platform {platform!r} and device {device!r}; found: {known}")
    gpus = [(p, d) for p, d in matching if d.type & cl.device_type.GPU]
    return (gpus or matching)[0]


class Runtime:
    """One OpenCL context and queue: cached programs and kernels, reused buffers, per-frame timings."""

    def __init__(self, cl: Any, platform: Any, device: Any, zero_copy: bool | None = None) -> None:
        self.cl = cl
        self.platform, self.device = platform, device
        self.context = cl.Context([device])
        self.queue = cl.CommandQueue(self.context, device, properties=cl.command_queue_properties.PROFILING_ENABLE)
        self.unified_memory = bool(device.host_unified_memory)
        self.zero_copy = self.unified_memory if zero_copy is None else zero_copy
        self.fp64 = "cl_khr_fp64" in device.extensions.split()
        self.builds = 0  # programs actually compiled (the cache test counts these)
        self._programs: dict[tuple[str, tuple[str, ...], str, str], Any] = {}
        self._kernels: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        self._buffers: dict[str, Any] = {}
        self._constants: dict[tuple[Any, ...], Any] = {}
        self._events: list[tuple[str, Any]] = []
        self._host_s = {"upload": 0.0, "download": 0.0}
        self._keep: list[np.ndarray] = []  # host arrays an enqueued non-blocking copy still reads
        self.timings: dict[str, float] = {"upload_ms": 0.0, "kernel_ms": 0.0, "download_ms": 0.0}

    def describe(self) -> dict[str, Any]:
        """Platform, device, driver and OpenCL versions, memory model and optional features in use."""
        d = self.device
        return {"platform": self.platform.name.strip(), "device": d.name.strip(),
                "driver_version": d.driver_version, "opencl_version": d.version.strip(),
                "unified_memory": self.unified_memory, "zero_copy": self.zero_copy, "fp64": self.fp64,
                "compute_units": int(d.max_compute_units)}

    # Programs -------------------------------------------------------------------------------------------
    def program(self, source: str, options: Sequence[str] = (), name: str = "<source>") -> Any:
        """``source`` built for this context with ``options``, once: later calls return the cached program.
        A failed build raises ``KernelError`` with the build log and the options."""
        opts = tuple(options)
        key = (hashlib.sha256(source.encode()).hexdigest(), opts, self.device.name, self.device.driver_version)
        if key not in self._programs:
            prg = self.cl.Program(self.context, source)
            try:
                prg.build(options=list(opts))
            except self.cl.Error as exc:
                try:
                    log = prg.get_build_info(self.device, self.cl.program_build_info.LOG)
                except self.cl.Error:
                    log = str(exc)
                raise KernelError(f"OpenCL program {name} failed to build on {self.device.name.strip()} "
                                  f"(options: {' '.join(opts) or 'none'}):\n{log.strip()}") from exc
            self.builds += 1
            self._programs[key] = prg
        return self._programs[key]

    def kernel(self, filename: str, name: str, options: Sequence[str] = ()) -> Any:
        """Kernel ``name`` of the packaged ``filename`` built with ``options`` (both cached: a frame's lookups
        cost a dict access, not a source hash)."""
        key = (filename, name, tuple(options))
        if key not in self._kernels:
            prg = self.program(_read_source(filename), options, filename)
            self._kernels[key] = self.cl.Kernel(prg, name)
        return self._kernels[key]

    def run(self, kernel: Any, size: Sequence[int], *args: Any) -> None:
        """Enqueue ``kernel`` over the global ``size`` (work-group size left to the driver)."""
        self._events.append(("kernel", kernel(self.queue, tuple(size), None, *args)))

    # Buffers --------------------------------------------------------------------------------------------
    def buffer(self, role: str, nbytes: int) -> Any:
        """The device buffer of ``role``, reused across frames while it holds ``nbytes``, else replaced by
        a larger one: one buffer per role, as large as the largest frame seen (candidate counts vary per
        frame, so a buffer per exact size would leak)."""
        buf = self._buffers.get(role)
        if buf is None or buf.size < nbytes:
            mf = self.cl.mem_flags
            flags = mf.READ_WRITE | (mf.ALLOC_HOST_PTR if self.zero_copy else 0)
            buf = self._buffers[role] = self.cl.Buffer(self.context, flags, max(int(nbytes), 1))
        return buf

    def constant(self, key: tuple[Any, ...], data: np.ndarray) -> Any:
        """A read-only buffer holding ``data`` (tap tables, LUTs, anchors), uploaded once per ``key``."""
        if key not in self._constants:
            mf = self.cl.mem_flags
            array = np.ascontiguousarray(data)
            self._constants[key] = self.cl.Buffer(self.context, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=array)
        return self._constants[key]

    def upload(self, role: str, data: np.ndarray) -> Any:
        """Copy ``data`` into the reused buffer of ``role``: map/unmap when zero-copy, else a write."""
        flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        buf = self.buffer(role, flat.nbytes)
        if flat.nbytes == 0:
            return buf
        if self.zero_copy:
            mapped, ev = self.cl.enqueue_map_buffer(self.queue, buf, self.cl.map_flags.WRITE_INVALIDATE_REGION, 0,
                                                    flat.shape, np.uint8, is_blocking=True)
            start = time.perf_counter()
            mapped[...] = flat
            self._host_s["upload"] += time.perf_counter() - start
            self._events += [("upload", ev), ("upload", mapped.base.release(self.queue))]
        else:
            self._keep.append(flat)
            self._events.append(("upload", self.cl.enqueue_copy(self.queue, buf, flat, is_blocking=False)))
        return buf

    def download(self, buf: Any, count: int, dtype: Any) -> np.ndarray:
        """The first ``count`` items of ``buf`` as a new host array (the buffer is reused by the next frame)."""
        out = np.empty(count, dtype)
        if out.nbytes == 0:
            return out
        if self.zero_copy:
            mapped, ev = self.cl.enqueue_map_buffer(self.queue, buf, self.cl.map_flags.READ, 0, (count,), dtype,
                                                    is_blocking=True)
            start = time.perf_counter()
            out[...] = mapped
            self._host_s["download"] += time.perf_counter() - start
            self._events += [("download", ev), ("download", mapped.base.release(self.queue))]
        else:
            self._events.append(("download", self.cl.enqueue_copy(self.queue, out, buf, is_blocking=True)))
        return out

    # Timing ---------------------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start a frame's timing record."""
        self._events.clear()
        self._keep.clear()
        self._host_s = {"upload": 0.0, "download": 0.0}

    def end(self) -> dict[str, float]:
        """Wait for the queue and sum the frame's profiling events (ns) by kind into milliseconds; mapped
        transfers add the host's copy into or out of the mapping, which is the transfer there."""
        self.queue.finish()
        ms = {"upload": self._host_s["upload"] * 1e3, "kernel": 0.0, "download": self._host_s["download"] * 1e3}
        for kind, ev in self._events:
            ms[kind] += (ev.profile.end - ev.profile.start) * 1e-6
        self._events.clear()
        self._keep.clear()
        self.timings = {"upload_ms": ms["upload"], "kernel_ms": ms["kernel"], "download_ms": ms["download"]}
        return self.timings

    def close(self) -> None:
        """Wait for queued work, then release buffers and programs; idempotent."""
        if self._programs or self._buffers:
            self.queue.finish()
        for store in (self._buffers, self._constants, self._kernels, self._programs):
            store.clear()
        self._events.clear()
        self._keep.clear()


def open_runtime(platform: str | None = None, device: str | None = None, zero_copy: bool | None = None) -> Runtime:
    """Import pyopencl, pick the device (``select_device``) and open a ``Runtime`` on it."""
    try:
        import pyopencl as cl
    except ImportError as exc:
        raise KernelError(MISSING_PYOPENCL) from exc
    plat, dev = select_device(cl, platform, device)
    try:
        return Runtime(cl, plat, dev, zero_copy)
    except cl.Error as exc:
        raise KernelError(f"OpenCL device {dev.name.strip()} could not open a context: {exc}") from exc
