"""Markdown, CSV and JSON of one run against golden files; schema versions; write_reports; the preview's
frames; charts as PNG.

The golden files' figures were checked by hand against tests/report/fixtures/result_v2.json, not produced by
trusting the code: size 6100000 B / 1e6 = 6.10 MB; params 4300000 / 1e6 = 4.30 M; flops 1.6e9 / 1e9 = 1.60
GFLOPs; FPS = frames_measured / wall_s = 50 / 2.0 = 25.0 and 80 / 2.0 = 40.0; J/frame = energy_j / frames =
8.0 / 50 = 0.160 and 10.0 / 80 = 0.125; FPS/W = 25 / 4.0 W = 6.25 and 40 / 5.0 W = 8.00; agreement 1.0 and
0.95 -> 100% and 95%; inference p50 30.5 and 18.25 ms as recorded; threads=2 carries the under-voltage flag
and gpu-delegate the failure, each as a footnote. Every CSV cell is the fixture's number in %.6g (31.25 =
1000 / 32 ms, 52.6316 = 1000 / 19 ms), failed-variant cells empty. The fixture's variants predate pipelined
execution: they read as serial, with no e2e (n/a, an empty CSV cell).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_docs import GOLDEN, live, pipelined, second_run, v1, v2, write

import accel.report as report
from accel.core.errors import ConfigError
from accel.core.frames import Frame, PixelFormat
from accel.report import figures
from accel.results.document import load_result


@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_golden(fmt: str) -> None:
    assert report.render([v2()], fmt) == (GOLDEN / f"result_v2.{fmt}").read_text(encoding="utf-8")


def test_csv_is_flat_and_empty_where_not_measured() -> None:
    rows = list(csv.DictReader(io.StringIO(report.render([v2()], "csv"))))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[2]["fps"] == "" and rows[2]["j_per_frame"] == ""
    assert float(rows[1]["inference_p99_ms"]) == 22.25 and rows[1]["throttled_flags"] == "under-voltage"


def test_json_rows_match_csv() -> None:
    data = json.loads(report.render([v2()], "json"))
    assert data["schema"] == "accel.report" and len(data["runs"]) == 1
    assert [v["fps"] for v in data["variants"]] == [25.0, 40.0, None]


def test_v1_document_prints_na_for_power() -> None:
    md = report.render([v1()], "md")
    assert "power: n/a (not recorded: result schema 1 predates power measurement)" in md
    row = next(line for line in md.splitlines() if "threads=1 + numpy" in line)
    assert row.endswith("| 25.0 | n/a | n/a | n/a |")
    assert report.power_legend(v1()).startswith("power: n/a (")
    assert "W" not in [c.header for c in report.variants_table(v1()).columns]


def test_meterless_v2_document_gives_the_documents_reason() -> None:
    doc = v2()
    doc["power"] = {"meter": None, "estimated": False, "why": "no meter found: tried pi5-pmic, hwmon, rapl"}
    for v in doc["variants"]:
        v.pop("power", None)
    assert "power: n/a (no meter found: tried pi5-pmic, hwmon, rapl)" in report.legend(doc)
    assert "power: n/a (no meter found" in report.render([doc], "md")


def test_estimated_power_is_marked() -> None:
    doc = v2()
    doc["power"]["estimated"] = True
    md = report.render([doc], "md")
    assert "| ~4.00 | ~0.160 | ~6.25 |" in md and "~ = estimated" in md
    headers = [c.header for c in report.variants_table(doc).columns]
    assert {"W", "J/frame", "FPS/W"} <= set(headers)


@pytest.mark.parametrize(("points", "dominated"), [
    ([("a", 25.0, 0.16), ("b", 40.0, 0.125)], ["a"]),  # b is faster and cheaper
    ([("a", 25.0, 0.10), ("b", 40.0, 0.125)], []),  # a trade-off: both on the front
    ([("a", 40.0, 0.125), ("b", 40.0, 0.125)], []),  # equal: neither beats the other
    ([("a", 40.0, 0.2), ("b", 40.0, 0.125)], ["a"]),  # as fast, more energy
], ids=["dominated", "trade-off", "tie", "same-speed"])
def test_pareto(points: list[tuple[str, float, float]], dominated: list[str]) -> None:
    assert figures.pareto(points)[1] == dominated


@pytest.mark.parametrize("version", [1, 2])
def test_load_result_reads_versions_1_and_2(tmp_path: Path, version: int) -> None:
    doc = v1() if version == 1 else v2()
    assert load_result(write(doc, tmp_path / "result.json"))["schema_version"] == version


def test_load_result_rejects_other_versions(tmp_path: Path) -> None:
    doc = v2()
    doc["schema_version"] = 7
    path = write(doc, tmp_path / "result.json")
    with pytest.raises(ConfigError) as err:
        load_result(path)
    assert str(err.value) == (f"{path} has result schema 7; this accel reads 1-3: re-run accel compare or "
                              "upgrade accel")


def test_write_reports(tmp_path: Path) -> None:
    out = report.write_reports(v2(), tmp_path, ["md", "csv", "json", "html", "pdf"])
    for fmt in ("md", "csv", "json", "html"):
        assert isinstance(out[fmt], Path) and out[fmt].is_file(), out[fmt]
    assert out["html"] == tmp_path / "report.html"
    assert isinstance(out["pdf"], str) and "unknown report format 'pdf'" in out["pdf"]


def test_write_reports_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_have_matplotlib", lambda: False)
    out = report.write_reports(v2(), tmp_path, ["html", "md"])
    assert out["html"] == "html needs matplotlib: pip install 'accel[plots]'"
    assert out["md"] == tmp_path / "report.md" and not (tmp_path / "report.html").exists()


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ConfigError, match="valid: html, md, csv, json"):
        report.render([v2()], "xlsx")


def test_compare_runs_in_every_format() -> None:
    docs = [v2(), second_run()]
    md = report.render(docs, "md")
    # run 2's threads=1: 50 / 25 FPS = 2.00x, 15.25 / 30.5 ms = 0.50x, 0.128 / 0.160 J = 0.80x
    assert "| xnnpack threads=1 + numpy | 1 | 30.50 | 25.0 | 4.00 | 0.160 | 100% |" in md
    assert "|  | 2 | 15.25 (0.50x) | 50.0 (2.00x) | 4.00 | 0.128 (0.80x) | 100% |" in md
    assert "|  | 2 | not run |" in md  # threads=2 is missing from run 2
    assert "2. Raspberry Pi 4 Model B Rev 1.5 / ssd_mobilenet_v2.tflite / 2025-03-02T09:00:00+0100" in md
    rows = list(csv.DictReader(io.StringIO(report.render(docs, "csv"))))
    assert [(r["run"], r["variant"]) for r in rows] == [
        ("1", "xnnpack threads=1"), ("1", "xnnpack threads=2"), ("1", "gpu-delegate"),
        ("2", "xnnpack threads=1"), ("2", "gpu-delegate")]
    assert rows[3]["fps_ratio"] == "2" and rows[3]["inference_p50_ratio"] == "0.5"
    assert rows[3]["j_per_frame_ratio"] == "0.8" and rows[0]["fps_ratio"] == ""
    data = json.loads(report.render(docs, "json"))
    assert [r["label"].split(" / ")[0] for r in data["runs"]] == ["Raspberry Pi 5 Model B Rev 1.0",
                                                                   "Raspberry Pi 4 Model B Rev 1.5"]
    page = report.render(docs, "html")
    assert "Runs compared" in page and "Run 2: " in page and "50.0 (2.00x)" in page


def test_markdown_and_csv_have_exec_and_e2e() -> None:
    md = report.render([pipelined()], "md")
    assert ("| ssd_mobilenet_v2.tflite | xnnpack threads=1 + numpy | pipelined | 6.10 | 4.30 | 1.60 | 100% | 30.50 "
            "| 70.00 | 30.0 | 4.00 | 0.160 | 6.25 |") in md
    assert "frame age" not in md  # replay: no age, no dropped columns
    rows = list(csv.DictReader(io.StringIO(report.render([pipelined()], "csv"))))
    assert [(r["execution"], r["e2e_p50_ms"]) for r in rows] == [("serial", ""), ("pipelined", "70"),
                                                                  ("serial", ""), ("serial", "")]
    assert "frames_dropped" not in rows[0]


def test_live_document_adds_frame_age_and_dropped() -> None:
    md = report.render([live()], "md")
    assert ("| inference ms (p50) | e2e ms (p50) | frame age ms (p50) | dropped | FPS |") in md
    assert "| 30.50 | 70.00 | 40.00 | 7 | 30.0 |" in md and "| 18.25 | n/a | 8.25 | 0 | 40.0 |" in md
    assert "| failed[^2] |  |  |  |  |  |  |  |  |" in md
    assert "dropped = frames the source delivered that the pipeline never took" in md
    rows = list(csv.DictReader(io.StringIO(report.render([live()], "csv"))))
    assert [(r["frame_age_p50_ms"], r["frames_dropped"]) for r in rows] == [("12.5", "3"), ("40", "7"),
                                                                            ("8.25", "0"), ("", "")]
    page = report.render([live()], "html")
    assert "<th>frame age ms p50 / p99</th><th>dropped</th>" in page
    assert '<td class="n">40.00 / 42.00</td><td class="n">7</td>' in page


def _frame(fmt: PixelFormat, data: np.ndarray, w: int, h: int, stride: int, index: int) -> Frame:
    return Frame(data=data, width=w, height=h, format=fmt, stride=stride, index=index)


def test_save_frames_converts_and_respects_stride(tmp_path: Path) -> None:
    w, h, stride = 6, 4, 24  # 18 bytes of pixels + 6 bytes of padding per RGB888 row
    rgb = np.arange(w * h * 3, dtype=np.uint8).reshape(h, w, 3)
    packed = np.full((h, stride), 255, np.uint8)  # padding 255: must not reach the image
    packed[:, : w * 3] = rgb[..., ::-1].reshape(h, w * 3)  # picamera2 "RGB888" is B,G,R in memory
    # YUV420 grey, stride 8 > width 6, padding 0: Y=126, U=V=128 -> R=G=B=round(1.164 * 110) = 128
    yuv = np.zeros((h * 3 // 2, 8), np.uint8)
    yuv[:h, :w] = 126
    yuv[h:, :] = 128
    frames = [_frame(PixelFormat.RGB888, packed, w, h, stride, 3), _frame(PixelFormat.YUV420, yuv, w, h, 8, 7),
              _frame(PixelFormat.RGB, rgb, w, h, w * 3, 9)]
    saved = report.save_frames(frames, tmp_path, count=2)
    assert saved == {"3": "frames/3.png", "7": "frames/7.png"}
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frames/3.png")), rgb)
    assert np.all(np.asarray(Image.open(tmp_path / "frames/7.png")) == 128)


def test_save_chart_png(tmp_path: Path) -> None:
    path = report.save_chart_png(v2(), "pareto", tmp_path / "pareto.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300
    with pytest.raises(ConfigError, match=r"chart pareto: n/a: power: n/a \(not recorded"):
        report.save_chart_png(v1(), "pareto", tmp_path / "none.png")
    with pytest.raises(ConfigError, match="unknown chart 'pie'"):
        report.save_chart_png(v2(), "pie", tmp_path / "pie.png")


def test_preview_draws_a_classifier_top_k_as_text(tmp_path: Path) -> None:
    """Classifier answers have no box: the strip writes them as text lines in the variant's colour (the first
    chart colour, tab:blue), not the red "no detections recorded" line."""
    from accel.report import preview

    Image.new("RGB", (64, 48), (0, 0, 0)).save(tmp_path / "0.png")
    doc = {"source": {"saved_frames": {"0": "0.png"}},
           "variants": [{"variant": "xnnpack threads=1", "kernels": "numpy", "status": "ok", "runtime": "litert",
                         "placement": {"accelerator": "cpu", "delegated_ops": 0, "total_ops": 3},
                         "detections": {"0": [{"class_id": 3, "label": "cat", "score": 0.9}]}}]}
    (name, png), = preview.strips(figures.Run.of(doc), tmp_path)[0]
    top = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)[:16]  # the text line at the top left
    blue_minus_red = top[..., 2] - top[..., 0]
    assert name.startswith("xnnpack threads=1")
    assert (blue_minus_red > 50).any() and not (blue_minus_red < -50).any()
