"""Power, thermals and reports through `accel compare`: the meter's watts reach each variant's window,
J/frame and FPS/W, the table and the JSON; no meter says n/a and why; sustained and cool-down runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from accel.compare.comparison import Event, compare
from accel.plan.config import load_config
from accel.power import REGISTRY
from accel.power.fake import ManualClock, MeterScript, ScriptedMeter

_FAST = {"pipeline.frames": 5, "pipeline.seconds": 0.0, "pipeline.warmup": 0, "delegates": ["xnnpack"]}


def _no_meters(tmp: Path) -> str:
    """accel.toml pointing every auto-detected meter at empty places: this machine has no meter."""
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)
    return (f'[power.pi5-pmic]\nvcgencmd = "{empty}/vcgencmd"\n[power.hwmon]\nroot = "{empty}"\n'
            f'[power.rapl]\nroot = "{empty}"\n[power.battery]\nroot = "{empty}"\n')


def _run(tmp: Path, toml: str, on_event: Event | None = None, **overrides: Any) -> dict[str, Any]:
    config = tmp / "accel.toml"
    config.write_text(toml + "[delegates.xnnpack]\nthreads = [1]\n")
    cfg = load_config(config, {**_FAST, **overrides}, env={})
    doc, path = compare(cfg, on_event=on_event, isolate=False, result_path=tmp / "out" / "result.json")
    on_disk = json.loads(path.read_text())
    assert on_disk["variants"] == json.loads(json.dumps(doc["variants"]))
    return on_disk


def test_no_meter_says_na_and_why_never_a_number(tmp_path: Path) -> None:
    doc = _run(tmp_path, _no_meters(tmp_path))
    assert doc["power"]["meter"] is None and doc["power"]["samples"] == [] and doc["power"]["energy_j"] is None
    why = doc["power"]["why"]
    assert why.startswith("no meter: pi5-pmic: ") and "hwmon: " in why and "rapl: " in why and "battery: " in why
    v = doc["variants"][0]
    assert v["status"] == "ok" and "power" not in v
    md = (tmp_path / "out" / "report.md").read_text()
    assert "n/a" in md and "no meter" in md


def test_command_meter_watts_flow_into_j_per_frame_and_fps_per_w(tmp_path: Path) -> None:
    """A constant 4.5 W: each variant's energy is 4.5 W x its window, J/frame = that / frames, and
    FPS/W = frames / window / 4.5 (formulas, not the code under test)."""
    doc = _run(tmp_path, '[power]\nmeter = "command"\nidle_s = 0.3\n[power.command]\ncommand = "echo 4.5"\n')
    assert doc["power"]["meter"] == "command" and doc["power"]["idle"]["watts"] == pytest.approx(4.5)
    v = doc["variants"][0]
    window = v["window"]["end"] - v["window"]["start"]
    p = v["power"]
    assert p["gross_w"] == pytest.approx(4.5) and p["net_w"] == pytest.approx(0.0, abs=1e-9)
    assert p["energy_j"] == pytest.approx(4.5 * window)
    assert p["j_per_frame"] == pytest.approx(4.5 * window / v["frames_measured"])
    assert p["fps_per_w"] == pytest.approx(v["frames_measured"] / window / 4.5)
    assert p["estimated"] is False
    assert all(w == pytest.approx(4.5) for _, w in doc["power"]["samples"])


def _wait_for(meter: ScriptedMeter, reads: int) -> None:
    """Block until the sampler thread has started read number ``reads`` (so every earlier one is recorded).
    Only a hang is timed: nothing asserted depends on how long this took."""
    deadline = time.monotonic() + 60
    while meter.reads < reads:
        assert time.monotonic() < deadline, f"the sampler made {meter.reads} reads, waited for {reads}"
        time.sleep(0.001)


def test_idle_baseline_is_subtracted_for_net_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scripted meter says 2 W until the variant starts and 5 W after, switched by the run's own events,
    not by a clock: once the sampler has read before the idle span (2 W held over it), and when the
    variant starts, after two more reads. The first read after the switch still says 2 W (the idle
    span's edge is interpolated towards it); only later reads say 5 W, and the variant's window opens
    after one of them is recorded. So idle is 2 W and the window 5 W exactly, however fast the run went."""
    switch: list[int] = []
    meter = ScriptedMeter(watts=lambda t: 5.0 if switch and meter.reads > switch[0] + 1 else 2.0,
                          clock=ManualClock(), script=MeterScript(name="phased"))
    monkeypatch.setitem(REGISTRY._extra, "phased", lambda: meter)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "idle":
            _wait_for(meter, 2)          # the first reading is recorded before the idle span begins
        elif kind == "start":
            switch.append(meter.reads)   # reads begun before now, and the next one, say 2 W
            _wait_for(meter, switch[0] + 3)  # read switch + 2 (5 W) is recorded

    toml = '[power]\nmeter = "phased"\nidle_s = 0.2\n[thermal]\npause_s = 0.25\n'
    doc = _run(tmp_path, toml, on_event=on_event)
    assert doc["power"]["idle"]["watts"] == pytest.approx(2.0, rel=1e-12)
    v = doc["variants"][0]
    assert v["power"]["gross_w"] == pytest.approx(5.0, rel=1e-12)
    assert v["power"]["net_w"] == pytest.approx(3.0, rel=1e-12)
    assert v["power"]["net_j_per_frame"] == pytest.approx(
        3.0 * (v["window"]["end"] - v["window"]["start"]) / v["frames_measured"], rel=1e-9)
    assert v["cool_down"]["waited_s"] == 0.25


def test_csv_log_meter_is_aligned_by_wall_clock_after_the_run(tmp_path: Path) -> None:
    """An external meter's log, 1 row per second at 3.25 W around the run: every window gets 3.25 W."""
    now = time.time()
    log = tmp_path / "meter.csv"
    log.write_text("timestamp,watts\n" + "".join(f"{now + s:.3f},3.25\n" for s in range(-30, 300)))
    doc = _run(tmp_path, f'[power]\nmeter = "csv"\nidle_s = 0.2\n[power.csv]\npath = "{log}"\n')
    assert doc["power"]["meter"] == "csv" and doc["power"]["idle"]["watts"] == pytest.approx(3.25)
    v = doc["variants"][0]
    assert v["power"]["gross_w"] == pytest.approx(3.25)
    assert v["power"]["j_per_frame"] == pytest.approx(
        3.25 * (v["window"]["end"] - v["window"]["start"]) / v["frames_measured"])


def test_sustained_run_reports_fps_over_time(tmp_path: Path) -> None:
    doc = _run(tmp_path, _no_meters(tmp_path), **{"thermal.sustained_s": 3.0, "pipeline.frames": 1000000})
    v = doc["variants"][0]
    s = v["sustained"]
    assert v["wall_s"] >= 3.0 and s["duration_s"] == pytest.approx(v["wall_s"])
    span = s["span_s"]
    assert span == pytest.approx(s["duration_s"] / 3)  # a run shorter than 3 minutes: thirds
    ends = v["frame_end"]
    assert s["first_fps"] == pytest.approx(sum(1 for t in ends if 0 < t <= span) / span)
    assert s["last_fps"] == pytest.approx(sum(1 for t in ends if s["duration_s"] - span < t <= s["duration_s"]) / span)
    assert s["throttled_after_s"] is None  # no throttling information here, not a made-up time


def test_compare_writes_every_format_and_preview_frames(tmp_path: Path) -> None:
    """The default output: results/<timestamp>/ with result.json, report.md, report.csv, report.html and
    the replayed frames the HTML preview draws on."""
    (tmp_path / "accel.toml").write_text(_no_meters(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--frames", "5", "--seconds", "0",
                           "--warmup", "0", "--threads", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "results").iterdir()
    names = sorted(p.name for p in run.iterdir())
    assert names == ["frames", "report.csv", "report.html", "report.md", "result.json"]
    doc = json.loads((run / "result.json").read_text())
    assert doc["source"]["saved_frames"] and all((run / p).is_file() for p in doc["source"]["saved_frames"].values())
    assert f"reports: {(run / 'report.md').relative_to(tmp_path)}" in proc.stdout
    assert "power: n/a (no meter: " in proc.stdout.replace("\n", " ")


def test_power_command_from_the_command_line_reaches_the_table(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", "--frames", "5", "--seconds", "0", "--warmup", "0",
                           "--delegates", "xnnpack", "--threads", "1", "--power-meter", "command", "--power-command",
                           "echo 6.0", "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    v = json.loads(out.read_text())["variants"][0]
    window = v["window"]["end"] - v["window"]["start"]
    row = next(line for line in proc.stdout.splitlines()
               if line.strip().startswith("xnnpack threads=1") and " + " not in line)  # the table's row
    assert "6.00" in row.split()  # W
    assert f"{6.0 * window / v['frames_measured']:.3f}" in row.split()  # J/frame = W x window / frames
    assert "W = mean power over the variant's measured window (command" in proc.stdout.replace("\n", " ")


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--power-meter", "bogus"], 2, "option --power-meter: unknown meter 'bogus'; known: auto, none, battery"),
    (["--power-meter", "rapl"], 3, "power meter 'rapl' unavailable: "),
    (["--power-meter", "hwmon", "--power-command", "echo 1"], 2, "option --power-command needs --power-meter command"),
], ids=["unknown-meter", "meter-absent", "command-without-command-meter"])
def test_bad_power_options_get_one_line(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    (tmp_path / "accel.toml").write_text(_no_meters(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "accel", "compare", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == code and "Traceback" not in proc.stderr
    assert len(lines) == 1 and says in lines[0], proc.stderr
