"""The remote run's live display: on a terminal one table, a row per board; elsewhere a line per event."""

from __future__ import annotations

import io

from rich.console import Console

from accel.remote.display import Display


def test_a_terminal_gets_one_table_with_a_row_per_board() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with Display(console, ["pi4", "pi5"]) as display:
        display("pi4", "state", "running in /x/runs/1")
        display("pi4", "line", "[1/2] xnnpack threads=1 + opencv, serial")
        display("pi4", "line", "  xnnpack threads=1 + opencv, serial: 31.2 FPS, inference 30.1 ms p50")
        display("pi5", "state", "unreachable: no route to host")
        display("all", "state", "SIGINT: stopping every board's run")
        final = display.table()
    assert [row for row in display.rows.items()] == [
        ("pi4", ["running in /x/runs/1", "[1/2] xnnpack threads=1 + opencv, serial",
                 "xnnpack threads=1 + opencv, serial: 31.2 FPS, inference 30.1 ms p50"]),
        ("pi5", ["unreachable: no route to host", "", ""])]
    assert final.row_count == 2 and "SIGINT: stopping" in str(final.caption)
    assert "[pi4]" not in out.getvalue()  # no prefixed lines on a terminal


def test_a_log_gets_a_line_per_event_prefixed_by_the_board() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=160)
    with Display(console, ["pi4"]) as display:
        display("pi4", "state", "connecting")
        display("pi4", "line", "   ")
        display("pi4", "line", "[1/1] cpu-reference threads=1 + opencv, serial")
    assert out.getvalue().splitlines() == ["[pi4] connecting", "[pi4] [1/1] cpu-reference threads=1 + opencv, serial"]
