"""Per-op profiles from the runtime's own profiler events, summed as TFLite's ``benchmark_model
--enable_op_profiling`` sums them: per op in run order (mean and p50 ms, %, cdf %, times called), the top ops
by time, the summary by op type (count, avg ms, avg %, cdf %, times called), the ops left to the builtin CPU
kernels flagged, and how the per-op times sum against the whole invoke (the raw ratio, never scaled).

Events are ``(tag, type, elapsed_us, index)`` (``accel.delegates.litert_profile.Event``): type 1 the phases
(``Invoke`` the whole inference), 2 a builtin op (index: its TFLite node), 4 a delegate op, 8 an XNNPACK
operator (index: within its partition; a partition's indices start again at 0, so ops are keyed by their
position in the run).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OpRow", "Profile", "TypeRow", "profile_of", "runs_of"]

_INVOKE, _BUILTIN, _DELEGATE, _XNNPACK = 1, 2, 4, 8
_KIND = {_BUILTIN: "builtin", _DELEGATE: "delegate", _XNNPACK: "xnnpack"}


@dataclass(frozen=True)
class OpRow:
    """One op of the run order: its position, name, who ran it (xnnpack, builtin, delegate), its TFLite node
    (builtin ops) or partition and index in it (XNNPACK), its times over the runs."""

    position: int
    op: str
    kind: str
    node: int | None
    partition: int | None
    mean_ms: float
    p50_ms: float
    percent: float
    cdf_percent: float
    times_called: int


@dataclass(frozen=True)
class TypeRow:
    """One op type: how many ops of it a run has, their summed mean time per run, share, cdf, times called."""

    op: str
    count: int
    avg_ms: float
    percent: float
    cdf_percent: float
    times_called: int


@dataclass(frozen=True)
class Profile:
    """A variant's per-op profile over ``runs`` invokes."""

    runs: int
    invoke_mean_ms: float
    ops_mean_ms: float
    coverage: float  # the per-op times' sum / the whole invoke's, raw
    run_order: tuple[OpRow, ...]
    by_type: tuple[TypeRow, ...]
    left_to_cpu: tuple[OpRow, ...] = field(default=())  # the ops the builtin kernels ran, by node index

    def top(self, n: int = 20) -> list[OpRow]:
        """benchmark_model's "Top by Computation Time": the ``n`` slowest ops, cdf over that order."""
        rows = sorted(self.run_order, key=lambda r: -r.mean_ms)[:n]
        total = self.ops_mean_ms or 1.0
        out, acc = [], 0.0
        for r in rows:
            acc += r.mean_ms
            out.append(OpRow(r.position, r.op, r.kind, r.node, r.partition, r.mean_ms, r.p50_ms, r.percent,
                             100 * acc / total, r.times_called))
        return out

    def to_json(self) -> dict[str, Any]:
        def rows(items: Iterable[Any]) -> list[dict[str, Any]]:
            return [dict(vars(r)) for r in items]

        return {"runs": self.runs, "invoke_mean_ms": self.invoke_mean_ms, "ops_mean_ms": self.ops_mean_ms,
                "coverage": self.coverage, "run_order": rows(self.run_order), "by_type": rows(self.by_type),
                "left_to_cpu": rows(self.left_to_cpu)}


def runs_of(events: Sequence[Any]) -> list[tuple[float, list[tuple[str, int, int | None, int | None, float]]]]:
    """Each invoke's time (us) and its ops in order: (op, type, node, partition, us). A run starts at each
    ``Invoke`` phase event; op events before the first are dropped (the model's preparation)."""
    runs: list[tuple[float, list[tuple[str, int, int | None, int | None, float]]]] = []
    partition, last_index, last_type = -1, -1, 0
    for e in events:
        if e.type == _INVOKE:
            if e.tag == "Invoke":
                runs.append((float(e.elapsed_us), []))
                partition, last_index, last_type = -1, -1, 0
            continue
        if not runs or e.type not in _KIND:
            continue
        if e.type == _XNNPACK:
            if last_type != _XNNPACK or e.index <= last_index:
                partition += 1
            last_index = e.index
            runs[-1][1].append((e.tag, e.type, None, partition, float(e.elapsed_us)))
        else:
            runs[-1][1].append((e.tag, e.type, e.index, None, float(e.elapsed_us)))
        last_type = e.type
    return runs


def profile_of(events: Sequence[Any]) -> Profile | None:
    """The profile of a variant's events; None when they hold no invoke with ops."""
    runs = [r for r in runs_of(events) if r[1]]
    if not runs:
        return None
    shapes = {tuple((op, t) for op, t, *_ in ops) for _, ops in runs}
    if len(shapes) > 1:  # every run must walk the same ops; keep the runs shaped as the first
        first = tuple((op, t) for op, t, *_ in runs[0][1])
        runs = [r for r in runs if tuple((op, t) for op, t, *_ in r[1]) == first]
    n = len(runs)
    invoke = statistics.fmean(us for us, _ in runs) / 1000
    per_op = list(zip(*[[us for *_, us in ops] for _, ops in runs], strict=True))
    means = [statistics.fmean(times) / 1000 for times in per_op]
    total = sum(means)
    order, acc = [], 0.0
    for i, ((op, kind, node, part, _), mean, times) in enumerate(zip(runs[0][1], means, per_op, strict=True)):
        acc += mean
        order.append(OpRow(i, op, _KIND[kind], node, part, mean, statistics.median(times) / 1000,
                           100 * mean / total if total else 0.0, 100 * acc / total if total else 0.0, n))
    types: dict[str, list[OpRow]] = {}
    for row in order:
        types.setdefault(row.op, []).append(row)
    by_type, acc = [], 0.0
    for op, rows in sorted(types.items(), key=lambda kv: -sum(r.mean_ms for r in kv[1])):
        ms = sum(r.mean_ms for r in rows)
        acc += ms
        by_type.append(TypeRow(op, len(rows), ms, 100 * ms / total if total else 0.0,
                               100 * acc / total if total else 0.0, len(rows) * n))
    left = tuple(r for r in order if r.kind == "builtin")
    return Profile(n, invoke, total, total / invoke if invoke else 0.0, tuple(order), tuple(by_type), left)
