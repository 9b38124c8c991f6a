"""A regression gate for `pytest bench/`: compare two `--benchmark-json` files.

    python tools/bench_compare.py OLD.json NEW.json [--max-slowdown 0.1] [--limit ratio_10x=15 ...]

One row per benchmark (its `fullname`, e.g. `bench/test_power.py::test_attribution_scaling`): the
median seconds of each run, the change (new / old - 1) and a verdict: `slower` when the change is above
`--max-slowdown` (a fraction: 0.1 is 10%), `faster` below minus that, `ok` between, `new` or `gone`
when only one run has it. Below it, every ratio the benchmarks recorded in `extra_info` (keys named
`ratio`, `*_ratio`, `ratio_*`, `overhead` or `*_change`), old and new side by side. `--limit KEY=MAX`
also fails a benchmark of the new run whose `extra_info[KEY]` is above MAX (e.g. `ratio_10x=15`).

Exit status: 0 when nothing got slower and no limit is exceeded, 1 otherwise, 2 for unusable input.
The benches themselves never assert on timings: a shared machine's neighbours move them, and whether
a change is a regression is a comparison between runs, made here (or with pytest-benchmark's own
`--benchmark-autosave` / `--benchmark-compare` / `--benchmark-compare-fail=median:10%`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RATIO = re.compile(r"^(ratio|ratio_.+|.+_ratio|overhead|.+_change)$")


@dataclass(frozen=True)
class Row:
    """One benchmark's verdict: medians in seconds (None where a run lacks it)."""

    name: str
    old: float | None
    new: float | None
    change: float | None
    verdict: str


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The benchmarks of one `--benchmark-json` file by full name. Raises ValueError if it is not one."""
    try:
        doc = json.loads(path.read_text())
        out = {b.get("fullname") or b["name"]: b for b in doc["benchmarks"]}
        for b in out.values():
            float(b["stats"]["median"])  # every benchmark has its timing
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: expected a pytest --benchmark-json file ({type(exc).__name__}: {exc})") from exc
    return out


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _names(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every benchmark of either run: the new run's in its order, then those it no longer has."""
    return [*new, *(n for n in old if n not in new)]


def compare_medians(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]],
                    max_slowdown: float) -> list[Row]:
    """A row per benchmark in either run."""
    rows = []
    for name in _names(old, new):
        a = old[name]["stats"]["median"] if name in old else None
        b = new[name]["stats"]["median"] if name in new else None
        if a is None or b is None:
            rows.append(Row(name, a, b, None, "new" if a is None else "gone"))
            continue
        change = b / a - 1.0 if a > 0 else math.inf
        verdict = "slower" if change > max_slowdown else "faster" if change < -max_slowdown else "ok"
        rows.append(Row(name, a, b, change, verdict))
    return rows


Figure = tuple[str, str, float | None, float | None]


def ratios(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[Figure]:
    """(benchmark, key, old value, new value) for every ratio-like extra_info figure in either run."""
    out: list[Figure] = []
    for name in _names(old, new):
        infos = [(old.get(name) or {}).get("extra_info") or {}, (new.get(name) or {}).get("extra_info") or {}]
        keys = sorted({k for info in infos for k, v in info.items() if _RATIO.match(k) and _number(v) is not None})
        out.extend((name, k, _number(infos[0].get(k)), _number(infos[1].get(k))) for k in keys)
    return out


def over_limits(new: dict[str, dict[str, Any]], limits: dict[str, float]) -> list[str]:
    """One line per figure of the new run above its limit."""
    out = []
    for name, bench in new.items():
        for key, limit in limits.items():
            value = _number((bench.get("extra_info") or {}).get(key))
            if value is not None and value > limit:
                out.append(f"{name}: {key} = {value:.4g} is above the limit {limit:g}")
    return out


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e3:.3f} ms"
    return f"{value:+.1%}" if unit == "%" else f"{value:.4g}"


def _limit(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep or not key:
            raise ValueError
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=MAX (e.g. ratio_10x=15), got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare two pytest-benchmark JSON runs; exit 1 on a regression.")
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--max-slowdown", type=float, default=0.1,
                        help="fail when a median grew by more than this fraction (default 0.1: 10%%)")
    parser.add_argument("--limit", type=_limit, action="append", default=[], metavar="KEY=MAX",
                        help="fail when the new run's extra_info[KEY] is above MAX (repeatable)")
    args = parser.parse_args(argv)
    try:
        old, new = load(args.old), load(args.new)
    except ValueError as exc:
        print(f"bench_compare: {exc}", file=sys.stderr)
        return 2
    rows = compare_medians(old, new, args.max_slowdown)
    width = max([len(r.name) for r in rows] + [9])
    print(f"{'benchmark':<{width}}  {'old median':>12}  {'new median':>12}  {'change':>8}  verdict")
    for r in rows:
        medians = f"{_fmt(r.old, 's'):>12}  {_fmt(r.new, 's'):>12}"
        print(f"{r.name:<{width}}  {medians}  {_fmt(r.change, '%'):>8}  {r.verdict}")
    recorded = ratios(old, new)
    if recorded:
        print(f"\n{'benchmark':<{width}}  {'extra_info':<20}  {'old':>10}  {'new':>10}")
        for name, key, a, b in recorded:
            print(f"{name:<{width}}  {key:<20}  {_fmt(a):>10}  {_fmt(b):>10}")
    failures = [f"{r.name}: median {_fmt(r.change, '%')} (more than {args.max_slowdown:.0%} slower)"
                for r in rows if r.verdict == "slower"] + over_limits(new, dict(args.limit))
    for line in failures:
        print(f"FAIL {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
