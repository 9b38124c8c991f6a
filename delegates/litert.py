"""LiteRT's classic Interpreter on the CPU: ``cpu-reference`` (builtin kernels) and ``xnnpack``.

The runtime is the first of ``ai-edge-litert``, ``tflite-runtime`` and ``tensorflow.lite`` that imports;
which one ran is recorded in every result. The Interpreter applies XNNPACK by default on one thread
(shared/FACTS.md); ``cpu-reference`` turns it off with ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from accel.core.errors import DelegateError, ModelError, OptionError
from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, RunnerBase, Variant
from accel.model import ModelInfo

_RUNTIMES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)


@dataclass(frozen=True)
class Runtime:
    """An importable TFLite runtime: its name, version and interpreter module."""

    name: str
    version: str
    module: Any

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def find_runtime() -> Runtime:
    """The first TFLite runtime that imports, or ``DelegateError`` with the install command."""
    import importlib
    from importlib import metadata

    problems = []
    for dist, module_name in _RUNTIMES:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken install is as unusable as a missing one
            problems.append(f"{dist}: {exc}")
            continue
        try:
            version = metadata.version(dist if dist != "tensorflow" else "tensorflow-cpu")
        except metadata.PackageNotFoundError:
            version = getattr(module, "__version__", "unknown")
        return Runtime(dist, version, module)
    raise DelegateError("no TFLite runtime imports (" + "; ".join(problems) + "): pip install ai-edge-litert")


class InterpreterRunner(RunnerBase):
    """A model opened in the classic ``Interpreter``."""

    def __init__(self, model: ModelInfo, *, threads: int | None, xnnpack: bool) -> None:
        rt = find_runtime()
        self.runtime = rt.label
        kwargs: dict[str, Any] = {"model_path": str(model.path), "num_threads": threads}
        if not xnnpack:
            kwargs["experimental_op_resolver_type"] = rt.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._it = rt.module.Interpreter(**kwargs)
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{rt.label} cannot load {model.path.name}: {first}") from exc
        self._inputs = [d["index"] for d in self._it.get_input_details()]
        self._outputs = [d["index"] for d in self._it.get_output_details()]
        self.placement = self._placement(model, xnnpack)

    def _placement(self, model: ModelInfo, xnnpack: bool) -> Placement:
        if not xnnpack:
            return Placement("cpu-builtin", model.op_count, model.op_count, {}, "TFLite builtin kernels")
        nodes = self._it._get_ops_details()
        original = [n for n in nodes if n["op_name"] != "DELEGATE"]
        partitions = [n for n in nodes if n["op_name"] == "DELEGATE"]
        taken = delegated_nodes(original, partitions)
        fallback = Counter(n["op_name"] for n in original if n["index"] not in taken)
        detail = f"{len(partitions)} XNNPACK partition(s)"
        return Placement("xnnpack", len(taken), len(original), dict(fallback), detail)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        it = self._it
        for index, tensor in zip(self._inputs, inputs, strict=False):
            it.set_tensor(index, tensor)
        t0 = time.perf_counter()
        it.invoke()
        self.last_invoke_s = time.perf_counter() - t0
        return [it.get_tensor(i) for i in self._outputs]

    def _close(self) -> None:
        self._it = None


def delegated_nodes(original: list[dict[str, Any]], partitions: list[dict[str, Any]]) -> set[int]:
    """Indices of the original nodes a delegate took over. The Interpreter lists the original nodes and
    then one DELEGATE node per partition; a partition's nodes are those reached walking back from its
    outputs to its inputs."""
    producer = {int(t): n for n in original for t in n["outputs"]}
    taken: set[int] = set()
    for part in partitions:
        boundary = {int(t) for t in part["inputs"]}
        stack = [int(t) for t in part["outputs"]]
        while stack:
            node = producer.get(stack.pop())
            if node is None or node["index"] in taken:
                continue
            taken.add(node["index"])
            stack.extend(int(t) for t in node["inputs"] if int(t) >= 0 and int(t) not in boundary)
    return taken


THREADS_PER_CORE = 4  # the most threads per core a variant may ask for: past that they only wait for each other


def threads_option(options: Mapping[str, Any], key: str) -> list[int]:
    value = options.get("threads", [])
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                              for v in value):
        raise OptionError(f"{key}.threads", f"expected a list of integers >= 1, got {value!r}", "threads")
    cores = os.cpu_count() or 1
    most = THREADS_PER_CORE * cores
    if value and max(value) > most:  # 100000 threads segfault the runtime when it cannot start them
        raise OptionError(f"{key}.threads", f"expected at most {most} threads ({THREADS_PER_CORE} per core, "
                          f"{cores} cores here), got {max(value)}", "threads")
    return value or list(range(1, cores + 1))


def check_keys(options: Mapping[str, Any], key: str, known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionError(key, f"unknown option {unknown[0]!r}; known: {', '.join(sorted(known))}", unknown[0])


class _LiteRtCpu(DelegateBase):
    name = ""
    summary = ""
    _xnnpack = True
    _sweep = True  # no `threads` option: sweep 1..cores (False: one thread)

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        key = f"delegates.{self.name}"
        check_keys(options, key, {"threads"})
        threads = threads_option(options, key) if "threads" in options or self._sweep else [1]
        return [Variant(self.name, (("threads", t),)) for t in threads]

    def probe(self) -> Availability:
        try:
            rt = find_runtime()
        except DelegateError as exc:
            return Availability.no(str(exc))
        return Availability.yes(rt.label)

    def open(self, model: ModelInfo, variant: Variant) -> InterpreterRunner:
        return InterpreterRunner(model, threads=variant.option("threads"), xnnpack=self._xnnpack)


class CpuReferenceDelegate(_LiteRtCpu):
    """TFLite's builtin CPU kernels with XNNPACK off: the correctness reference for every other backend."""

    name = "cpu-reference"
    summary = "TFLite builtin CPU kernels, XNNPACK off (the reference every backend is compared with)"
    _xnnpack = False
    _sweep = False


class XnnpackDelegate(_LiteRtCpu):
    """The Interpreter's default CPU path: the XNNPACK delegate, swept over thread counts."""

    name = "xnnpack"
    summary = "XNNPACK CPU delegate (LiteRT's default), one variant per thread count"
    _xnnpack = True
