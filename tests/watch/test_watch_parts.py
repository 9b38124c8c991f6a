"""The watch's pure parts: options, the choice of variant, the sliding window's figures and the rows both
panels show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accel.compare.instruments import Instruments
from accel.core.errors import ConfigError
from accel.delegates import Variant
from accel.plan.config import load_config
from accel.power.fake import ManualClock, MeterScript, ScriptedMeter
from accel.watch.choices import Choice, best, find
from accel.watch.figures import rows
from accel.watch.hub import Hub
from accel.watch.options import StreamOptions, WatchOptions, is_loopback
from accel.watch.system import SystemProbe, open_live_meter
from accel.watch.window import Window


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.8.9.1", True), ("localhost", True),
                                           ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                           ("192.168.1.20", False), ("raspberrypi.local", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_lan_bind_gets_a_generated_token_and_loopback_none() -> None:
    lan = WatchOptions(host="0.0.0.0").with_token()
    assert lan.token and len(lan.token) >= 16 and lan.token_generated
    assert WatchOptions(host="0.0.0.0").with_token().token != lan.token
    assert WatchOptions().with_token().token is None
    given = WatchOptions(host="0.0.0.0", token="SECRET").with_token()
    assert given.token == "SECRET" and not given.token_generated


@pytest.mark.parametrize("fields,flag", [({"port": 70000}, "--port"), ({"max_clients": 0}, "--max-clients"),
                                         ({"host": " "}, "--host"), ({"token": "two words"}, "--token"),
                                         ({"token": ""}, "--token")], ids=lambda v: str(v))
def test_bad_watch_options_name_their_flag(fields: dict[str, Any], flag: str) -> None:
    with pytest.raises(ConfigError, match=f"option {flag}"):
        WatchOptions(**fields)


@pytest.mark.parametrize("fields,flag", [({"fps": 0}, "--stream-fps"), ({"fps": float("nan")}, "--stream-fps"),
                                         ({"size": "640"}, "--stream-size"), ({"size": "8x8"}, "--stream-size"),
                                         ({"quality": 0}, "--jpeg-quality")], ids=lambda v: str(v))
def test_bad_stream_options_name_their_flag(fields: dict[str, Any], flag: str) -> None:
    with pytest.raises(ConfigError, match=f"option {flag}"):
        StreamOptions(**fields)


@pytest.mark.parametrize("size,source,expected", [
    ("auto", (640, 480), (640, 480)), ("auto", (1920, 1080), (640, 360)), ("auto", (320, 240), (320, 240)),
    ("native", (1920, 1080), (1920, 1080)), ("800x600", (320, 240), (800, 600))])
def test_stream_size(size: str, source: tuple[int, int], expected: tuple[int, int]) -> None:
    assert StreamOptions(size=size).frame_size(*source) == expected


def _choice(delegate: str, threads: int | None = None, kernels: str = "opencv") -> Choice:
    return Choice(Variant(delegate, (("threads", threads),) if threads else ()), kernels)


@pytest.mark.parametrize("configured,expected", [
    ([_choice("cpu-reference"), _choice("xnnpack", 1), _choice("xnnpack", 4), _choice("xnnpack", 2)],
     "xnnpack threads=4"),
    ([_choice("null"), _choice("cpu-reference")], "cpu-reference"),
    ([_choice("litert-gpu"), _choice("litert-cpu", 2)], "litert-cpu threads=2"),
    ([_choice("null"), _choice("my-npu")], "my-npu"),
], ids=["most-xnnpack-threads", "reference-before-null", "cpu-before-gpu", "third-party-before-null"])
def test_the_default_choice(configured: list[Choice], expected: str) -> None:
    assert best(configured).variant.label == expected


def test_find_takes_the_full_label_or_the_variant_alone() -> None:
    options = [_choice("xnnpack", 2, "opencv"), _choice("xnnpack", 2, "numpy")]
    assert find(options, "xnnpack threads=2 + numpy") == options[1]
    assert find(options, "xnnpack  threads=2") == options[0]  # its first kernel set
    assert find(options, "xnnpack threads=3") is None


def test_the_window_keeps_the_last_seconds_only() -> None:
    clock = ManualClock()
    window = Window(span_s=2.0, clock=clock)
    for i in range(40):  # 10 frames a second for 4 s: inference 10 ms, then 30 ms from t=2
        clock.t = 0.1 * (i + 1)
        window.add(clock.t, {"inference": 0.010 if i < 20 else 0.030}, 0.050, 0.004, i % 3)
    window.add_encode(clock.t, 0.005, 2048)
    summary = window.summary()
    assert summary["frames"] == 40
    assert summary["fps"] == pytest.approx(21 / 2.0)  # frames ending in [2.0, 4.0]: 2.0 (i=19) .. 4.0 (i=39)
    assert summary["stage_ms"]["inference"] == pytest.approx((10 + 30 * 20) / 21, abs=1e-3)  # rounded to µs
    assert summary["e2e_ms"]["p50"] == pytest.approx(50.0) and summary["age_ms"]["p90"] == pytest.approx(4.0)
    assert summary["encode"] == {"ms": 5.0, "fps": 0.5, "kb": 2.0, "frames": 1}
    assert summary["stage_ms"]["encode"] == 5.0
    clock.t = 10.0  # nothing for 6 s: the detector is stuck, and the figures say so
    assert window.summary()["fps"] == 0.0 and window.summary()["e2e_ms"] is None


def test_rows_say_na_and_why() -> None:
    stats = {"variant": "null + numpy", "status": "crashed", "error": "signal 11 (SIGSEGV)", "for_s": 1.0,
             "power": {"watts": None, "why": "no meter: power.meter = none"},
             "system": {"cpu_cores": [10.0, 20.0], "temp_c": None, "throttled": None}, "stream": {"clients": 0}}
    shown = dict(rows(stats))
    assert shown["variant"] == "null + numpy: crashed for 1.0 s: signal 11 (SIGSEGV)"
    assert shown["FPS"] == "n/a (not running)"
    assert shown["power"] == "n/a (no meter: power.meter = none)"
    assert shown["CPU per core %"] == "10 · 20"
    assert "throttling n/a" in shown["temperature"] and "n/a" in shown["drops"]


def test_rows_of_a_running_variant() -> None:
    stats = {"variant": "xnnpack threads=4 + opencv", "status": "running", "for_s": 9.0, "fps": 12.5, "frames": 100,
             "stage_ms": {"capture": 1.0, "preprocess": 2.0, "inference": 70.0, "postprocess": 0.5, "encode": 4.0},
             "e2e_ms": {"mean": 80.0, "p50": 79.0, "p90": 90.0},
             "drops": {"dropped": 3, "skipped": 0, "delivered": 120},
             "detections": {"last": 2, "mean": 1.5, "top": [{"label": "leaf", "score": 0.9}]},
             "power": {"watts": 5.0, "j_per_frame": 0.4, "meter": "pi5-pmic", "estimated": False},
             "system": {"temp_c": 61.2, "throttled": "0x0", "throttled_flags": []},
             "stream": {"encoder": "simplejpeg", "size": [640, 480], "fps": 14.8, "fps_limit": 15.0, "kb": 30.0,
                        "clients": 2, "max_clients": 8}}
    shown = dict(rows(stats))
    assert shown["FPS"] == "12.5 · 100 frames"
    assert shown["stage ms"] == "capture 1.00 · pre 2.00 · infer 70.00 · post 0.50 · draw+encode 4.00"
    assert shown["power"] == "5.00 W · 0.400 J/frame (pi5-pmic)"
    assert shown["temperature"] == "61.2 °C · not throttled"
    assert shown["detections"] == "2 in the newest frame · 1.50 per frame · leaf 0.90"
    assert shown["stream"] == "simplejpeg 640x480 · 14.8 of at most 15 FPS · 30.0 KB a frame · 2/8 clients"
    stats["stream"] = {**stats["stream"], "encoder": "picamera2 MJPEGEncoder (hardware)",
                       "encode_timed": "hardware latency"}
    assert dict(rows(stats))["stream"].endswith("2/8 clients · drawn on the CPU, encoded in hardware (draw+encode: "
                                                "the drawing and the encoder's latency)")
    stats["stream"] = {**stats["stream"], "encoder": "simplejpeg", "encode_timed": "cpu", "note": "why"}
    assert dict(rows(stats))["stream"].endswith("2/8 clients · why")


@pytest.mark.parametrize("kind", ["power", "energy"])
def test_the_system_probe_gives_watts_and_the_hub_j_per_frame(kind: str) -> None:
    """A 4 W load read as watts, or as an energy counter (its first reading has nothing to difference)."""
    clock = ManualClock(100.0)
    meter = ScriptedMeter(watts=lambda t: 4.0, clock=clock) if kind == "power" else \
        ScriptedMeter(energy=lambda t: 4.0 * t, clock=clock)
    probe = SystemProbe(lambda figures: None, lambda: None, meter, "unused")
    first = probe.sample()
    clock.sleep(1.0)
    second = probe.sample()["power"]
    assert second == {"watts": 4.0, "meter": "fake", "estimated": False, "why": None}
    assert first["power"]["watts"] == (4.0 if kind == "power" else None)
    assert set(first) >= {"cpu_cores", "server_cpu", "server_rss_mb", "temp_c", "throttled"}
    hub = Hub(["null + numpy"])
    hub.set_status("null + numpy", "running")
    hub.put_worker({"fps": 20.0})
    hub.put_system({"power": second})
    assert hub.stats()["power"]["j_per_frame"] == pytest.approx(0.2)  # 4 W / 20 frames a second


def test_a_failing_meter_says_why() -> None:
    meter = ScriptedMeter(watts=lambda t: 1.0, script=MeterScript(fail_at=0))
    probe = SystemProbe(lambda figures: None, lambda: None, meter, "unused")
    assert probe.sample()["power"] == {"watts": None, "why": "fake: fake meter failed on read 0"}


@pytest.mark.parametrize("text,says", [
    ('[power]\nmeter = "none"\n\n[power.hwmon]\nnme = "x"\n', "accel.toml: power.hwmon.nme (line 5): unknown option "
                                                            "'nme'; known: name, root"),
    ('[power]\nmeter = "nosuch"\n', "accel.toml: power.meter (line 2): unknown meter 'nosuch'"),
    ('[power]\nmeter = "none"\n[power.nosuch]\nx = 1\n', "accel.toml: power.nosuch (line 3): unknown meter 'nosuch'"),
], ids=["unused-table-typo", "unknown-meter", "unknown-table"])
def test_watch_picks_its_meter_as_compare_does(tmp_path: Path, text: str, says: str) -> None:
    """One selection for both (``accel.compare.instruments.select_meter``): every ``[power.NAME]`` table is checked,
    and what is wrong names accel.toml's line, the same words as ``Instruments`` says."""
    (tmp_path / "accel.toml").write_text(text)
    config = load_config(tmp_path / "accel.toml", env={})
    with pytest.raises(ConfigError) as watched:
        open_live_meter(config)
    with pytest.raises(ConfigError) as compared:
        Instruments(config)
    assert str(watched.value) == str(compared.value) and str(watched.value).startswith(says), str(watched.value)


def test_watch_takes_only_a_live_meter(tmp_path: Path) -> None:
    log = tmp_path / "power.csv"
    log.write_text("t,watts\n")
    config = load_config(None, {"power.meter": "csv", "power.csv.path": str(log)}, env={})
    assert open_live_meter(config) == (None, "meter 'csv' is a log read after a run; accel watch needs a live meter")
    assert open_live_meter(load_config(None, {"power.meter": "none"}, env={})) == (None, "no meter: power.meter = none")
