"""The decision a sweep is run for, on hand-made sweeps whose answer is worked out here: the most accurate
configuration that sustains the target FPS, what is said when none does or when there is no dataset, the
accuracy-vs-FPS front, and where the reports say it (Markdown, terminal, HTML, the config key and the flag)."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from report_docs import SWEEP, sweep, write

import accel.report as report
from accel.cli.main import main
from accel.report import figures as f
from accel.report.decide import accuracy_front, choices, decision_lines, recommendation, recommendations, target_of
from accel.results.document import per_model


def _runs(doc: dict[str, Any]) -> list[f.Run]:
    return [f.Run.of(d) for d in per_model(doc)]


@pytest.mark.parametrize(("target", "says"), [
    (10, "The most accurate configuration that sustains 10 FPS here: a.tflite: xnnpack threads=2 + numpy, serial "
         "(AP 30.0%, 12.0 FPS, 0.450 J/frame); 3 of 5 configurations sustain 10 FPS here."),
    (5, "The most accurate configuration that sustains 5 FPS here: b.tflite: xnnpack threads=2 + numpy, serial "
        "(AP 40.0%, 8.0 FPS, 0.700 J/frame); 5 of 5 configurations sustain 5 FPS here."),
    (40, "No configuration sustains 40 FPS here: the fastest is c.tflite: xnnpack threads=2 + numpy, serial "
         "(AP 25.0%, 30.0 FPS, 0.200 J/frame)."),
])
def test_the_most_accurate_that_sustains_the_target(target: float, says: str) -> None:
    assert recommendations(_runs(sweep()), target) == [says]


def test_without_a_dataset_it_ranks_by_speed_and_says_so() -> None:
    line = recommendation(choices(_runs(sweep(with_ap=False))), 10)
    assert line == ("3 of 5 configurations sustain 10 FPS here; without a dataset accuracy is unknown (give "
                    "--dataset to rank them by AP), so by speed: the fastest is c.tflite: xnnpack threads=2 + numpy, "
                    "serial (30.0 FPS, 0.200 J/frame), then a.tflite: xnnpack threads=2 + numpy, serial (12.0), "
                    "a.tflite: xnnpack threads=1 + numpy, serial (10.0).")
    assert recommendation([], 10) == "No configuration ran here, so none can be recommended for 10 FPS."


def test_the_front_and_the_null_delegate() -> None:
    doc = sweep()
    null = copy.deepcopy(doc["variants"][0])
    null.update(delegate="null", variant="null", fps=500.0)  # runs no model: never a choice
    doc["variants"].append(null)
    found = choices(_runs(doc))
    assert len(found) == len(SWEEP)
    front, beaten = accuracy_front(found)
    assert sorted((c.model, c.record.variant) for c in front) == [
        ("a.tflite", "xnnpack threads=2"), ("b.tflite", "xnnpack threads=2"), ("c.tflite", "xnnpack threads=2")]
    assert sorted((c.model, c.record.variant) for c in beaten) == [
        ("a.tflite", "xnnpack threads=1"), ("c.tflite", "xnnpack threads=1")]
    assert decision_lines(_runs(doc), None)[0].startswith(
        "Worth considering (no other configuration is both more accurate and faster): c.tflite: xnnpack threads=2 "
        "+ numpy, serial (AP 25.0%, 30.0 FPS, 0.200 J/frame); a.tflite")


def test_two_boards_get_a_line_each() -> None:
    runs = _runs(sweep(host="Raspberry Pi 4 Model B")) + _runs(sweep(host="Raspberry Pi 5 Model B"))
    lines = recommendations(runs, 10)
    assert len(lines) == 2
    assert lines[0].startswith("The most accurate configuration that sustains 10 FPS on Raspberry Pi 4 Model B")
    assert lines[1].startswith("The most accurate configuration that sustains 10 FPS on Raspberry Pi 5 Model B")


def test_the_target_comes_from_the_flag_else_the_config() -> None:
    doc = sweep()
    assert target_of([doc]) is None
    doc["config"]["report"] = {"target_fps": 10.0}
    assert target_of([doc]) == 10.0 and target_of([doc], 5.0) == 5.0 and target_of([doc], 0.0) is None


def test_the_reports_say_it(tmp_path: Path) -> None:
    doc = sweep()
    doc["config"]["report"] = {"target_fps": 10.0}
    md = report.render(per_model(doc), "md")
    head = md.split("## Runs compared")[0]
    assert head.index("## Models") < head.index("## Which configuration?")
    assert "- The most accurate configuration that sustains 10 FPS here: a.tflite: xnnpack threads=2" in head
    table = [ln for ln in head.splitlines() if ln.startswith("| ")]
    cols = [c.strip() for c in table[0].strip("|").split("|")]
    assert cols[4:8] == ["AP", "AP50", "precision", "recall"]
    b = [c.strip() for c in table[2].strip("|").split("|")]  # b's fastest (and only) variant: 40/60/80/70 %
    assert b[0] == "b.tflite" and b[4:8] == ["40.0", "60.0", "80.0", "70.0"]
    path = write(doc, tmp_path / "sweep.json")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["report", str(path), "--target-fps", "5"]) == 0
    text = " ".join(out.getvalue().split())
    assert "The most accurate configuration that sustains 5 FPS here: b.tflite: xnnpack threads=2 + numpy" in text
    with redirect_stdout(io.StringIO()):
        assert main(["report", str(path), "--out", str(tmp_path / "r.md"), "--target-fps", "40"]) == 0
    assert "No configuration sustains 40 FPS here" in (tmp_path / "r.md").read_text()


def test_a_sweep_without_accuracy_says_why_the_chart_is_missing() -> None:
    pytest.importorskip("matplotlib")
    page = report.render(per_model(sweep(with_ap=False)), "html")
    assert '<p class="na" id="accuracy-na">n/a: accuracy needs a dataset' in page
    assert json.dumps(page).count("Which configuration?") == 1


def test_the_models_table_marks_a_variant_under_the_agreement_floor() -> None:
    """status 'ran but the accuracy check failed' (Ultralytics' benchmark has the same state): a variant
    agreeing less with its model's cpu-reference than [accuracy] min_agreement is named, with its score."""
    from accel.report import figures as f
    from accel.report.markdown import sweep_rows
    from accel.results.document import per_model

    doc = sweep(with_ap=False, host="pi5")
    doc["config"] = {**doc.get("config", {}), "accuracy": {"min_agreement": 0.8}}
    low = doc["variants"][1]
    low["agreement"] = {"reference": "cpu-reference threads=1 + numpy", "score": 0.62}
    for v in doc["variants"][2:]:
        v["agreement"] = {"reference": "cpu-reference threads=1 + numpy", "score": 0.95}
    headers, rows = sweep_rows([f.Run.of(d) for d in per_model(doc)])
    status = {row[0]: row[headers.index("status")] for row in rows}
    name = low["model"]
    assert status[name].startswith("ran; accuracy check failed: ")
    assert "agrees 0.62 with cpu-reference threads=1 + numpy (< 0.8)" in status[name]
    assert all("accuracy check" not in s for m, s in status.items() if m != name)
