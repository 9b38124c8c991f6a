"""LiteRT's new API, ``CompiledModel``, on the CPU: ``litert-cpu``.

It is what LiteRT's own ``benchmark_litert_model.py`` times, and the API whose GPU accelerator a later
backend uses. Input and output buffers are created once and reused; outputs come back in the graph's
output order (matched by tensor index, not by signature key order).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from accel.core.errors import DelegateError, ModelError, OptionError
from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, RunnerBase, Variant
from accel.delegates.litert import check_keys, threads_option
from accel.model import ModelInfo

_KERNEL_MODES = ("xnnpack", "reference", "builtin")


def compiled_model_available() -> Availability:
    """Whether LiteRT's CompiledModel API imports here."""
    try:
        from ai_edge_litert import compiled_model  # noqa: F401
    except ImportError as exc:
        return Availability.no(f"ai-edge-litert's CompiledModel does not import ({exc}): pip install ai-edge-litert")
    return Availability.yes("ai-edge-litert CompiledModel")


class CompiledModelRunner(RunnerBase):
    """A model compiled with ``CompiledModel`` for the accelerators in ``options`` (``what`` names them in
    messages); outputs in graph order, buffers reused. The delegate sets ``placement`` from
    ``fully_accelerated``."""

    def __init__(self, model: ModelInfo, options: Any, what: str) -> None:
        from importlib import metadata

        from ai_edge_litert.compiled_model import CompiledModel

        self.runtime = f"ai-edge-litert {metadata.version('ai-edge-litert')} CompiledModel"
        try:
            self._m = CompiledModel.from_file(str(model.path), options=options)
            self._sig = next(iter(self._m.get_signature_list()))
            ins = self._m.get_input_tensor_details(self._sig)
            outs = self._m.get_output_tensor_details(self._sig)
        except (RuntimeError, ValueError, StopIteration) as exc:
            raise ModelError(f"LiteRT CompiledModel ({what}) cannot load {model.path.name}: {exc}") from exc
        by_index = {d["index"]: name for name, d in outs.items()}
        missing = [t.name for t in model.outputs if t.index not in by_index]
        if missing or len(ins) != len(model.inputs):
            raise DelegateError(f"{model.path.name}: its signature does not expose the graph outputs {missing}")
        self._in_names = list(ins)
        self._out = [(by_index[t.index], int(np.prod(outs[by_index[t.index]]["shape"])), t.dtype,
                      tuple(outs[by_index[t.index]]["shape"])) for t in model.outputs]
        self._in_bufs = {n: self._m.create_input_buffer_by_name(self._sig, n) for n in self._in_names}
        self._out_bufs = {n: self._m.create_output_buffer_by_name(self._sig, n) for n, *_ in self._out}
        self.fully_accelerated = bool(self._m.is_fully_accelerated())
        self.placement = Placement(what, 0, model.op_count)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for name, tensor in zip(self._in_names, inputs, strict=False):
            self._in_bufs[name].write(tensor)
        t0 = time.perf_counter()
        self._m.run_by_name(self._sig, self._in_bufs, self._out_bufs)
        self.last_invoke_s = time.perf_counter() - t0
        return [self._out_bufs[n].read(size, dtype).reshape(shape) for n, size, dtype, shape in self._out]

    def _close(self) -> None:
        self._m.close()
        self._m = None


class LiteRtCpuDelegate(DelegateBase):
    """LiteRT ``CompiledModel`` on the CPU, swept over thread counts."""

    name = "litert-cpu"
    summary = "LiteRT CompiledModel API on the CPU (what benchmark_litert_model.py times)"

    def probe(self) -> Availability:
        return compiled_model_available()

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        key = f"delegates.{self.name}"
        check_keys(options, key, {"threads", "kernel_mode", "weight_cache"})
        mode = options.get("kernel_mode", "xnnpack")
        if mode not in _KERNEL_MODES:
            raise OptionError(f"{key}.kernel_mode", f"expected one of {', '.join(_KERNEL_MODES)}, got {mode!r}",
                              "kernel_mode")
        cache = options.get("weight_cache", "")
        if not isinstance(cache, str):
            raise OptionError(f"{key}.weight_cache", f"expected a folder path, got {cache!r}", "weight_cache")
        extra: tuple[tuple[str, Any], ...] = (("kernel_mode", mode),) if mode != "xnnpack" else ()
        extra += (("weight_cache", cache),) if cache else ()
        return [Variant(self.name, (("threads", t), *extra)) for t in threads_option(options, key)]

    def cache_path(self, model: ModelInfo, variant: Variant) -> Path | None:
        """The XNNPACK weight-cache file this variant reads and writes (``weight_cache`` folder), or None.
        One file per model and thread count: the cache holds packed weights for one graph."""
        folder = variant.option("weight_cache")
        if not folder:
            return None
        return Path(folder) / f"{model.path.stem}-{model.sha256[:16]}-t{variant.option('threads')}.xnnpack_cache"

    def open(self, model: ModelInfo, variant: Variant) -> CompiledModelRunner:
        from ai_edge_litert.cpu_kernel_mode import CpuKernelMode
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import CpuOptions, Options

        mode = variant.option("kernel_mode", "xnnpack")
        cache = self.cache_path(model, variant)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
        options = Options(hardware_accelerators=HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=variant.option("threads"),
                                                 kernel_mode=CpuKernelMode[mode.upper()],
                                                 xnnpack_weight_cache_path=str(cache or "")))
        runner = CompiledModelRunner(model, options, "CPU")
        runner.placement = Placement("litert-cpu", model.op_count, model.op_count, {},
                                     f"CompiledModel CPU, kernel mode {mode}, "
                                     f"is_fully_accelerated={runner.fully_accelerated}")
        return runner
