"""The decision a sweep is run for: of every model x variant x kernel set x execution that ran, the most
accurate one that sustains the rate the application needs here (``recommendation``), and which ones are
worth considering at all (``accuracy_front``: no other is both at least as accurate and at least as fast).

Accuracy is COCO AP (IoU 0.5:0.95) on the run's ``--dataset``; without a dataset nothing here guesses it:
the configurations are ranked by speed and the line says that accuracy needs a dataset. "Sustains N FPS"
means its measured FPS (the rate the pipeline delivered over the measured window) is at least N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from accel.report import figures as f
from accel.results.record import VariantRecord

__all__ = ["Choice", "accuracy_front", "choices", "decision_lines", "recommendation", "recommendations", "target_of"]


@dataclass(frozen=True)
class Choice:
    """One configuration that ran: its model, the record, and the figures the decision weighs."""

    model: str
    host: str
    record: VariantRecord
    fps: float
    ap: float | None  # COCO AP 0.5:0.95, with a dataset
    j_per_frame: float | None
    estimated: bool = False  # the J/frame is estimated from CPU load, not measured

    @property
    def label(self) -> str:
        return f"{self.model}: {f.name(self.record)}, {self.record.execution}"

    def figures(self) -> str:
        """'AP 31.2%, 24.5 FPS, 0.210 J/frame' (what was measured of it)."""
        parts = [f"AP {self.ap:.1%}"] if self.ap is not None else []
        parts.append(f"{self.fps:.1f} FPS")
        if self.j_per_frame is not None:
            parts.append(f"{'~' if self.estimated else ''}{self.j_per_frame:.3f} J/frame")
        return ", ".join(parts)


def choices(runs: Sequence[f.Run]) -> list[Choice]:
    """Every configuration of ``runs`` that ran a model and has an FPS (the null delegate runs none)."""
    out: list[Choice] = []
    for run in runs:
        for r in run.records:
            fps = f.fps(r)
            if not r.ok or r.delegate == "null" or fps is None:
                continue
            ap = (r.accuracy or {}).get("AP")
            out.append(Choice(f.model_name(run.doc), f.host(run.doc), r, float(fps),
                              float(ap) if isinstance(ap, int | float) else None, f.j_per_frame(r),
                              f.estimated(run.doc, r)))
    return out


def target_of(docs: Sequence[dict[str, Any]], given: float | None = None) -> float | None:
    """The target FPS: ``given`` (``accel report --target-fps``), else the first document's
    ``[report] target_fps``; None when neither sets one (0 means none)."""
    if given is not None:
        return given if given > 0 else None
    for doc in docs:
        value = f.get(doc, "config", "report", "target_fps")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def recommendation(found: Sequence[Choice], target: float, where: str = "here") -> str:
    """One line: the most accurate configuration of ``found`` that sustains ``target`` FPS (the faster of
    equally accurate ones); without accuracy, the fastest, saying that ranking by accuracy needs a dataset."""
    if not found:
        return f"No configuration ran {where}, so none can be recommended for {target:g} FPS."
    fast = [c for c in found if c.fps >= target]
    fastest = max(found, key=lambda c: c.fps)
    if not fast:
        return (f"No configuration sustains {target:g} FPS {where}: the fastest is {fastest.label} "
                f"({fastest.figures()}).")
    of = f"{len(fast)} of {len(found)} configurations sustain {target:g} FPS {where}"
    rated = [c for c in fast if c.ap is not None]
    if rated:
        best = max(rated, key=lambda c: (c.ap or 0.0, c.fps))
        unrated = f"; {len(fast) - len(rated)} of them have no AP" if len(rated) < len(fast) else ""
        return f"The most accurate configuration that sustains {target:g} FPS {where}: {best.label} " \
               f"({best.figures()}); {of}{unrated}."
    ranked = sorted(fast, key=lambda c: -c.fps)
    others = ", ".join(f"{c.label} ({c.fps:.1f})" for c in ranked[1:4])
    return (f"{of}; without a dataset accuracy is unknown (give --dataset to rank them by AP), so by speed: "
            f"the fastest is {ranked[0].label} ({ranked[0].figures()})" + (f", then {others}" if others else "")
            + ".")


def recommendations(runs: Sequence[f.Run], target: float) -> list[str]:
    """``recommendation`` per machine: one line for one machine, one per machine ('on pi5: ...') for runs
    from several (a Pi 4's sweep beside a Pi 5's)."""
    found = choices(runs)
    hosts = list(dict.fromkeys(f.host(run.doc) for run in runs))
    if len(hosts) == 1:
        return [recommendation(found, target)]
    return [recommendation([c for c in found if c.host == h], target, f"on {h}") for h in hosts]


def accuracy_front(found: Sequence[Choice]) -> tuple[list[Choice], list[Choice]]:
    """The configurations with an AP split into the front (no other is at least as accurate and at least as
    fast, and better in one) and the dominated ones; those without an AP are in neither."""
    rated = [c for c in found if c.ap is not None]
    on, off = f.pareto([(str(i), c.fps, -(c.ap or 0.0)) for i, c in enumerate(rated)])  # more AP = less "cost"
    return [rated[int(i)] for i in on], [rated[int(i)] for i in off]


def decision_lines(runs: Sequence[f.Run], target: float | None) -> list[str]:
    """What the reports say under the models table: the recommendation for ``target`` FPS (when one is set)
    and, with a dataset, the configurations on the accuracy-vs-FPS front, fastest first."""
    lines = recommendations(runs, target) if target is not None else []
    front, _ = accuracy_front(choices(runs))
    if front:
        ranked = sorted(front, key=lambda c: -c.fps)
        lines.append("Worth considering (no other configuration is both more accurate and faster): "
                     + "; ".join(f"{c.label} ({c.figures()})" for c in ranked) + ".")
    return lines
