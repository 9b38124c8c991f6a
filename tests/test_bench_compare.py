"""tools/bench_compare.py on two small hand-written --benchmark-json files, verdicts worked out by hand."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_compare.py"
_spec = importlib.util.spec_from_file_location("bench_compare", TOOL)
assert _spec is not None and _spec.loader is not None
bench_compare = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench_compare  # a dataclass looks its module up while it is being made
_spec.loader.exec_module(bench_compare)


def _bench(name: str, median: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "fullname": f"bench/test_x.py::{name}", "group": None, "extra_info": extra,
            "stats": {"median": median, "mean": median * 1.1, "min": median * 0.9}}


def _write(path: Path, *benches: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": list(benches), "version": "5.1.0"}))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> tuple[str, str]:
    old = _write(tmp_path / "old.json",
                 _bench("test_a", 0.5, overhead=0.010, fps=100.0),
                 _bench("test_b", 0.25, ratio_10x=9.9, ratio=1.04),
                 _bench("test_c", 0.125),
                 _bench("test_gone", 0.001))
    new = _write(tmp_path / "new.json",
                 _bench("test_a", 0.53125, overhead=0.012, fps=95.0),  # 0.53125 / 0.5 = +6.25%: ok
                 _bench("test_b", 0.3125, ratio_10x=10.2, ratio=True),  # 0.3125 / 0.25 = +25%: slower than 10%
                 _bench("test_c", 0.09375),                             # 0.09375 / 0.125 = -25%: faster
                 _bench("test_new", 0.002))
    return str(old), str(new)


def _verdicts(out: str) -> dict[str, list[str]]:
    """benchmark -> the rest of its row, from the median table (up to the first blank line)."""
    table = out.split("\n\n")[0].splitlines()[1:]
    return {line.split()[0].split("::")[1]: line.split()[1:] for line in table}


def test_medians_and_verdicts(runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_compare.main([*runs]) == 1  # test_b got 25% slower, over the default 10%
    out = capsys.readouterr().out
    rows = _verdicts(out)
    assert rows["test_a"] == ["500.000", "ms", "531.250", "ms", "+6.2%", "ok"]
    assert rows["test_b"] == ["250.000", "ms", "312.500", "ms", "+25.0%", "slower"]
    assert rows["test_c"] == ["125.000", "ms", "93.750", "ms", "-25.0%", "faster"]
    assert rows["test_new"] == ["-", "2.000", "ms", "-", "new"]
    assert rows["test_gone"] == ["1.000", "ms", "-", "-", "gone"]
    assert "FAIL bench/test_x.py::test_b: median +25.0% (more than 10% slower)" in out


def test_ratio_fields_side_by_side(runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bench_compare.main([*runs])
    ratio_table = capsys.readouterr().out.split("\n\n")[1].splitlines()
    rows = [line.split() for line in ratio_table[1:] if not line.startswith("FAIL")]
    # overhead and ratio_10x as recorded; ratio is only a number in the old run (True is not a figure);
    # fps is not a ratio
    assert rows == [["bench/test_x.py::test_a", "overhead", "0.01", "0.012"],
                    ["bench/test_x.py::test_b", "ratio", "1.04", "-"],
                    ["bench/test_x.py::test_b", "ratio_10x", "9.9", "10.2"]]


@pytest.mark.parametrize(("args", "code"), [
    (["--max-slowdown", "0.3"], 0),                          # +25% is within 30%
    (["--max-slowdown", "0.25"], 0),                         # exactly at the threshold is not over it
    (["--max-slowdown", "0.3", "--limit", "ratio_10x=15"], 0),
    (["--max-slowdown", "0.3", "--limit", "ratio_10x=10"], 1),  # 10.2 > 10
    (["--max-slowdown", "0.3", "--limit", "overhead=0.011"], 1),  # 0.012 > 0.011
], ids=["within", "at-threshold", "under-limit", "over-limit", "overhead-limit"])
def test_exit_status(runs: tuple[str, str], args: list[str], code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_compare.main([*runs, *args]) == code
    assert ("FAIL" in capsys.readouterr().out) == (code == 1)


def test_command_line(runs: tuple[str, str], tmp_path: Path) -> None:
    slower = subprocess.run([sys.executable, str(TOOL), *runs], capture_output=True, text=True, timeout=60)
    assert slower.returncode == 1 and "slower" in slower.stdout
    (tmp_path / "bad.json").write_text("{}")
    bad = subprocess.run([sys.executable, str(TOOL), runs[0], str(tmp_path / "bad.json")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "expected a pytest --benchmark-json file" in bad.stderr
    usage = subprocess.run([sys.executable, str(TOOL), *runs, "--limit", "ratio_10x"], capture_output=True,
                           text=True, timeout=60)
    assert usage.returncode == 2 and "expected KEY=MAX" in usage.stderr
