"""The watch page in a real browser: headless Chromium (over the DevTools Protocol, as the HTML report's
test drives it) loads ``accel watch``'s page with no request outside the server and no console error; the
stream's pixels change between two screenshots and the figures change; the page's selector switches the
variant, and a page of another site cannot."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cdp_browser import Browser, find_chromium
from PIL import Image
from watch_helpers import CHOICES, WatchProcess, wait_until

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


_ATTACK = """<!doctype html><title>another site</title><script>
const target = "http://127.0.0.1:PORT/variant", body = JSON.stringify({variant: "LABEL"});
window.attack = Promise.all([
  fetch(target, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body}),
  fetch(target, {method: "POST", mode: "no-cors", body: new URLSearchParams({variant: "LABEL"})}),
  fetch(target, {method: "POST", headers: {"Content-Type": "application/json"}, body}),  // needs a preflight
].map((sent) => sent.then((r) => r.type, (e) => "refused: " + e)));
</script>"""


class _AttackPage(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def _answered(events: list[dict[str, Any]], url: str) -> list[int]:
    """The statuses the browser got for its POSTs to ``url`` (opaque no-cors answers included)."""
    posts = {e["params"]["requestId"] for e in events if e["method"] == "Network.requestWillBeSent"
             and e["params"]["request"]["url"] == url and e["params"]["request"]["method"] == "POST"}
    return [e["params"]["response"]["status"] for e in events
            if e["method"] == "Network.responseReceived" and e["params"]["requestId"] in posts]


def test_the_page_switches_the_variant_and_another_site_cannot(serve: Any) -> None:
    """Cross-site request forgery in a real browser: a page on another site (localhost: not 127.0.0.1)
    POSTs to the server as forms and simple requests may, without a preflight; the server refuses every
    one, and the watch page's own selector still switches."""
    assert CHROMIUM is not None
    served = serve()
    target = CHOICES[1].label
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), _AttackPage)
    attacker.RequestHandlerClass.page = _ATTACK.replace("PORT", str(served.port)).replace("LABEL", target).encode()
    threading.Thread(target=attacker.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        with Browser(CHROMIUM, timeout=60) as browser:
            events = browser.visit(f"http://localhost:{attacker.server_address[1]}/")
            outcomes = browser.evaluate("window.attack", events)
            assert outcomes[2].startswith("refused: "), outcomes  # the preflight is not granted: never sent
            browser.seen(events)  # a round trip: the network events are in
            assert _answered(events, f"{served.url}/variant") == [403, 403], outcomes
            assert served.switched == []

            events = browser.visit(served.url + "/")
            wait_until(lambda: browser.evaluate("document.getElementById('variant').options.length", events) == 2,
                       what="the selector to list the choices")
            browser.evaluate(f"(() => {{ const s = document.getElementById('variant'); s.value = {json.dumps(target)}; "
                             "s.dispatchEvent(new Event('change')); })()", events)
            wait_until(lambda: served.switched == [target], what="the page's switch to reach the server")
            seen = browser.seen(events)
    finally:
        attacker.shutdown()
        attacker.server_close()
    assert seen.console_errors == [], seen.console_errors
