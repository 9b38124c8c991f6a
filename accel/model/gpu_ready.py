"""GPU readiness: what in a graph LiteRT's GPU path cannot take, why, and what to do, for ``accel inspect`` and
for the record of a GPU variant that failed (the runtime itself says only "Failed to modify graph with
delegate").

Findings, each with ``repaired``: whether litert-gpu's defaults (``split = true``, ``prepare = "auto"``) fix
it without changing the model's answers:

* run-time shape arithmetic (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE/TILE, left by exports with a dynamic
  batch): no SHAPE kernel, and RESHAPE/TILE need constant shapes, so the graph cannot be partitioned even
  with CPU fallback; ``accel.model.fold`` folds it into constants;
* TFLite_Detection_PostProcess: a custom op the GPU cannot run (CompiledModel aborts under GPU|CPU); split
  off and decoded by the kernel set exactly as the op;
* every other op the GPU delegate has no kernel for (``accel.model.gpu_ops``), with its reason;
* a batch other than 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from accel.model.edit import POSTPROCESS_OP
from accel.model.flatbuffer import Flatbuffer
from accel.model.fold import FoldPlan, plan_fold
from accel.model.gpu_ops import gpu_support

__all__ = ["Finding", "explain", "gpu_readiness"]

_SHAPE_WHY = ("LiteRT's GPU accelerator has no SHAPE kernel and takes RESHAPE and TILE only with constant shape "
              "inputs, so it cannot partition the graph: 'Failed to modify graph with delegate', with or without "
              "fallback = true")


@dataclass(frozen=True)
class Finding:
    """One thing the GPU path cannot take: ``what`` (ops or pattern and count), ``why``, ``fix`` (what to do),
    ``repaired`` (litert-gpu's defaults fix it: split = true, prepare = "auto")."""

    what: str
    why: str
    fix: str
    repaired: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _patterns(fb: Flatbuffer, plan: FoldPlan) -> str:
    """Where the SHAPE ops' values go: the folded ops they pass through and the ops that finally read them,
    e.g. "through STRIDED_SLICE, PACK into RESHAPE (15x), TILE (5x)"."""
    folded = set(plan.ops)
    through: dict[str, None] = {}
    into: Counter[str] = Counter()
    seen: set[int] = set()
    todo = [op.index for op in fb.ops if op.name == "SHAPE"]
    while todo:
        op = fb.ops[todo.pop(0)]
        for i in sorted({i for t in op.outputs for i, _ in fb.readers(t)} - seen):
            seen.add(i)
            if i in folded:
                through.setdefault(fb.ops[i].name)
                todo.append(i)
            else:
                into[fb.ops[i].name] += 1
    via = f"through {', '.join(through)} " if through else ""
    return via + "into " + (", ".join(f"{name} ({n}x)" for name, n in into.most_common()) or "graph outputs")


def gpu_readiness(fb: Flatbuffer, plan: FoldPlan | None = None) -> list[Finding]:
    """The findings for ``fb``'s first subgraph (``plan``: ``plan_fold(fb)`` when not given)."""
    plan = plan if plan is not None else plan_fold(fb)
    ops = Counter(op.name for op in fb.ops)
    findings: list[Finding] = []
    if ops.get("SHAPE"):
        folded = sum(1 for i in plan.ops if fb.ops[i].name == "SHAPE")
        dynamic = any(d < 0 for t in fb.inputs for d in fb.signature(t.index))
        why = _SHAPE_WHY + (" (the export left the batch dimension dynamic, -1, so the converter kept these "
                            "computations)" if dynamic else "")
        findings.append(Finding(
            f"{ops['SHAPE']} SHAPE ops compute shapes at run time, {_patterns(fb, plan)}", why,
            'prepare = "auto" (the default) folds them into constants' + (", the batch pinned to 1" if plan.pin
                                                                          else "")
            + "; or re-export with a fixed batch (an input spec of [1, H, W, 3])", folded == ops["SHAPE"]))
    if ops.get(POSTPROCESS_OP):
        findings.append(Finding(
            f"{POSTPROCESS_OP} (custom op)", "no GPU kernel; LiteRT's CompiledModel aborts on it under GPU|CPU",
            "split = true (the default) runs the network on the GPU and decodes in the kernel set exactly as the "
            "op does", True))
    left = Counter(ops)
    left.subtract(Counter(fb.ops[i].name for i in plan.ops))
    support = gpu_support({k: v for k, v in left.items() if v > 0})
    for name, count in sorted(support["cpu"].items()):
        if name in ("SHAPE", POSTPROCESS_OP):
            continue
        findings.append(Finding(
            f"{name} ({count}x)", support["notes"].get(name, "no GPU kernel")
            + " (the TFLite GPU delegate's op table; LiteRT's accelerator may take more)",
            "where the GPU refuses it, fallback = true runs it on the CPU (the GPU part is cut around it, with a "
            "copy each way; without fallback the model does not load); or replace it in the export", False))
    batch = fb.inputs[0].shape[0] if fb.inputs and fb.inputs[0].shape else 1
    if batch != 1:
        findings.append(Finding(f"batch {batch}", "the GPU delegate runs batch 1 only",
                                "re-export with batch 1", False))
    return findings


def explain(findings: list[Finding]) -> str:
    """One sentence for a failed GPU variant: what in the graph the GPU refuses and what to do ("" when
    nothing is known). The findings are those of the file that ran: what the defaults repaired is no longer
    in it, and what is there they did not repair (a rewrite turned off, or one that could not apply)."""
    if not findings:
        return ""
    return "GPU readiness: " + "; ".join(f"{f.what}: {f.why}; fix: {f.fix}" for f in findings)
