"""The HTML report in a real browser: headless Chromium over the DevTools Protocol loads the file offline;
no console error, no request other than file:// and data:, and every chart and preview image visibly drawn
(pixel spread of its region in a screenshot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cdp_browser import Browser, PageRun, find_chromium, region_stdev
from report_docs import pipelined, second_run, sweep, v1, v2, write

import accel.report as report
from accel.core.frames import Frame, PixelFormat
from accel.report.plots import CHARTS
from accel.results.document import per_model

pytest.importorskip("matplotlib", reason="the HTML report needs the plots extra: pip install 'accel[plots]'")
pytest.importorskip("websocket", reason="driving Chromium needs websocket-client (the dev extra)")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Any:
    assert CHROMIUM is not None
    with Browser(CHROMIUM, timeout=60) as b:
        yield b


def _frames() -> list[Frame]:
    """Two 320x240 frames: a colour gradient with a bright square, in two pixel formats."""
    y, x = np.mgrid[0:240, 0:320]
    rgb = np.stack([x * 255 // 319, y * 255 // 239, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    rgb[60:140, 40:120] = 250
    bgrx = np.concatenate([rgb[..., ::-1], np.zeros((240, 320, 1), np.uint8)], axis=-1)
    return [Frame(data=rgb, width=320, height=240, format=PixelFormat.RGB, stride=960, index=0),
            Frame(data=bgrx, width=320, height=240, format=PixelFormat.XRGB8888, stride=1280, index=1)]


def _load(browser: Browser, page: Path, selector: str) -> PageRun:
    run = browser.load(page, selector)
    assert run.console_errors == [], run.console_errors
    outside = [u for u in run.requests if not u.startswith(("file://", "data:"))]
    assert outside == [], f"the page asked the network for {outside}"
    assert run.requests and run.requests[0] == page.resolve().as_uri()
    return run


def _drawn(run: PageRun, min_stdev: float = 8.0) -> None:
    for box in run.boxes:
        assert box["width"] > 200 and box["height"] > 80, box
        assert region_stdev(run.screenshot, box) > min_stdev, f"{box['id']} looks blank"


def test_full_report(browser: Browser, tmp_path: Path) -> None:
    doc = v2()
    doc["source"]["saved_frames"] = report.save_frames(_frames(), tmp_path)
    write(doc, tmp_path / "result.json")
    out = report.write_reports(doc, tmp_path, ["html"])
    page = out["html"]
    assert isinstance(page, Path), page
    run = _load(browser, page, "figure.chart > svg, figure.strip > img")
    print(f"browser: {run.version}")
    ids = [b["id"] for b in run.boxes]
    assert len(ids) == len(CHARTS) + 2, ids  # every chart, and one preview strip per variant that ran
    _drawn(run)


def test_report_without_power_says_why(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report.render([v1()], "html", tmp_path), encoding="utf-8")
    run = _load(browser, page, "figure.chart > svg")
    assert len(run.boxes) == len(CHARTS) - 2  # no timeline, no Pareto front
    _drawn(run)
    text = page.read_text(encoding="utf-8")
    assert 'id="r1-pareto-na">n/a: power: n/a (not recorded' in text
    assert 'id="r1-timeline-na">n/a: no power or temperature samples' in text
    assert "n/a: this run saved no frames" in text


def test_compared_runs(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    page.write_text(report.render([v2(), second_run()], "html"), encoding="utf-8")
    run = _load(browser, page, "figure.chart > svg")
    assert len(run.boxes) == 1 + 2 * len(CHARTS)  # the side-by-side chart, then each run's
    _drawn(run)


def test_pipelined_report_draws_its_two_charts(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "pipelined.html"
    page.write_text(report.render([pipelined()], "html", tmp_path), encoding="utf-8")
    run = _load(browser, page, "figure.chart > svg")
    ids = [b["id"] for b in run.boxes]
    assert len(ids) == len(CHARTS) + 2, ids  # every chart, serial vs pipelined, and the one pipelined timeline
    _drawn(run)
    new = _load(browser, page, "#r1-chart-execution > svg, #r1-chart-trace-1 > svg")
    assert len(new.boxes) == 2
    _drawn(new)


def test_a_sweep_draws_accuracy_against_speed_and_energy(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "sweep.html"
    page.write_text(report.render(per_model(sweep()), "html", target_fps=10), encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    assert "The most accurate configuration that sustains 10 FPS here: a.tflite: xnnpack threads=2" in text
    run = _load(browser, page, "#acc-chart-accuracy > svg")
    assert len(run.boxes) == 1
    assert 'id="acc-accuracy-axes_2"' in text  # AP vs FPS and, energy being measured, AP vs J/frame beside it
    _drawn(run)
