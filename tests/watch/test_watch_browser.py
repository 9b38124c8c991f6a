"""The watch page in a real browser: headless Chromium (over the DevTools Protocol, as the HTML report's
test drives it) loads ``accel watch``'s page with no request outside the server and no console error; the
stream's pixels change between two screenshots and the figures change."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cdp_browser import Browser, find_chromium
from PIL import Image
from watch_helpers import WatchProcess, wait_until

pytest.importorskip("websocket", reason="driving Chromium needs websocket-client (the dev extra)")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_the_page_shows_the_stream_and_moving_figures(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    watch = WatchProcess("--port", "0", "--delegates", "null", "--source", "synthetic:320x240", "--source-fps", "15",
                         "--power-meter", "none", cwd=tmp_path)
    try:
        url = watch.url()
        with Browser(CHROMIUM, timeout=60) as browser:
            events = browser.visit(url)
            figures = wait_until(lambda: "frames" in (t := browser.text("#figures", events)) and t, timeout=60,
                                 what="the figures to show")
            wait_until(lambda: browser.text("#figures", events) != figures, what="the figures to change")
            assert "null + opencv" in browser.text("#variant", events)
            wait_until(lambda: browser.text("#status", events) == "running", what="the status to say running")
            def frame() -> tuple[np.ndarray] | None:  # a screenshot of the stream once it shows a picture
                shot = _pixels(browser.shot("#stream", events))
                return (shot,) if shot.std() > 5 else None

            (first,) = wait_until(frame, timeout=60, what="the stream to show a frame")
            assert first.shape[:2] == (240, 320)
            wait_until(lambda: np.abs(_pixels(browser.shot("#stream", events)) - first).mean() > 1,
                       what="the stream's pixels to change")
            seen: Any = browser.seen(events)
    finally:
        watch.interrupt()
        watch.kill()
    assert seen.console_errors == [], seen.console_errors
    origin = url.rstrip("/")
    outside = [u for u in seen.requests if not u.startswith(origin + "/") and not u.startswith("data:")]
    assert outside == [], f"the page asked for {outside}"
    assert any(u.startswith(origin + "/stream.mjpg") for u in seen.requests)
    assert any(u.startswith(origin + "/stats.json") for u in seen.requests)
