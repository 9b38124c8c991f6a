"""Charts of documents with pipelined variants: the serial-vs-pipelined chart and the stage timeline (Gantt)
of a hand-written trace, each in its place on the page or n/a and why; and serial-only documents without
either (the exec / e2e columns are tested with the other formats in test_report_formats.py).

Expected figures come from report_docs' hand-written documents: threads=1 runs 25.0 FPS serially and 30.0
pipelined (60 frames / 2.0 s), 30 / 25 = 1.20x, bound 31.25 FPS; ``TRACE`` is 3 frames x 3 stages = 9 spans
over 0-104 ms, stages busy 15, 96 and 9 ms: 14%, 92% and 9%.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from report_docs import TRACE, pipelined, v2

import accel.report as report
from accel.core.errors import ConfigError
from accel.report.figures import Run
from accel.results.record import VariantRecord

pytest.importorskip("matplotlib", reason="the charts need the plots extra: pip install 'accel[plots]'")
from accel.report import plots, timeline  # noqa: E402  (after the skip: they draw with matplotlib)


def _chart_svg(page: str, ident: str) -> str:
    """The inline SVG of the chart figure ``ident`` ("r1-chart-trace-1")."""
    found = re.search(rf'<figure class="chart" id="{ident}"[^>]*>(.*?)</figure>', page, re.S)
    assert found, f"no chart {ident} in the page"
    return found[1]


def _record(doc: dict[str, Any], index: int) -> VariantRecord:
    return Run.of(doc).records[index]


def test_page_with_pipelined_runs_has_both_charts_in_place() -> None:
    page = report.render([pipelined()], "html")
    assert re.findall(r'data-chart="([^"]+)"', page) == ["fps", "execution", "stages", "trace", "threads",
                                                          "latency", "timeline", "pareto"]
    execution = _chart_svg(page, "r1-chart-execution")
    assert execution.startswith("<svg")
    assert {"r1-execution-serial-0", "r1-execution-pipelined-0", "r1-execution-bound-0"} <= set(
        re.findall(r'id="(r1-execution-[a-z]+-\d+)"', execution))
    gantt = _chart_svg(page, "r1-chart-trace-1")
    assert len(re.findall(r'id="r1-trace-1-span-\d+-frame-\d"', gantt)) == 9  # 3 frames x 3 stages
    assert "<h3>Stage timeline, pipelined: xnnpack threads=1 + numpy</h3>" in page
    assert "the row with the least white space" in page  # the caption says what to look for


def test_execution_chart_bars_and_bound() -> None:
    fig, note = plots.chart([Run.of(pipelined())], "execution")
    ax = fig.axes[0]
    assert note is None
    assert {p.get_gid(): p.get_width() for p in ax.patches} == {"serial-0": 25.0, "pipelined-0": 30.0}
    (bound,) = [line for line in ax.lines if line.get_gid() == "bound-0"]
    assert list(bound.get_xdata()) == [31.25, 31.25]
    texts = [t.get_text() for t in ax.texts]
    assert "  25.0" in texts and "  30.0 (1.20x serial); bound 31.2 (inference)" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["xnnpack threads=1 + numpy"]


def test_gantt_one_bar_per_span_and_busy_rows() -> None:
    fig, note = timeline.trace_chart(_record(pipelined(), 1))
    ax = fig.axes[0]
    spans = sorted((p.get_x(), p.get_x() + p.get_width(), round(p.get_y() + p.get_height() / 2))
                   for p in ax.patches if str(p.get_gid()).startswith("span-"))
    rows = {"preprocess": 0, "inference": 1, "postprocess": 2}
    assert spans == sorted((start, end, rows[stage]) for _, stage, start, end in TRACE)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["preprocess\n14% busy", "inference\n92% busy",
                                                            "postprocess\n9% busy"]
    assert note is None


def test_overlapping_inference_streams_get_a_row_each() -> None:
    trace = [timeline.Span(*s) for s in [(0, "preprocess", 0, 5), (1, "preprocess", 5, 10),
                                         (0, "inference", 5, 69), (1, "inference", 10, 74),
                                         (2, "inference", 69, 133), (3, "inference", 74, 138)]]
    assert [(name, [s.frame for s in lane]) for name, lane in timeline.rows(trace)] == [
        ("preprocess", [0, 1]), ("inference #1", [0, 2]), ("inference #2", [1, 3])]


def test_malformed_trace_entries_are_left_out_and_said() -> None:
    doc = pipelined()
    doc["variants"][1]["trace"] += [[3, "inference"], ["x", "inference", 1.0, 2.0], [4, "inference", 9.0, 8.0]]
    fig, note = timeline.trace_chart(_record(doc, 1))
    assert sum(str(p.get_gid()).startswith("span-") for p in fig.axes[0].patches) == 9
    assert note == "3 trace entries are not [frame, stage, start_ms, end_ms] and are left out"


def test_serial_only_document_has_neither_chart() -> None:
    page = report.render([v2()], "html")
    assert re.findall(r'data-chart="([^"]+)"', page) == list(plots.CHARTS)
    for absent in ("execution", "trace", "Serial vs pipelined", "Stage timeline"):
        assert absent not in page.replace("exec = serial", "")  # the legend explains the exec column only
    with pytest.raises(ConfigError, match=r"chart execution: n/a: no variant ran pipelined"):
        report.save_chart_png(v2(), "execution", Path("unused.png"))
    with pytest.raises(ConfigError, match=r"chart trace: n/a: no variant ran pipelined"):
        report.save_chart_png(v2(), "trace", Path("unused.png"))


@pytest.mark.parametrize(("change", "ident", "why"), [
    (lambda d: d["variants"].pop(0), "r1-execution-na", "no variant ran both serially and pipelined"),
    (lambda d: d["variants"][1].pop("trace"), "r1-trace-1-na", "xnnpack threads=1 + numpy, pipelined: no stage "
                                                                 "trace in this document"),
    (lambda d: d["variants"][1].update(status="failed", error="boom"), "r1-trace-na",
     "no pipelined variant in this document ran successfully"),
], ids=["no-serial-twin", "no-trace", "pipelined-failed"])
def test_pipelined_charts_say_why_they_are_na(change: Any, ident: str, why: str) -> None:
    doc = pipelined()
    change(doc)
    page = report.render([doc], "html")
    assert re.search(rf'id="{ident}">n/a: {re.escape(why)}', page), ident


def test_only_the_first_pipelined_variants_get_a_timeline() -> None:
    doc = pipelined()
    for threads in (3, 4, 5):
        extra = copy.deepcopy(doc["variants"][1])
        extra.update(variant=f"xnnpack threads={threads}", options={"threads": threads})
        doc["variants"].append(extra)
    page = report.render([doc], "html")
    assert re.findall(r'id="(r1-chart-trace-\d)"', page) == ["r1-chart-trace-1", "r1-chart-trace-2",
                                                              "r1-chart-trace-3"]
    assert "Not drawn, to keep the page small: the timelines of xnnpack threads=5 + numpy" in page


def test_save_trace_png(tmp_path: Path) -> None:
    with Image.open(report.save_chart_png(pipelined(), "trace", tmp_path / "trace.png")) as im:
        assert im.format == "PNG" and im.width > 300
