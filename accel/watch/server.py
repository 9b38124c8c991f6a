"""The HTTP side of ``accel watch``, standard library only (``http.server.ThreadingHTTPServer``):

    GET  /              the page (one self-contained HTML document: no external asset, works offline)
    GET  /stream.mjpg   multipart/x-mixed-replace JPEG frames, the newest one each time the client is ready
    GET  /snapshot.jpg  the newest annotated frame
    GET  /stats.json    the figures (``Hub.stats``, with the display rows)
    POST /variant       {"variant": LABEL}: run another configured choice (202), 400 for any other label

With a token every request must carry it (``?token=`` or ``Authorization: Bearer``): 401 otherwise, on
every path. Without one the server binds loopback only, and answers only requests addressed to a loopback
name (403 otherwise: a web page cannot reach it through DNS rebinding). No endpoint writes a file or runs a
command; the only thing a request can change is which configured choice runs, and only the page itself may
ask: a ``POST`` must say ``Content-Type: application/json`` (415 otherwise: a form or a "simple" request
from another page cannot) and come from no other origin (403 for an ``Origin`` other than the server's, or
``Sec-Fetch-Site`` other than ``same-origin`` or ``none``), so another site open in the same browser cannot
switch the variant (cross-site request forgery).

A client that resets its connection or goes away is no error; any other failure of a request is one line on
stderr, never a traceback over the live panel.
"""

from __future__ import annotations

import hmac
import json
import re
import select
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from accel.watch.figures import rows
from accel.watch.hub import Hub
from accel.watch.options import WatchOptions, is_loopback

__all__ = ["WatchServer"]

_BOUNDARY = "accelframe"
_WRITE_TIMEOUT_S = 20.0  # a client that takes no byte for this long is dropped, freeing its slot
_LENGTH = re.compile(r"[0-9]{1,9}")  # a Content-Length as RFC 9110 has it: digits only
_SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site of the page's own requests, and of one typed by hand
_CSP = "default-src 'none'; img-src 'self' data:; connect-src 'self'; style-src 'unsafe-inline'; " \
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _hung_up(sock: socket.socket) -> bool:
    """True when the client closed its end (a stream client sends nothing after its request)."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        return bool(ready) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class WatchServer(ThreadingHTTPServer):
    """Serves ``hub``; ``switch(label)`` runs another choice (raises ``LookupError`` for an unknown one)."""

    daemon_threads = True

    def __init__(self, options: WatchOptions, hub: Hub, switch: Any) -> None:
        self.options, self.hub, self.switch = options, hub, switch
        self.page = resources.files("accel.watch").joinpath("page.html").read_bytes()
        self.address_family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        super().__init__((options.host.strip("[]"), options.port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> WatchServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="watch-http", daemon=True)
        self._thread.start()
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request that raised (``socketserver`` calls this from its ``except``): a client that reset or
        closed its connection, or timed out, is no error; anything else (other OS errors included) is one line
        on stderr, not a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError) or exc is None:
            return
        where = client_address[0] if isinstance(client_address, tuple) and client_address else "a client"
        print(f"accel watch: a request from {where} failed: {type(exc).__name__}: {exc}", file=sys.stderr,
              flush=True)

    def close(self) -> None:
        """Stop serving, cut the streams, close the socket (idempotent)."""
        self.hub.close()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: WatchServer
    protocol_version = "HTTP/1.1"
    server_version = "accel-watch"
    timeout = _WRITE_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # the terminal shows the live panel, not an access log

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _error(self, status: HTTPStatus, text: str, headers: dict[str, str] | None = None) -> None:
        self.close_connection = True  # a refused request's body is not read: the connection cannot go on
        self._send(status, f"{status.value} {status.phrase}: {text}\n".encode(), "text/plain; charset=utf-8",
                   {"Connection": "close", **(headers or {})})

    def _allowed(self) -> bool:
        """The token, when there is one; else a loopback Host header."""
        options = self.server.options
        if options.token is not None:
            url = urlsplit(self.path)
            given = parse_qs(url.query).get("token", [""])[0]
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[len("Bearer "):].strip()
            if hmac.compare_digest(given.encode(), options.token.encode()):
                return True
            self._error(HTTPStatus.UNAUTHORIZED, "this server needs its token: open /?token=TOKEN (accel watch "
                        "printed it when it started)", {"WWW-Authenticate": 'Bearer realm="accel watch"'})
            return False
        try:
            host = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        except ValueError:  # a malformed Host header
            host = ""
        if is_loopback(host):
            return True
        self._error(HTTPStatus.FORBIDDEN, f"requests must be addressed to localhost, not {host!r} (or start accel "
                    "watch with --token)")
        return False

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8",
                       {"Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer"})
        elif path == "/stats.json":
            stats = self.server.hub.stats()
            self._json(HTTPStatus.OK, {**stats, "rows": rows(stats)})
        elif path == "/snapshot.jpg":
            frame = self.server.hub.fresh_frame(max_age_s=1.0, timeout=10.0)
            if frame is None:
                self._error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet: the variant is starting, failed or "
                            "crashed (see /stats.json)", {"Retry-After": "2"})
            else:
                self._send(HTTPStatus.OK, frame.jpeg, "image/jpeg")
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no {path}; try /, /stream.mjpg, /snapshot.jpg or /stats.json")

    def _from_the_page(self) -> bool:
        """Whether a ``POST`` comes from the page itself: JSON (no form or simple request can send it without
        a CORS preflight, which this server never grants), not from another origin or site."""
        origin, host = self.headers.get("Origin"), self.headers.get("Host") or ""
        fetch_site = self.headers.get("Sec-Fetch-Site")
        if (origin is not None and origin.lower() not in (f"http://{host.lower()}", f"https://{host.lower()}")) \
                or (fetch_site is not None and fetch_site.lower() not in _SAME_SITE):
            self._error(HTTPStatus.FORBIDDEN, f"only the page itself may switch the variant (this request came "
                        f"with Origin {origin!r}, Sec-Fetch-Site {fetch_site!r})")
            return False
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json, with "
                        "{\"variant\": LABEL}")
            return False
        return True

    def _label(self) -> str | None:
        """The label a ``POST /variant`` body names, or None after answering 400."""
        length = self.headers.get("Content-Length") or "0"
        if not _LENGTH.fullmatch(length.strip()) or not 0 < int(length) <= 4096:
            self._error(HTTPStatus.BAD_REQUEST, "expected a JSON body {\"variant\": LABEL} of at most 4 KB, with "
                        f"its Content-Length (got {length[:20]!r})")
            return None
        try:
            label = json.loads(self.rfile.read(int(length)))["variant"]
            if not isinstance(label, str):
                raise TypeError(label)
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested too deep
            self._error(HTTPStatus.BAD_REQUEST, "expected a JSON body {\"variant\": LABEL}")
            return None
        return label

    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/variant":
            self._error(HTTPStatus.NOT_FOUND, "POST only /variant, with {\"variant\": LABEL}")
            return
        label = self._label() if self._from_the_page() else None
        if label is None:
            return
        try:
            choice = self.server.switch(label)
        except LookupError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"unknown variant {label!r}",
                                                "choices": self.server.hub.choices})
            return
        self._json(HTTPStatus.ACCEPTED, {"variant": choice.label, "status": "starting"})

    def _stream(self) -> None:
        hub = self.server.hub
        if not hub.join(self.connection):
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, f"{hub.max_clients} clients are streaming already "
                        "(--max-clients)", {"Retry-After": "5"})
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            seq = 0
            while not hub.closed and self.command != "HEAD":
                frame = hub.wait_frame(seq, timeout=1.0)
                if frame is None:
                    if _hung_up(self.connection):  # no frame for a while (a crashed variant): still there?
                        break
                    continue
                seq = frame.seq
                self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}"
                                 "\r\n\r\n".encode() + frame.jpeg + b"\r\n")
        except OSError:  # the client went away (reset, broken pipe, timeout): its slot is freed below
            pass
        finally:
            hub.leave(self.connection)
