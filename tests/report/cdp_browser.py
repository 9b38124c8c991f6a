"""A headless Chromium driven over the Chrome DevTools Protocol (websocket-client): load a page offline and
record what a user's browser would do with it: console errors, exceptions, every network request, a
screenshot and the boxes of chosen elements."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageRun:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    boxes: list[dict[str, Any]] = field(default_factory=list)
    version: str = ""


class Browser:
    """``with Browser(exe) as b: run = b.load(path, selector)``; the process and its profile go on exit."""

    def __init__(self, exe: str, timeout: float = 60.0) -> None:
        self.exe, self.timeout = exe, timeout
        self._profile = tempfile.mkdtemp(prefix="accel-chromium-")
        self._log = open(Path(self._profile) / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        args = [exe, "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-port=0",
                "--remote-allow-origins=*", f"--user-data-dir={self._profile}", "--window-size=1200,900",
                "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._ws: Any = None
        self._id = 0

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # the browser may already be gone
                pass
            self._ws = None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def log_tail(self) -> str:
        self._log.flush()
        return (Path(self._profile) / "chromium.log").read_bytes()[-3000:].decode(errors="replace")

    def _port(self) -> int:
        """Chromium writes the port it picked into <profile>/DevToolsActivePort."""
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}: {self.log_tail()}")
            if marker.exists():
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not open its DevTools port in {self.timeout} s: {self.log_tail()}")

    def _connect(self) -> None:
        import urllib.request

        import websocket

        port = self._port()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    targets = json.load(r)
                page = next(t for t in targets if t.get("type") == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout,
                                               suppress_origin=True)

    def _send(self, method: str, events: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer, keeping every event that arrives meanwhile."""
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                events.append(msg)
        raise TimeoutError(f"no answer to {method} in {self.timeout} s")

    def _wait_event(self, name: str, events: list[dict[str, Any]]) -> None:
        if any(e["method"] == name for e in events):
            return
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self._ws.recv())
            if "method" in msg:
                events.append(msg)
                if msg["method"] == name:
                    return
        raise TimeoutError(f"no {name} in {self.timeout} s")

    def load(self, page: Path, selector: str) -> PageRun:
        """Load ``page`` (file://) with the network offline; screenshot the whole page at scale 1 and the
        document-coordinate boxes of every element matching ``selector``."""
        if self._ws is None:
            self._connect()
        ev: list[dict[str, Any]] = []
        run = PageRun()
        run.version = self._send("Browser.getVersion", ev).get("product", "")
        for domain in ("Runtime", "Log", "Network", "Page"):
            self._send(f"{domain}.enable", ev)
        self._send("Network.emulateNetworkConditions", ev, offline=True, latency=0, downloadThroughput=-1,
                   uploadThroughput=-1)
        self._send("Page.navigate", ev, url=page.resolve().as_uri())
        self._wait_event("Page.loadEventFired", ev)
        size = self._eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]", ev)
        self._send("Emulation.setDeviceMetricsOverride", ev, width=max(1200, size[0]), height=size[1],
                   deviceScaleFactor=1, mobile=False)
        run.boxes = self._eval(
            f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(e => {{"
            "const r = e.getBoundingClientRect(); return {id: e.id, x: r.left + window.scrollX, "
            "y: r.top + window.scrollY, width: r.width, height: r.height}; })", ev)
        shot = self._send("Page.captureScreenshot", ev, format="png", captureBeyondViewport=True)
        import base64

        run.screenshot = base64.b64decode(shot["data"])
        self._eval("0", ev)  # a round trip, so late console events are in
        _collect(ev, run)
        return run

    def visit(self, url: str) -> list[dict[str, Any]]:
        """Navigate to ``url`` with the network on (a page a local server serves, which keeps loading: a
        stream, polled figures) and wait for its load event; the list returned keeps every event seen, and
        ``shot``, ``text`` and ``seen`` add to it."""
        if self._ws is None:
            self._connect()
        ev: list[dict[str, Any]] = []
        for domain in ("Runtime", "Log", "Network", "Page"):
            self._send(f"{domain}.enable", ev)
        self._send("Emulation.setDeviceMetricsOverride", ev, width=1200, height=900, deviceScaleFactor=1, mobile=False)
        self._send("Page.navigate", ev, url=url)
        self._wait_event("Page.loadEventFired", ev)
        return ev

    def shot(self, selector: str, events: list[dict[str, Any]]) -> bytes:
        """A PNG of the first element matching ``selector``, as shown now."""
        import base64

        box = self._eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                         " return {x: r.left, y: r.top, width: r.width, height: r.height}; })()", events)
        shot = self._send("Page.captureScreenshot", events, format="png", clip={**box, "scale": 1})
        return base64.b64decode(shot["data"])

    def text(self, selector: str, events: list[dict[str, Any]]) -> str:
        return str(self._eval(f"document.querySelector({json.dumps(selector)}).textContent", events))

    def seen(self, events: list[dict[str, Any]]) -> PageRun:
        """The console errors and requests among ``events`` so far."""
        self._eval("0", events)
        run = PageRun()
        _collect(events, run)
        return run

    def evaluate(self, expression: str, events: list[dict[str, Any]]) -> Any:
        """The value of ``expression`` in the page, a promise awaited (what a ``fetch`` it starts answers)."""
        return self._eval(expression, events, await_promise=True)

    def _eval(self, expression: str, events: list[dict[str, Any]], await_promise: bool = False) -> Any:
        result = self._send("Runtime.evaluate", events, expression=expression, returnByValue=True,
                            awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


def _collect(events: list[dict[str, Any]], run: PageRun) -> None:
    """Console errors, exceptions and requests among DevTools events, into ``run``."""
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") == "error":
            run.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            run.console_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        elif m == "Runtime.exceptionThrown":
            run.console_errors.append(str(p.get("exceptionDetails", {}).get("text")))
        elif m == "Network.requestWillBeSent":
            run.requests.append(p["request"]["url"])


def region_stdev(png: bytes, box: dict[str, Any]) -> float:
    """Pixel standard deviation (grey levels) of ``box`` in the screenshot: ~0 for a blank region."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        x0, y0 = int(box["x"]), int(box["y"])
        crop = im.convert("L").crop((x0, y0, x0 + int(box["width"]), y0 + int(box["height"])))
        return float(np.asarray(crop, dtype=float).std())
