"""LiteRT's GPU accelerator through ``CompiledModel``: ``litert-gpu``.

The wheel's accelerator is WebGPU (Dawn) over Vulkan; drivers abort the process rather than fail, so the
probe compiles a model in a subprocess. Models ending in ``TFLite_Detection_PostProcess`` abort under
``GPU|CPU`` (shared/FACTS.md): ``prepare_model`` splits the op off (``accel.model.strip_postprocess``),
so the network runs on the GPU and decoding happens in the kernel set, as for the ssd-raw family. The caller
(compare) must run the prepared model; ``open`` refuses a model that still has the op, unless the variant
asks for it with ``split = false`` (to measure the whole graph, abort included, in its worker).

``prepare = "auto"`` (the default) then folds what the graph computes from constants and static shapes
(``accel.model.fold``: exports with a dynamic batch compute their reshape targets at run time, which the
accelerator cannot partition); ``prepare = "none"`` runs the file as it is. Prepared files are cached by the
sha256 of the model they were made from. A model the GPU refuses fails with ``accel.model.gpu_ready``'s
explanation after the runtime's words.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from accel.core.errors import DelegateError, ModelError, OptionError
from accel.core.plugins import Availability
from accel.delegates import DelegateBase, Placement, Variant
from accel.delegates.litert import check_keys
from accel.delegates.litert_compiled import CompiledModelRunner, compiled_model_available
from accel.host.cpu import missing_dot_product
from accel.model import ModelInfo, cached, default_model_path, load_model
from accel.model.flatbuffer import read_flatbuffer
from accel.model.fold import fold_constants, plan_fold
from accel.model.gpu_ready import explain, gpu_readiness

__all__ = ["LiteRtGpuDelegate", "fold_model", "prepare_model"]

_POSTPROCESS = "TFLite_Detection_PostProcess"
# In the names of cached prepared files: raised whenever what the split or the fold writes changes, so a file
# an older accel made for the same model is never reused (2: ops after the post-process op are split off too).
_SPLIT_FORMAT, _FOLD_FORMAT = 2, 1
_PROBE_TIMEOUT_S = 120.0
# Compiles a model for the GPU alone (no CPU fallback): success means an adapter exists and took the graph.
_PROBE = """
import sys
from ai_edge_litert.compiled_model import CompiledModel
from ai_edge_litert.hardware_accelerator import HardwareAccelerator
from ai_edge_litert.options import Options
m = CompiledModel.from_file(sys.argv[1], options=Options(hardware_accelerators=HardwareAccelerator.GPU))
print("fully_accelerated", bool(m.is_fully_accelerated()))
"""


def cache_dir() -> Path:
    """Where split models are kept, keyed by the original model's sha256."""
    return cached.cache_dir("split")


def _cached(path: Path, make: Callable[[], bytes]) -> Path:
    """``accel.model.cached.cached_file``; ``DelegateError`` when the cache folder cannot be written."""
    try:
        return cached.cached_file(path, make)
    except OSError as exc:
        raise DelegateError(f"litert-gpu: cannot write its prepared model {path}: {exc.strerror or exc}; make "
                            f"{path.parent} writable (or set HOME elsewhere)") from exc


def fold_model(model: ModelInfo, folder: Path | None = None) -> ModelInfo:
    """``model`` with what its graph computes from constants and static shapes folded into constants
    (``accel.model.fold``), or ``model`` itself when there is nothing to fold."""
    data = Path(model.path).read_bytes()
    plan = plan_fold(read_flatbuffer(data))
    if not plan:
        return model
    path = _cached((folder or cache_dir()) / f"{model.sha256[:16]}-{Path(model.path).stem}-folded{_FOLD_FORMAT}.tflite",
                   lambda: fold_constants(data, plan)[0])
    return load_model(path, model.family.value)


def prepare_model(model: ModelInfo, folder: Path | None = None) -> ModelInfo:
    """The model litert-gpu runs: ``model`` itself, or for a post-process detector its network alone
    (outputs: box encodings, class scores; the op and the re-encoding ops after it removed) described as
    ssd-raw with the original's anchors, all the op's options (``decode_hints["postprocess"]``) and what the
    ops after it did (``decode_hints["postprocess_after"]``), so that it decodes as the whole graph did."""
    if _POSTPROCESS not in model.ops:
        return model
    from accel.model import strip_postprocess

    path = _cached((folder or cache_dir()) / f"{model.sha256[:16]}-{Path(model.path).stem}-nopp{_SPLIT_FORMAT}.tflite",
                   lambda: strip_postprocess(Path(model.path).read_bytes()).model)
    split = load_model(path, "ssd-raw")  # anchors and the op's options come back from the file's metadata
    if "postprocess" not in split.decode_hints:
        raise DelegateError(f"litert-gpu: the split model {path} lost the options of {_POSTPROCESS}; delete it "
                            "and run again to split the model anew")
    return split


def _signal_name(number: int) -> str:
    try:
        return f"signal {number}, {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


class LiteRtGpuDelegate(DelegateBase):
    """LiteRT ``CompiledModel`` on the GPU accelerator (WebGPU over Vulkan), optionally with CPU fallback."""

    name = "litert-gpu"
    summary = "LiteRT CompiledModel on the GPU (WebGPU/Vulkan); fallback = true adds CPU for unsupported ops"

    def probe(self) -> Availability:
        importable = compiled_model_available()
        if not importable.ok:
            return importable
        cannot = missing_dot_product()  # checked first: the accelerator would die of SIGILL in the probe
        if cannot:
            return Availability.no(cannot)
        probe_model = prepare_model(load_model(default_model_path()))
        try:
            proc = subprocess.run([sys.executable, "-c", _PROBE, str(probe_model.path)], capture_output=True,
                                  text=True, timeout=_PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Availability.no(f"no Vulkan adapter (compiling a probe model took over {_PROBE_TIMEOUT_S:.0f} s)")
        except OSError as exc:  # e.g. "Exec format error": this Python cannot start a child here
            return Availability.no(f"the GPU probe could not start {sys.executable} ({exc.strerror or exc}); "
                                   "run accel with a Python that can start subprocesses")
        said = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        adapter = next((ln for ln in said if "adapter" in ln.lower() and "selected" in ln.lower()), "")
        if proc.returncode == 0 and "fully_accelerated True" in proc.stdout:
            return Availability.yes(adapter[adapter.find("Selected adapter"):] or "LiteRT GPU accelerator")
        last = said[-1] if said else ""
        if proc.returncode < 0:  # a crash says nothing about the driver: report it as it is
            return Availability.no(f"the GPU probe crashed ({_signal_name(-proc.returncode)})"
                                   + (f"; it printed: {last}" if last else ""))
        why = next((ln for ln in reversed(said) if "adapter" in ln.lower()), last)
        return Availability.no(f"no Vulkan adapter ({why or 'the GPU accelerator took no ops'}); install a Vulkan "
                               "driver with shaderUniform*ArrayDynamicIndexing (Pi 5 v3dv, or Mesa >= 24 lavapipe)")

    def prepare_model(self, model: ModelInfo, variant: Variant) -> ModelInfo:
        """The model ``variant`` runs in place of ``model`` (called by ``accel compare`` before running):
        the split network unless the variant has ``split = false``, with constants folded unless it has
        ``prepare = "none"``."""
        ran = prepare_model(model) if variant.option("split", True) else model
        return fold_model(ran) if variant.option("prepare", "auto") == "auto" else ran

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        key = f"delegates.{self.name}"
        check_keys(options, key, {"precision", "fallback", "split", "prepare"})
        precisions = options.get("precision", ["fp16"])
        precisions = [precisions] if isinstance(precisions, str) else precisions
        if not isinstance(precisions, list) or not precisions or not all(p in ("fp16", "fp32") for p in precisions):
            raise OptionError(f"{key}.precision", f"expected fp16 or fp32 (or a list of them), got {precisions!r}",
                              "precision")
        fallback = options.get("fallback", False)
        if not isinstance(fallback, bool):
            raise OptionError(f"{key}.fallback", f"expected true or false, got {fallback!r}", "fallback")
        split = options.get("split", True)
        if not isinstance(split, bool):
            raise OptionError(f"{key}.split", f"expected true or false, got {split!r}", "split")
        extra: tuple[tuple[str, object], ...] = (("fallback", True),) if fallback else ()
        extra += (("split", False),) if not split else ()
        prepare = options.get("prepare", "auto")
        if prepare not in ("auto", "none"):
            raise OptionError(f"{key}.prepare", f'expected "auto" or "none", got {prepare!r}', "prepare")
        extra += (("prepare", "none"),) if prepare == "none" else ()
        return [Variant(self.name, (("precision", p), *extra)) for p in precisions]

    def open(self, model: ModelInfo, variant: Variant) -> CompiledModelRunner:
        if _POSTPROCESS in model.ops and variant.option("split", True):
            raise DelegateError(f"litert-gpu: {model.path.name} ends in {_POSTPROCESS}, which aborts LiteRT's GPU "
                                "path; run the split model from accel.delegates.gpu.prepare_model instead")
        from ai_edge_litert.gpu_options import GpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options

        fallback = bool(variant.option("fallback", False))
        accel = HardwareAccelerator.GPU | HardwareAccelerator.CPU if fallback else HardwareAccelerator.GPU
        options = Options(hardware_accelerators=accel,
                          gpu_options=GpuOptions(enforce_f32=variant.option("precision") == "fp32"))
        try:
            runner = CompiledModelRunner(model, options, f"GPU{'|CPU' if fallback else ''}")
        except ModelError as exc:
            why = explain(gpu_readiness(read_flatbuffer(model.path)))  # the file that ran: what is left in it
            raise ModelError(f"{exc}. {why}" if why else str(exc)) from exc
        full = runner.fully_accelerated
        detail = f"CompiledModel GPU{'|CPU' if fallback else ''}, {variant.option('precision')}, " \
                 f"is_fully_accelerated={full}" + ("" if full else ": fell back to CPU for some or all ops")
        runner.placement = Placement("litert-gpu", model.op_count if full else 0, model.op_count, {}, detail)
        return runner
