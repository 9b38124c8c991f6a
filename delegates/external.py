"""Delegates loaded from a shared library into the classic Interpreter: ``gpu-delegate`` and ``external``.

Both go through ``load_delegate(path, options)`` (the TFLite external-delegate ABI,
``tflite_plugin_create_delegate``); its options are strings. ``gpu-delegate`` is TensorFlow's classic GPU
delegate (``libtensorflowlite_gpu_delegate.so``, built by the user: no wheel ships it) with friendly options
mapped onto its integer keys; ``external`` runs any such library (Edge TPU, vendor NPUs, a test stub) with its
options passed verbatim, one variant per ``[delegates.external.NAME]`` table.

Ops the delegate does not take run on the CPU as LiteRT does by default: XNNPACK on one thread (``threads``
changes it). The delegate is applied when the Interpreter is built and XNNPACK only at ``allocate_tensors``,
so the DELEGATE nodes present before allocation are the library's: placement counts only those.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accel.core.errors import DelegateError, ModelError, OptionError
from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, Variant
from accel.delegates.litert import InterpreterRunner, check_keys, delegated_nodes, find_runtime, threads_option
from accel.model import ModelInfo

__all__ = ["ExternalDelegate", "GpuDelegate", "find_gpu_delegate", "gpu_delegate_options"]

GPU_LIBRARY = "libtensorflowlite_gpu_delegate.so"
GPU_BUILD = ("bazel build -c opt --config=elinux_aarch64 --copt=-DCL_DELEGATE_NO_GL "
             "//tensorflow/lite/delegates/gpu:libtensorflowlite_gpu_delegate.so")
_PRECISION = {"fp16": "1", "fp32": "0"}  # is_precision_loss_allowed
_PREFERENCE = {"fast-single-answer": "0", "sustained-speed": "1", "balanced": "2"}
_PRIORITY = {"auto": "0", "max-precision": "1", "min-latency": "2", "min-memory": "3"}
_BACKEND_FLAG = {"opencl": 2, "gl": 4}
_FLAG_QUANT, _FLAG_SERIALIZE = 1, 8
_GPU_KEYS = {"library", "precision", "inference_preference", "inference_priority1", "inference_priority2",
             "inference_priority3", "backend", "quantized", "max_delegated_partitions", "serialization_dir",
             "model_token", "threads"}


@dataclass(frozen=True)
class LibraryVariant(Variant):
    """A variant labelled by its instance name (``external edgetpu``) rather than by every option."""

    title: str = ""

    @property
    def label(self) -> str:
        threads = self.option("threads", 1)
        return " ".join(p for p in (self.delegate, self.title, f"threads={threads}" if threads != 1 else "") if p)


def search_dirs() -> list[Path]:
    """Where ``gpu-delegate`` looks for its library when ``library`` is not set, in order."""
    dirs = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    dirs += [Path("/usr/local/lib"), Path("/usr/lib/aarch64-linux-gnu"), Path.home() / ".local" / "lib", Path.cwd()]
    return dirs


def find_gpu_delegate() -> Path | None:
    """The first ``libtensorflowlite_gpu_delegate.so`` in ``search_dirs()``, or None."""
    for folder in search_dirs():
        candidate = folder / GPU_LIBRARY
        if candidate.is_file():
            return candidate
    return None


def gpu_delegate_options(friendly: Mapping[str, Any], model_token: str = "") -> dict[str, str]:
    """The classic GPU delegate's string options for accel's friendly ones. Only keys the user set are passed:
    some releases mis-parse keys, and each default is the delegate's own."""
    out: dict[str, str] = {}
    if "precision" in friendly:
        out["is_precision_loss_allowed"] = _PRECISION[friendly["precision"]]
    if "inference_preference" in friendly:
        out["inference_preference"] = _PREFERENCE[friendly["inference_preference"]]
    for n in (1, 2, 3):
        if f"inference_priority{n}" in friendly:
            out[f"inference_priority{n}"] = _PRIORITY[friendly[f"inference_priority{n}"]]
    if any(k in friendly for k in ("backend", "quantized", "serialization_dir")):
        # The delegate's default flags enable quantized models; setting the mask replaces them, so keep that bit.
        flags = _FLAG_QUANT if friendly.get("quantized", True) else 0
        flags |= _BACKEND_FLAG.get(friendly.get("backend", ""), 0)
        flags |= _FLAG_SERIALIZE if friendly.get("serialization_dir") else 0
        out["experimental_flags"] = str(flags)
    if "max_delegated_partitions" in friendly:
        out["max_delegated_partitions"] = str(friendly["max_delegated_partitions"])
    if friendly.get("serialization_dir"):
        out["serialization_dir"] = str(friendly["serialization_dir"])
        out["model_token"] = str(friendly.get("model_token") or model_token)
    return out


class LibraryRunner(InterpreterRunner):
    """A model in the classic Interpreter with a delegate loaded from ``library`` (``run`` is the
    Interpreter's)."""

    def __init__(self, model: ModelInfo, library: str, options: Mapping[str, str], *, accelerator: str,
                 threads: int) -> None:
        rt = find_runtime()
        self.runtime = rt.label
        if not Path(library).is_file():
            raise DelegateError(f"{accelerator}: library {library} not found")
        try:
            self._delegate = rt.module.load_delegate(library, dict(options))
        except ValueError as exc:  # the library's own report_error text follows load_delegate's first line
            said = str(exc).split("\n", 1)[1].strip() if "\n" in str(exc) else str(exc)
            raise DelegateError(f"{accelerator}: {library} refused to create the delegate with options "
                                f"{dict(options)}: {said or 'it reported no reason'}") from exc
        except (OSError, AttributeError) as exc:
            raise DelegateError(f"{accelerator}: {library} is not a TFLite external delegate "
                                f"(it must export tflite_plugin_create_delegate): {exc}") from exc
        try:
            self._it = rt.module.Interpreter(model_path=str(model.path), num_threads=threads,
                                             experimental_delegates=[self._delegate])
            ours = [n for n in self._it._get_ops_details() if n["op_name"] == "DELEGATE"]
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{accelerator}: {rt.label} cannot run {model.path.name} with {library}: "
                             f"{first}") from exc
        self._inputs = [d["index"] for d in self._it.get_input_details()]
        self._outputs = [d["index"] for d in self._it.get_output_details()]
        self.placement = self._library_placement(accelerator, {int(n["index"]) for n in ours})

    def _library_placement(self, accelerator: str, ours: set[int]) -> Placement:
        nodes = self._it._get_ops_details()
        original = [n for n in nodes if n["op_name"] != "DELEGATE"]
        partitions = [n for n in nodes if n["op_name"] == "DELEGATE" and int(n["index"]) in ours]
        cpu_parts = sum(1 for n in nodes if n["op_name"] == "DELEGATE") - len(partitions)
        taken = delegated_nodes(original, partitions)
        fallback = Counter(n["op_name"] for n in original if n["index"] not in taken)
        rest = f"the rest on the CPU ({cpu_parts} XNNPACK partition(s))"
        if not taken:
            detail = f"nothing was delegated: all {len(original)} ops ran on the CPU ({cpu_parts} XNNPACK partition(s))"
        else:
            detail = f"{len(partitions)} delegate partition(s); " + rest
        return Placement(accelerator, len(taken), len(original), dict(fallback), detail)

    def _close(self) -> None:
        # The Interpreter must go before the delegate it holds a pointer to.
        self._it = None
        self._delegate = None


def _probe_runtime() -> Availability | None:
    try:
        find_runtime()
    except DelegateError as exc:
        return Availability.no(str(exc))
    return None


def _choice(options: Mapping[str, Any], key: str, where: str, allowed: Mapping[str, Any]) -> None:
    if key in options and options[key] not in allowed:
        raise OptionError(f"{where}.{key}", f"expected one of {', '.join(allowed)}, got {options[key]!r}", key)


def _threads(options: Mapping[str, Any], where: str) -> list[int]:
    return threads_option(options, where) if "threads" in options else [1]


class GpuDelegate(DelegateBase):
    """TensorFlow's classic GPU delegate (OpenCL / OpenGL ES), loaded from ``libtensorflowlite_gpu_delegate.so``."""

    name = "gpu-delegate"
    summary = "classic TFLite GPU delegate (libtensorflowlite_gpu_delegate.so, OpenCL or OpenGL ES)"

    def __init__(self) -> None:
        self._library: str | None = None

    def probe(self) -> Availability:
        missing = _probe_runtime()
        if missing is not None:
            return missing
        if self._library is not None:
            if Path(self._library).is_file():
                return Availability.yes(self._library)
            return Availability.no(f"delegates.gpu-delegate.library: {self._library} not found")
        found = find_gpu_delegate()
        if found is not None:
            return Availability.yes(str(found))
        where = ", ".join(str(d) for d in search_dirs())
        return Availability.no(f"{GPU_LIBRARY} not found in {where}; build it with {GPU_BUILD} "
                               "(from the same TensorFlow commit as the runtime), "
                               "or set delegates.gpu-delegate.library")

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        where = f"delegates.{self.name}"
        check_keys(options, where, _GPU_KEYS)
        precisions = options.get("precision", [])
        precisions = [precisions] if isinstance(precisions, str) else precisions
        if not isinstance(precisions, list) or not all(p in _PRECISION for p in precisions):
            raise OptionError(f"{where}.precision", f"expected fp16 or fp32 (or a list of them), got {precisions!r}",
                              "precision")
        _choice(options, "inference_preference", where, _PREFERENCE)
        for n in (1, 2, 3):
            _choice(options, f"inference_priority{n}", where, _PRIORITY)
        _choice(options, "backend", where, _BACKEND_FLAG)
        if "quantized" in options and not isinstance(options["quantized"], bool):
            raise OptionError(f"{where}.quantized", f"expected true or false, got {options['quantized']!r}",
                              "quantized")
        partitions = options.get("max_delegated_partitions", 1)
        if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
            raise OptionError(f"{where}.max_delegated_partitions", f"expected an integer >= 1, got {partitions!r}",
                              "max_delegated_partitions")
        for key in ("library", "serialization_dir", "model_token"):
            if key in options and not isinstance(options[key], str):
                raise OptionError(f"{where}.{key}", f"expected a string, got {options[key]!r}", key)
        self._library = options.get("library") or None
        fixed = {k: v for k, v in options.items() if k not in ("precision", "threads", "library")}
        out: list[Variant] = []
        for threads in _threads(options, where):
            for precision in precisions or [None]:
                friendly = {**({"precision": precision} if precision else {}), **fixed}
                title = " ".join(f"{k}={v}" for k, v in friendly.items())
                opts = (("library", self._library or ""), ("threads", threads), *sorted(friendly.items()))
                out.append(LibraryVariant(self.name, opts, title))
        return out

    def cache_path(self, model: ModelInfo, variant: Variant) -> Path | None:
        """The kernel-serialization folder (``serialization_dir``) the delegate reads and writes, or None."""
        folder = variant.option("serialization_dir")
        return Path(folder) if folder else None

    def open(self, model: ModelInfo, variant: Variant) -> LibraryRunner:
        opts = dict(variant.options)
        library = opts.pop("library", "") or find_gpu_delegate()
        threads = opts.pop("threads", 1)
        if not library:
            raise DelegateError(f"{GPU_LIBRARY} not found; build it with {GPU_BUILD}")
        token = "accel-" + hashlib.sha256(Path(model.path).read_bytes()).hexdigest()[:16]
        return LibraryRunner(model, str(library), gpu_delegate_options(opts, token), accelerator="gpu-delegate",
                             threads=threads)


class ExternalDelegate(DelegateBase):
    """Any TFLite external-delegate library, one variant per ``[delegates.external.NAME]`` table."""

    name = "external"
    summary = "a TFLite external delegate library (Edge TPU, vendor NPU, ...) with its options verbatim"

    def probe(self) -> Availability:
        return _probe_runtime() or Availability.yes("[delegates.external.NAME] library = \"path/to/delegate.so\"")

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        where = f"delegates.{self.name}"
        if "library" in options or "options" in options:  # a flat table: one unnamed instance
            instances: dict[str, Any] = {"": dict(options)}
        else:
            instances = dict(options)
        if not instances:
            raise OptionError(where, "no library; add a table [delegates.external.NAME] with "
                              "library = \"path/to/delegate.so\" and optional options = {key = \"value\"}")
        out: list[Variant] = []
        for name, table in instances.items():
            at = f"{where}.{name}" if name else where
            if not isinstance(table, Mapping):
                raise OptionError(f"{where}.{name}", f"expected a table with library and options, got {table!r}",
                                  name)
            check_keys(table, at, {"library", "options", "threads"})
            library = table.get("library")
            if not isinstance(library, str) or not library:
                raise OptionError(f"{at}.library", f"expected the path of the delegate's shared library, got "
                                  f"{library!r}", "library")
            given = table.get("options", {})
            if not isinstance(given, Mapping) or not all(isinstance(v, (str, int, float, bool))
                                                         for v in given.values()):
                raise OptionError(f"{at}.options", f"expected a table of strings, e.g. {{verbose = \"1\"}}, "
                                  f"got {given!r}", "options")
            if not Path(library).is_file():  # found now, not when the variant runs
                raise OptionError(f"{at}.library", f"{library} not found (give the path of the delegate's shared "
                                  "library, e.g. /usr/lib/aarch64-linux-gnu/libedgetpu.so.1)", "library")
            passed = tuple(sorted((str(k), _text(v)) for k, v in given.items()))
            for threads in _threads(table, at):
                opts = (("instance", name), ("library", library), ("options", passed), ("threads", threads))
                out.append(LibraryVariant(self.name, opts, name or Path(library).name))
        return out

    def open(self, model: ModelInfo, variant: Variant) -> LibraryRunner:
        title = variant.option("instance") or Path(variant.option("library")).name
        return LibraryRunner(model, variant.option("library"), dict(variant.option("options", ())),
                             accelerator=f"external {title}", threads=variant.option("threads", 1))


def _text(value: Any) -> str:
    """A TOML value as the delegate reads it: booleans as 'true'/'false', as TFLite's own tools write them."""
    return str(value).lower() if isinstance(value, bool) else str(value)
