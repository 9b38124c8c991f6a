"""What a remote run shows while its boards work: on a terminal one live table, a row per board (its state,
what it is running now, the last variant's figures); in a log or a pipe a line per event, prefixed by the
board's name."""

from __future__ import annotations

from types import TracebackType
from typing import Any

__all__ = ["Display"]


class Display:
    """``on_event(board, kind, text)`` for a ``RemoteRun``; use it as a context manager around the run."""

    def __init__(self, console: Any, boards: list[str]) -> None:
        self.console = console
        self.rows: dict[str, list[str]] = {b: ["waiting", "", ""] for b in boards}
        self.notes: list[str] = []
        self.live: Any = None
        if console.is_terminal:
            from rich.live import Live

            self.live = Live(self.table(), console=console, refresh_per_second=4, transient=False)

    def table(self) -> Any:
        from rich import box
        from rich.table import Table

        t = Table(title="boards", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
        for header in ("board", "state", "now", "last variant"):
            t.add_column(header, overflow="fold")
        for board, (state, now, last) in self.rows.items():
            t.add_row(board, state, now, last)
        if self.notes:
            t.caption, t.caption_justify = "\n".join(self.notes[-3:]), "left"
        return t

    def __call__(self, board: str, kind: str, text: str) -> None:
        if kind == "line" and not text.strip():
            return
        if self.live is None:
            style = "dim" if kind == "state" else None
            self.console.print(f"[{board}] {text}", highlight=False, markup=False, style=style, soft_wrap=True)
            return
        row = self.rows.get(board)
        if row is None:  # a note for every board (a stop)
            self.notes.append(text)
        elif kind == "state":
            row[0] = text
        elif text.startswith("  "):  # a variant's outcome line: its figures
            row[2] = text.strip()
        else:
            row[1] = text
        self.live.update(self.table())

    def __enter__(self) -> Display:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()
