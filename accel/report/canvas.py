"""What every chart of a report is drawn on: one figure style, one palette, and the exception a chart raises
when the document holds nothing it could show. Shared by ``accel.report.plots`` and ``accel.report.timeline``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RC", "NotApplicable", "colour", "new_figure"]

RC: Any = {"svg.fonttype": "path", "svg.hashsalt": "accel", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False}


class NotApplicable(Exception):
    """The document holds nothing this chart could show; ``str()`` says why."""


def new_figure(rows: int, width: float = 9.0, height: float = 3.0, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(rows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def colour(i: int) -> Any:
    import matplotlib

    return matplotlib.colormaps["tab10"](i % 10)
