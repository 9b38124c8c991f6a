from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from accel.compare.comparison import compare
from accel.core.frames import Frame, PixelFormat
from accel.delegates import REGISTRY, Variant
from accel.delegates.fake import FakeDelegate, FakeScript
from accel.model import load_model
from accel.plan.config import load_config
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.results.record import Startup, Status
from accel.run.interrupt import Interrupted
from accel.run.pipeline import input_spec, run_job
from accel.run.worker import run_isolated


@pytest.fixture
def crashy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The crashing delegate registered by hand in this process (for this test); workers register it again."""
    monkeypatch.setitem(REGISTRY._extra, "crashy", __import__("crashy_plugin").CrashyDelegate)


def rgb_frames(n: int, size: int = 4, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        rgb = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        out.append(Frame(rgb, size, size, PixelFormat.RGB, size * 3, index=i, capture_s=0.001))
    return out


@pytest.mark.parametrize("delegate", ["cpu-reference", "xnnpack"])
def test_classifier_answers_match_hand_computed_logits(tiny_classifier, delegate: str) -> None:  # type: ignore[no-untyped-def]
    path, weights, bias = tiny_classifier
    model = load_model(path)
    frames = rgb_frames(6)
    settings = Settings(frames=6, seconds=0.0, warmup=1, top_k=3, save_detections=6)
    rec = run_job(Job(model, Variant(delegate, (("threads", 1),)), "numpy", settings), frames)
    assert rec.timings.frames_measured == 6
    for f in frames:
        x = f.data.astype(np.float64) / 127.5 - 1.0  # float32 input, auto range -1..1
        logits = weights.astype(np.float64) @ x.ravel() + bias
        expected = list(np.argsort(-logits, kind="stable")[:3])
        got = [d["class_id"] for d in rec.run.detections[str(f.index)]]
        assert got == expected
    for stage in ("preprocess", "inference", "postprocess"):
        assert rec.timings.stages[stage].mean > 0
    assert rec.timings.fps > 0 and rec.run.inference_fps > 0


def test_run_meets_both_frame_and_time_limits(tiny_classifier) -> None:  # type: ignore[no-untyped-def]
    model = load_model(tiny_classifier[0])
    rec = run_job(Job(model, Variant("null"), "numpy", Settings(frames=5, seconds=0.3, warmup=0)), rgb_frames(3))
    assert rec.timings.frames_measured >= 5
    assert rec.timings.wall_s >= 0.3


@pytest.mark.parametrize(
    ("dtype", "scale", "zp", "expected"),
    [
        pytest.param("uint8", 1 / 128, 128, ("uint8", 1.0, 0, (0.0, 255.0)), id="uint8-raw-pixels"),
        pytest.param("int8", 1 / 255, -128, ("int8", 1 / 255, -128, (0.0, 1.0)), id="int8-0..1"),
        pytest.param("int8", 1 / 127.5, -1, ("int8", 1 / 127.5, -1, (-1.0, 1.0)), id="int8--1..1"),
    ],
)
def test_input_spec_from_quantization(tiny_classifier, dtype: str, scale: float, zp: int, expected) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    model = load_model(tiny_classifier[0])
    model = replace(model, inputs=(replace(model.inputs[0], dtype=dtype, scale=scale, zero_point=zp),))
    spec = input_spec(model)
    assert (spec.dtype, spec.zero_point, spec.norm_range) == (expected[0], expected[2], expected[3])
    assert spec.scale == pytest.approx(expected[1])


@pytest.mark.parametrize(("family", "input_range", "expected", "rule"), [
    # a real third-party YOLOv8n full-int8 export: scale 0.01866, zero point -14 spans -2.13..2.63, and the
    # network takes 0..1 all the same (Ultralytics trains on 0..1): the family decides, not the span
    pytest.param("yolov8", "auto", (0.0, 1.0), "yolov8 family: YOLO exports take 0..1", id="yolo-family-wins"),
    # the same span on a model of no YOLO family: snapped to the nearest of 0..1, -1..1, 0..255 by hand:
    # |-2.127 + 1| + |2.631 - 1| = 2.758 < |-2.127 - 0| + |2.631 - 1| = 3.758
    pytest.param("classifier", "auto", (-1.0, 1.0), "int8 quantization spans -2.13..2.63: nearest -1..1",
                 id="span-snapped"),
    pytest.param("yolov8", "-1,1", (-1.0, 1.0), "[model] input_range = -1,1", id="config-wins"),
])
def test_int8_input_range_rule(tiny_classifier, family: str, input_range: str, expected: tuple[float, float],  # type: ignore[no-untyped-def]
                               rule: str) -> None:
    from dataclasses import replace

    from accel.model import Family

    model = load_model(tiny_classifier[0])
    model = replace(model, family=Family(family),
                    inputs=(replace(model.inputs[0], dtype="int8", scale=0.01866, zero_point=-14),))
    spec = input_spec(model, input_range=input_range)
    assert (spec.norm_range, spec.range_from) == (expected, rule)
    assert (spec.scale, spec.zero_point) == (0.01866, -14)


def _compare_with_fake(tmp_path: Path, script: FakeScript) -> dict:  # type: ignore[type-arg]
    REGISTRY.register("fake", lambda: FakeDelegate(script))
    cfg = load_config(None, {"delegates": ["null", "fake", "cpu-reference"], "pipeline.frames": 8,
                             "pipeline.seconds": 0.0, "pipeline.warmup": 0}, env={})
    doc, path = compare(cfg, isolate=False, result_path=tmp_path / "r.json")
    assert json.loads(path.read_text())["variants"] == json.loads(json.dumps(doc["variants"]))
    return doc


def test_failing_variant_is_recorded_and_run_goes_on(tmp_path: Path) -> None:
    doc = _compare_with_fake(tmp_path, FakeScript(fail_at=3))
    status = {v["variant"]: v["status"] for v in doc["variants"]}
    assert status == {"null": "ok", "fake": "failed", "cpu-reference threads=1": "ok"}
    fake = next(v for v in doc["variants"] if v["delegate"] == "fake")
    assert "failed on run 3" in fake["error"]
    assert doc["complete"] is True


def test_unavailable_delegate_is_recorded_with_reason(tmp_path: Path) -> None:
    doc = _compare_with_fake(tmp_path, FakeScript(unavailable="no GPU device: install a driver"))
    fake = next(v for v in doc["variants"] if v["delegate"] == "fake")
    assert fake["status"] == "unavailable" and fake["error"] == "no GPU device: install a driver"


@pytest.mark.parametrize(("how", "signal_name", "printed"), [("segv", "SIGSEGV", None),
                                                           ("abort", "SIGABRT", "free(): invalid size")])
def test_crashing_delegate_is_isolated(tiny_classifier, crashy, how: str, signal_name: str,  # type: ignore[no-untyped-def]
                                       printed: str | None) -> None:
    model = load_model(tiny_classifier[0])
    settings = Settings(frames=3, seconds=0.0, warmup=0)
    rec = run_isolated(Job(model, Variant("crashy", (("how", how),)), "numpy", settings), rgb_frames(2))
    assert rec.status is Status.CRASHED
    assert signal_name in rec.error
    assert f"{rec.status.value}: {rec.error}".startswith("crashed: signal ")  # said once (issue 15 part 11)
    if printed:
        assert printed in rec.error
    ok = run_isolated(Job(model, Variant("xnnpack", (("threads", 1),)), "numpy",
                          replace(settings, timeout_s=60.0)), rgb_frames(2))  # the 2 s were the hang's
    assert ok.status is Status.OK and ok.run.usage.peak_rss_mb > 0


def test_hanging_delegate_times_out_and_the_next_variant_runs(tiny_classifier, crashy) -> None:  # type: ignore[no-untyped-def]
    import time

    model = load_model(tiny_classifier[0])
    settings = Settings(frames=3, seconds=0.0, warmup=0, timeout_s=2.0)
    start = time.monotonic()
    rec = run_isolated(Job(model, Variant("crashy", (("how", "hang"),)), "numpy", settings), rgb_frames(2))
    assert rec.status is Status.TIMEOUT and "timed out after 2 s" in rec.error
    assert time.monotonic() - start < 60  # the limit counts from the worker's start, not from spawning
    ok = run_isolated(Job(model, Variant("xnnpack", (("threads", 1),)), "numpy",
                          replace(settings, timeout_s=60.0)), rgb_frames(2))  # the 2 s were the hang's
    assert ok.status is Status.OK


def test_frames_stream_to_the_caller_as_they_are_measured(tiny_classifier) -> None:  # type: ignore[no-untyped-def]
    model = load_model(tiny_classifier[0])
    seen: list[tuple[str, object]] = []
    rec = run_job(Job(model, Variant("null"), "numpy", Settings(frames=6, seconds=0.0, warmup=0)), rgb_frames(3),
                  on_frame=lambda kind, data: seen.append((kind, data)))
    t = rec.timings
    assert seen[0] == ("init", Startup(rec.startup.load_ms, rec.startup.first_inference_ms))
    assert seen[1] == ("window", t.window.start)
    frames = [data for kind, data in seen if kind == "frame"]
    assert len(frames) == t.frames_measured == 6
    # Each streamed frame carries the same durations the record's per-frame lists hold, in order.
    assert [round(stages["inference"] * 1e3, 4) for _, stages, _, _ in frames] == t.raw_ms["inference"]
    assert [round(end, 5) for end, _, _, _ in frames] == t.frame_end
    # Replayed frames: end-to-end is preprocess + inference + postprocess of the frame; no age (not live).
    for _, stages, e2e, age in frames:
        assert e2e == pytest.approx(stages["preprocess"] + stages["inference"] + stages["postprocess"], abs=2e-4)
        assert age is None
    assert t.window.end - t.window.start == pytest.approx(t.wall_s)
    assert t.frame_end[-1] <= t.wall_s + 1e-5  # ends are rounded to 10 µs


def test_a_crash_part_way_keeps_the_frames_measured_before_it(tiny_classifier, crashy) -> None:  # type: ignore[no-untyped-def]
    model = load_model(tiny_classifier[0])
    settings = Settings(frames=50, seconds=0.0, warmup=0)
    # after=6: the first inference and 5 measured frames succeed, the 6th measured frame's run segfaults.
    rec = run_isolated(Job(model, Variant("crashy", (("how", "segv"), ("after", 6))), "numpy", settings), rgb_frames(2))
    assert rec.status is Status.CRASHED and "SIGSEGV" in rec.error
    assert rec.partial is True and rec.timings.frames_measured == 5
    assert "after 5 measured frames" in rec.error
    assert len(rec.timings.raw_ms["inference"]) == len(rec.timings.frame_end) == 5
    assert rec.timings.stages["preprocess"].mean > 0
    assert rec.timings.window.start < rec.timings.window.end


def test_an_interrupt_stops_the_worker_and_keeps_the_frames_streamed(tiny_classifier) -> None:  # type: ignore[no-untyped-def]
    model = load_model(tiny_classifier[0])
    settings = Settings(frames=10**9, seconds=600.0, warmup=0)
    seen: list[int] = []

    def ctrl_c_after_ten(n: int, total: int) -> None:  # progress comes after the frames it counts
        seen.append(n)
        if n >= 10:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        run_isolated(Job(model, Variant("xnnpack", (("threads", 1),)), "numpy", settings), rgb_frames(2),
                     ctrl_c_after_ten)
    stop = caught.value
    assert stop.signum == signal.SIGINT and stop.exit_code == 130
    out = stop.outcome
    assert out is not None and out.status is Status.INTERRUPTED and out.partial is True
    assert out.timings.frames_measured >= seen[-1] >= 10
    assert out.error.startswith(f"stopped by SIGINT (after {out.timings.frames_measured} measured frames")


def test_crash_and_hang_are_outcomes_and_the_others_stay_on_disk(tmp_path: Path) -> None:
    """Through compare, in worker processes: the segfaulting and hanging variants are recorded, and the
    variants before and after them are intact in the file on disk."""
    REGISTRY.register("crashy", __import__("crashy_plugin").CrashyDelegate)
    REGISTRY.register("hangs", __import__("crashy_plugin").CrashyDelegate)
    cfg = load_config(None, {"delegates": ["null", "crashy", "hangs", "cpu-reference"], "pipeline.frames": 4,
                             "pipeline.seconds": 0.0, "pipeline.warmup": 0, "pipeline.timeout_s": 3.0,
                             "delegates.hangs.how": "hang"}, env={})
    doc, path = compare(cfg, result_path=tmp_path / "r.json")
    on_disk = json.loads(path.read_text())
    status = {v["variant"]: v["status"] for v in on_disk["variants"]}
    assert status == {"null": "ok", "crashy how=segv after=0": "crashed", "crashy how=hang after=0": "timeout",
                      "cpu-reference threads=1": "ok"}
    assert on_disk["complete"] is True
    ref = next(v for v in on_disk["variants"] if v["delegate"] == "cpu-reference")
    assert ref["frames_measured"] == 4 and ref["stages"]["inference"]["mean"] > 0


def test_a_crash_at_exit_after_reporting_keeps_the_result_and_says_so(tiny_classifier, crashy) -> None:  # type: ignore[no-untyped-def]
    model = load_model(tiny_classifier[0])
    settings = Settings(frames=3, seconds=0.0, warmup=0)
    rec = run_isolated(Job(model, Variant("crashy", (("how", "at-exit"),)), "numpy", settings), rgb_frames(2))
    assert rec.status is Status.OK and rec.timings.frames_measured == 3
    assert rec.teardown.startswith("crashed at exit: signal 6 (SIGABRT)")
    assert "corrupted size vs. prev_size" in rec.teardown


def test_serial_and_pipelined_are_both_recorded_with_their_figures(tmp_path: Path) -> None:
    """The null delegate (the harness's own ceiling) in both modes, in worker processes."""
    cfg = load_config(None, {"delegates": ["null"], "pipeline.frames": 40, "pipeline.seconds": 0.0,
                             "pipeline.warmup": 2, "pipeline.execution": ["serial", "pipelined"],
                             "power.meter": "none", "output.formats": []}, env={})
    doc, _ = compare(cfg, result_path=tmp_path / "r.json")
    serial, pipelined = doc["variants"]
    assert (serial["execution"], pipelined["execution"]) == ("serial", "pipelined")
    for v in (serial, pipelined):
        assert v["status"] == "ok" and v["frames_measured"] == 40 and v["fps"] > 0
        assert v["bound_fps"] > 0 and v["bound_stage"] in ("preprocess", "inference", "postprocess")
        assert v["e2e_ms"]["p50"] > 0 and "frame_age_ms" not in v  # replay: no age
        assert len(v["usage"]["cpu_cores_busy"]) >= 1
    assert pipelined["queue_depth"] == 2 and pipelined["inference_streams"] == 1
    # The trace spans are ordered per frame: preprocess before inference before postprocess.
    spans = {(f, s): (a, b) for f, s, a, b in pipelined["trace"]}
    for frame in {f for f, _ in spans}:
        assert spans[frame, "preprocess"][1] <= spans[frame, "inference"][0] <= spans[frame, "inference"][1] \
            <= spans[frame, "postprocess"][0]


def test_a_crash_mid_pipeline_keeps_the_frames_measured(tiny_classifier, crashy) -> None:  # type: ignore[no-untyped-def]
    model = load_model(tiny_classifier[0])
    settings = Settings(frames=50, seconds=0.0, warmup=0)
    # The first inference and the 30-frame serial calibration succeed, then 10 pipelined inferences. At most
    # 6 inferred frames wait past inference (two queues of depth 2 and the two threads between them), so
    # however the threads are scheduled at least 4 frames reached the sink and were streamed.
    rec = run_isolated(Job(model, Variant("crashy", (("how", "segv"), ("after", 1 + 30 + 10))), "numpy", settings,
                           "pipelined"), rgb_frames(2))
    assert rec.status is Status.CRASHED and "SIGSEGV" in rec.error
    assert rec.partial is True and 4 <= rec.timings.frames_measured <= 10
    assert rec.timings.e2e_ms is not None


def test_a_worker_that_floods_messages_past_its_deadline_still_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the deadline the parent reads what was sent in time, for a second at most: a worker that never
    stops sending cannot hold it there."""
    import multiprocessing as mp
    import threading

    from accel.run import worker

    monkeypatch.setattr(worker, "_STARTUP_S", 0.2)
    monkeypatch.setattr(worker, "_DRAIN_S", 0.2)
    recv, send = mp.Pipe(duplex=False)
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            send.send(("progress", 1, 2))

    class Alive:
        def is_alive(self) -> bool:
            return True

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    answer: list[bool] = []
    collector = threading.Thread(target=lambda: answer.append(worker._collect(Alive(), recv, worker._Streamed(), 0.2,
                                                                              None)), daemon=True)
    collector.start()
    collector.join(60)
    stop.set()
    assert not collector.is_alive() and answer == [False]
    while recv.poll(0):
        recv.recv()  # let the flooder's last send return
    flooder.join(10)
