"""The pipelined executor's queueing logic, checked deterministically: stages block on events the test
controls, and the test waits on conditions (with a deadline), never on how long a sleep lasted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from accel.run.loop import bound
from accel.run.pipelined import Item, Stage, run_stages


def wait_for(condition: Callable[[], bool], deadline_s: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail (not hang) if it does not within the deadline."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self, item: Item) -> None:
        with self._lock:
            self.n += 1


def test_a_blocked_stage_holds_the_others_back_by_the_queue_depth() -> None:
    """capture -> q -> pre -> q -> inference (blocked) : with depth d, preprocessing runs exactly d + 2 frames
    ahead (one held by inference, d queued, one waiting to be queued) and then waits; released, every frame
    reaches the sink in order."""
    depth = 2
    release = threading.Event()
    pre, reads, got = Counter(), Counter(), []

    def read(i: int) -> tuple[int, float]:
        reads(Item(i, None, 0.0))
        return i, float(i)

    def infer(item: Item) -> None:
        release.wait(30)

    def sink(item: Item) -> bool:
        got.append(item.index)
        return len(got) < 12

    runner = threading.Thread(target=run_stages, args=(read, [Stage("pre", [pre]), Stage("inference", [infer])],
                                                       sink), kwargs={"depth": depth})
    runner.start()
    wait_for(lambda: pre.n == depth + 2)
    wait_for(lambda: reads.n == (depth + 2) + depth + 1)  # and capture is as far ahead of preprocessing
    assert got == []
    release.set()
    runner.join(30)
    assert not runner.is_alive()
    assert got == list(range(12))
    assert pre.n <= 12 + 2 * depth + 2  # what was in flight when the sink said stop


def test_parallel_streams_finish_out_of_order_and_the_sink_sees_frame_order() -> None:
    """Two inference workers; the one holding even frames is held until an odd frame has finished."""
    odd_done = threading.Event()
    got: list[int] = []

    def infer(item: Item) -> None:
        if item.index % 2 == 0 and item.index > 0:
            odd_done.wait(30)
        elif item.index % 2 == 1:
            odd_done.set()

    def sink(item: Item) -> bool:
        got.append(item.index)
        assert "inference" in item.spans and item.spans["inference"][0] <= item.spans["inference"][1]
        return len(got) < 20

    run_stages(lambda i: (i, 0.0), [Stage("inference", [infer, infer])], sink, depth=2)
    assert got == list(range(20))


def test_a_stage_error_ends_the_run_with_that_error_and_no_thread_left() -> None:
    before = threading.active_count()

    def post(item: Item) -> None:
        if item.index == 5:
            raise ValueError("decoder broke on frame 5")

    with pytest.raises(ValueError, match="frame 5"):
        run_stages(lambda i: (i, 0.0), [Stage("pre", [lambda item: None]), Stage("post", [post])],
                   lambda item: True)
    wait_for(lambda: threading.active_count() == before)


def test_a_source_error_ends_the_run() -> None:
    def read(i: int) -> tuple[int, float]:
        if i == 3:
            raise OSError("camera unplugged")
        return i, 0.0

    got: list[int] = []
    with pytest.raises(OSError, match="unplugged"):
        run_stages(read, [Stage("pre", [lambda item: None])], lambda item: got.append(item.index) is None)
    assert got == list(range(len(got))) and len(got) <= 3  # what reached the sink before the error, in order


def test_spans_are_taken_on_the_injected_clock() -> None:
    ticks = iter(range(1000))
    lock = threading.Lock()

    def clock() -> float:
        with lock:
            return float(next(ticks))

    items: list[Item] = []
    run_stages(lambda i: (i, 0.0), [Stage("only", [lambda item: None])], lambda item: items.append(item) or False,
               clock=clock)
    start, end = items[0].spans["only"]
    assert end == start + 1.0  # one clock reading before the work, the next after it


@pytest.mark.parametrize(("means", "streams", "expected"), [
    ({"preprocess": 0.002, "inference": 0.010, "postprocess": 0.001}, 1, (100.0, "inference")),
    ({"preprocess": 0.002, "inference": 0.010, "postprocess": 0.001}, 4, (400.0, "inference")),  # 4 streams
    ({"preprocess": 0.004, "inference": 0.010, "postprocess": 0.001}, 4, (250.0, "preprocess")),
    ({"preprocess": 0.0}, 1, (None, None)),
])
def test_the_bound_is_the_slowest_stage_alone(means: dict[str, float], streams: int, expected: tuple) -> None:  # type: ignore[type-arg]
    rate, stage = bound(means, streams)
    assert stage == expected[1]
    assert rate == (pytest.approx(expected[0]) if expected[0] is not None else None)
