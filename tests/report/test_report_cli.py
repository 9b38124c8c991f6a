"""``accel report`` as a user meets it: formats, --out, several runs, and one clear line on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_docs import FIXTURE, GOLDEN, second_run, v2, write
from test_cli import accel, one_error_line


def test_markdown_to_stdout(tmp_path: Path) -> None:
    proc = accel("report", str(FIXTURE), "--format", "md", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (GOLDEN / "result_v2.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["r.csv", "r.json", "r.html", "r.md"])
def test_out_suffix_picks_the_format(tmp_path: Path, name: str) -> None:
    proc = accel("report", str(FIXTURE), "--out", name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {name}" and (tmp_path / name).stat().st_size > 100


def test_terminal_tables_for_several_runs(tmp_path: Path) -> None:
    b = write(second_run(), tmp_path / "b" / "result.json")
    proc = accel("report", str(FIXTURE), str(b), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "runs compared" in proc.stdout and "50.0 (2.00x)" in proc.stdout


def test_newer_schema_is_one_clear_line(tmp_path: Path) -> None:
    doc = v2()
    doc["schema_version"] = 7
    write(doc, tmp_path / "new.json")
    proc = accel("report", "new.json", "--format", "md", cwd=tmp_path)
    assert proc.returncode == 2
    assert one_error_line(proc).endswith("has result schema 7; this accel reads 1-3: re-run accel compare "
                                          "or upgrade accel")


@pytest.mark.parametrize(("args", "expected"), [
    (["missing.json"], "cannot read result missing.json"),
    (["notes.json"], "notes.json is not an accel result document"),
    ([str(FIXTURE), "--out", "report.pdf"], "cannot tell the format from 'report.pdf'"),
], ids=["missing-file", "not-a-result", "unknown-suffix"])
def test_bad_input(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    proc = accel("report", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
