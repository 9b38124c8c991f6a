"""Fixtures of the watch tests: a server in this process whose frames come from a producer thread; the CDP
browser of the report tests on the path."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))  # cdp_browser

from watch_helpers import CHOICES, Served, fake_jpeg  # noqa: E402

from accel.watch.choices import Choice  # noqa: E402
from accel.watch.hub import Hub  # noqa: E402
from accel.watch.options import WatchOptions  # noqa: E402
from accel.watch.server import WatchServer  # noqa: E402


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(**WatchOptions fields)``: a server on a free port whose frames come from a producer thread."""
    running: list[tuple[Served, threading.Event, threading.Thread]] = []

    def start(rate_hz: float = 100.0, padding: int = 0, **fields: Any) -> Served:
        options = WatchOptions(**{"port": 0, **fields}).with_token()
        served = Served(Hub([c.label for c in CHOICES], options.max_clients), None)  # type: ignore[arg-type]
        served.hub.on_viewers = served.viewers.append

        def switch(label: str) -> Choice:
            choice = next((c for c in CHOICES if c.label == label), None)
            if choice is None:
                raise LookupError(label)
            served.switched.append(label)
            return choice

        served.server = WatchServer(options, served.hub, switch).start()
        stop = threading.Event()

        def produce() -> None:
            seq = 0
            while not stop.wait(1.0 / rate_hz):
                seq += 1
                served.hub.put_frame(fake_jpeg(seq, padding), {"frame": seq})

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        running.append((served, stop, thread))
        return served

    yield start
    for served, stop, thread in running:
        stop.set()
        thread.join()
        served.server.close()
