"""SIGINT, SIGTERM and SIGHUP stop a run alike, once: a second signal cannot cut short the saving."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from accel.run.interrupt import Interrupted, stop_on_signals


def _deliver(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    for _ in range(1000):  # the handler runs between bytecodes, before this loop ends
        signal.getsignal(sig)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_each_signal_raises_interrupted_once(sig: signal.Signals, code: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with stop_on_signals():
        with pytest.raises(Interrupted) as caught:
            _deliver(sig)
        assert caught.value.signum == sig and caught.value.name == sig.name and caught.value.exit_code == code
        assert isinstance(caught.value, KeyboardInterrupt)  # code that cleans up on Ctrl-C does on all three
        for later in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            _deliver(later)  # ignored: the first one is being handled
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_plain_keyboard_interrupt_is_sigint() -> None:
    stop = Interrupted.of(KeyboardInterrupt())
    assert stop.signum == signal.SIGINT and stop.result is None and stop.outcome is None
    same = Interrupted(signal.SIGTERM)
    assert Interrupted.of(same) is same


@pytest.mark.parametrize(("result", "variants", "partial", "line"), [
    (None, 0, None, "accel: interrupted by SIGTERM before any frame was measured; no result was written"),
    ("r.json", 1, None, "accel: interrupted by SIGTERM; saved 1 variant record in r.json (complete: false)"),
    ("r.json", 3, ("xnnpack threads=4", 213), "accel: interrupted by SIGTERM; saved 3 variant records, with the 213 "
     "frames xnnpack threads=4 measured before it was stopped (status interrupted) in r.json (complete: false)"),
    ("r.json", 1, ("null", 0), "accel: interrupted by SIGTERM; saved 1 variant record, with null stopped before it "
     "kept a measured frame (status interrupted) in r.json (complete: false)"),
], ids=["before-capture", "between-variants", "mid-variant", "nothing-kept"])
def test_the_line_says_what_was_saved(result: str | None, variants: int, partial: tuple[str, int] | None,
                                      line: str) -> None:
    from pathlib import Path

    stop = Interrupted(signal.SIGTERM)
    stop.result, stop.variants, stop.partial = (Path(result) if result else None), variants, partial
    assert stop.saved_line() == line


def test_an_interrupt_while_the_reports_are_written_points_to_the_complete_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import accel.report
    from accel.compare.comparison import compare
    from accel.plan.config import load_config

    def cut(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(accel.report, "write_reports", cut)
    cfg = load_config(None, {"delegates": ["cpu-reference"], "pipeline.frames": 2, "pipeline.seconds": 0.0,
                             "pipeline.warmup": 0, "power.meter": "none"}, env={})
    with pytest.raises(Interrupted) as caught:
        compare(cfg, isolate=False, result_path=tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["complete"] is True and "interrupted" not in doc  # everything was measured and kept
    line = caught.value.saved_line()
    assert str(tmp_path / "r.json") in line and "(complete: true)" in line and "no result" not in line


def test_the_command_line_keeps_ignoring_signals_once_one_stopped_it() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(Interrupted), stop_on_signals(linger=True):
            _deliver(signal.SIGTERM)
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in before)  # a late one cannot raise at exit
    finally:
        for s, old in before.items():
            signal.signal(s, old)
    with stop_on_signals(linger=True):
        pass  # no signal came: the handlers are given back
    assert {s: signal.getsignal(s) for s in before} == before
