"""The terminal's view of a watch: the page's figures (``accel.watch.figures.rows``) in a rich panel, for a
plain SSH session or ``--no-server``."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from accel.watch.figures import rows

__all__ = ["panel"]

_STYLE = {"running": "green", "starting": "yellow"}


def panel(stats: dict[str, Any], where: str = "") -> Panel:
    """The figures of a ``Hub.stats()`` document; ``where``: the address it is served at, if it is."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for name, text in rows(stats):
        style = _STYLE.get(stats.get("status", ""), "red") if name == "variant" else ""
        table.add_row(name, Text(text, style=style))
    title = "accel watch" + (f" · {where}" if where else "")
    return Panel(table, title=title, title_align="left", subtitle="Ctrl-C stops", subtitle_align="right")
