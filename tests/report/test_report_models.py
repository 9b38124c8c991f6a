"""The model's figures in the reports: GFLOPs from ``model.costs`` (n/a, and why, without it), and the model
table of a hand-made benchmark table (name, size MB, params M, AP, AP50, inference s, GFLOPs, the variant).

Cells derived by hand from tests/report/fixtures/result_v2.json: size 6100000 B / 1e6 = 6.10 MB; no
``costs.params`` there, so params = ``model.params`` 4300000 / 1e6 = 4.30 M; flops 1.6e9 / 1e9 = 1.60 GFLOPs; no
dataset, so AP and AP50 say so; the variants that ran have inference p50 30.5 ms (threads=1) and 18.25 ms
(threads=2, flagged under-voltage), gpu-delegate failed: the fastest is threads=2, 18.25 ms = 0.01825 s.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from report_docs import second_run, v1, v2

import accel.report as report

FIXTURE_ROW = ("| ssd_mobilenet_v2.tflite | 6.10 | 4.30 | n/a (no dataset) | n/a (no dataset) | 0.01825 | 1.60 "
               "| xnnpack threads=2 + numpy, serial (throttled: its figures may be low) |")


def _models_section(md: str) -> list[str]:
    return md.split("## Models\n", 1)[1].strip().splitlines()


def test_the_fixture_model_row_is_the_hand_derived_one() -> None:
    lines = _models_section(report.render([v2()], "md"))
    assert lines[0] == "| name | size MB | params M | AP | AP50 | inference s | GFLOPs | fastest variant |"
    assert lines[1] == "|:---|---:|---:|---:|---:|---:|---:|:---|"
    assert lines[2] == FIXTURE_ROW and lines[3] == ""
    assert lines[4].startswith("One row per run's model; its AP and inference time are those of its fastest")


def _with_dataset() -> dict[str, Any]:
    """The fixture run on a dataset: threads=1 scored AP 0.312 / AP50 0.54, threads=2 0.25 / 0.45; its model
    has costs.params 3470000; and a null variant, the quickest of all (0.01 ms), that ran no model."""
    doc = v2()
    doc["dataset"] = {"root": "/data/coco", "images": 8}
    doc["model"]["costs"]["params"] = 3_470_000
    doc["variants"][0]["accuracy"] = {"AP": 0.312, "AP50": 0.54}
    doc["variants"][1]["accuracy"] = {"AP": 0.25, "AP50": 0.45}
    null = copy.deepcopy(doc["variants"][0])
    null.update(variant="null", delegate="null", options={}, accuracy={"AP": 0.0, "AP50": 0.0})
    null["stages"]["inference"]["p50"] = 0.01
    doc["variants"].append(null)
    return doc


def test_with_a_dataset_ap_is_the_fastest_variants_in_percent_and_params_are_the_weights() -> None:
    row = _models_section(report.render([_with_dataset()], "md"))[2]
    # threads=2 (18.25 ms) is the fastest that ran the model: its AP 0.25 -> 25.0 %, AP50 0.45 -> 45.0 %
    assert row == ("| ssd_mobilenet_v2.tflite | 6.10 | 3.47 | 25.0 | 45.0 | 0.01825 | 1.60 "
                   "| xnnpack threads=2 + numpy, serial (throttled: its figures may be low) |")


def test_several_runs_give_one_row_each() -> None:
    lines = _models_section(report.render([v2(), second_run()], "md"))
    assert lines[0].startswith("| run | name | size MB |") and lines[1].startswith("|:---|:---|---:|")
    assert lines[2] == "| 1 " + FIXTURE_ROW
    # run 2: threads=1 at 15.25 ms, threads=2 not run, gpu-delegate failed
    assert lines[3] == ("| 2 | ssd_mobilenet_v2.tflite | 6.10 | 4.30 | n/a (no dataset) | n/a (no dataset) | 0.01525 "
                        "| 1.60 | xnnpack threads=1 + numpy, serial |")


def test_a_run_where_nothing_ran_says_so() -> None:
    doc = v2()
    doc["variants"] = [doc["variants"][2]]  # the failed gpu-delegate only
    row = _models_section(report.render([doc], "md"))[2]
    assert row.endswith("| n/a (no dataset) | n/a (no dataset) | n/a | 1.60 | none ran |")


def _without_costs(why: str | None) -> dict[str, Any]:
    doc = v1()
    if why is None:
        del doc["model"]["costs"]  # written before compare recorded costs
    else:
        doc["model"].update(costs=None, costs_why=why)
    return doc


@pytest.mark.parametrize(("why", "said"), [
    (None, "GFLOPs: n/a (not recorded: this result predates model costs in the result document)."),
    ("model.tflite is truncated or corrupt", "GFLOPs: n/a (model.tflite is truncated or corrupt)."),
], ids=["old-document", "costs-null"])
def test_gflops_are_na_with_why_without_costs(why: str | None, said: str) -> None:
    doc = _without_costs(why)
    md = report.render([doc], "md")
    variant_row = next(line for line in md.splitlines() if "threads=1 + numpy | serial" in line)
    assert "| 6.10 | 4.30 | n/a | 100% |" in variant_row and said in md
    assert "| 0.01825 | n/a | xnnpack threads=2" in _models_section(md)[2]
    head = json.loads(report.render([doc], "json"))["runs"][0]
    assert head["gflops"] is None and head["gflops_why"] == said[len("GFLOPs: n/a ("):-2]


def test_json_and_html_read_the_costs() -> None:
    head = json.loads(report.render([v2()], "json"))["runs"][0]
    assert (head["gflops"], head["gflops_why"], head["model_params"], head["model_size_bytes"]) == (
        1.6, None, 4_300_000, 6_100_000)
    pytest.importorskip("matplotlib", reason="the HTML report needs the plots extra: pip install 'accel[plots]'")
    page = report.render([v2()], "html")
    assert "<td class=\"n\">1.60</td>" in page  # the run table's GFLOPs cell
    models = page.split("<h2>Models</h2>", 1)[1]
    assert models.startswith("<table><thead><tr><th>name</th>")
    assert '<td class="n">0.01825</td><td class="n">1.60</td><td>xnnpack threads=2 + numpy, serial' in models
