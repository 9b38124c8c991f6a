"""The watch server in this process, fed by a frame producer instead of a worker: what each endpoint answers,
who may ask, and that clients never hold the frames (or each other) back."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import sys
import threading
from typing import Any

import pytest
from watch_helpers import CHOICES, MjpegReader, Served, fake_jpeg, seq_of, wait_until

PATHS = ["/", "/stats.json", "/snapshot.jpg", "/stream.mjpg", "/nosuch"]


def _request(served: Served, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=20)
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if host is not None:
        all_headers["Host"] = host
    conn.request(method, path, body=data, headers=all_headers)
    response = conn.getresponse()
    payload = response.read() if path != "/stream.mjpg" or response.status != 200 else response.read(64)
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def test_the_endpoints_on_loopback(serve: Any) -> None:
    served = serve()
    status, headers, page = _request(served, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"stream.mjpg" in page and b"stats.json" in page
    assert b"http://" not in page and b"https://" not in page, "the page must not name any other server"
    status, _, body = _request(served, "GET", "/stats.json")
    stats = json.loads(body)
    assert status == 200 and stats["choices"] == [c.label for c in CHOICES]
    assert [name for name, _ in stats["rows"]][:2] == ["variant", "FPS"]
    status, headers, body = _request(served, "GET", "/snapshot.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body.startswith(b"\xff\xd8")
    assert _request(served, "GET", "/nosuch")[0] == 404


def test_the_stream_sends_the_newest_frames_in_order(serve: Any) -> None:
    served = serve()
    reader = MjpegReader(served.port)
    try:
        assert reader.status == 200
        assert reader.headers["content-type"].startswith("multipart/x-mixed-replace; boundary=")
        seqs = [seq_of(reader.part()) for _ in range(5)]
    finally:
        reader.close()
    assert seqs == sorted(set(seqs)), seqs  # each frame once, never an older one after a newer one


@pytest.mark.parametrize("method,path", [("GET", p) for p in PATHS] + [("POST", "/variant")],
                         ids=lambda v: str(v))
def test_without_the_token_every_endpoint_is_401(serve: Any, method: str, path: str) -> None:
    served = serve(host="0.0.0.0")  # not loopback: a token is generated
    token = served.server.options.token
    assert token and served.server.options.token_generated
    body = {"variant": CHOICES[0].label} if method == "POST" else None
    status, headers, _ = _request(served, method, path, body)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert _request(served, method, path + "?token=wrong" + token, body)[0] == 401
    assert served.switched == []
    if path in ("/", "/stats.json", "/snapshot.jpg"):
        assert _request(served, method, f"{path}?token={token}")[0] == 200
        assert _request(served, method, path, headers={"Authorization": f"Bearer {token}"})[0] == 200


def test_a_token_asked_for_on_loopback_is_required_too(serve: Any) -> None:
    served = serve(token="s3cret")
    assert _request(served, "GET", "/stats.json")[0] == 401
    assert _request(served, "GET", "/stats.json?token=s3cret")[0] == 200


@pytest.mark.parametrize("host,expected", [("localhost:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200),
                                           ("evil.example:8000", 403), ("192.168.1.20:8000", 403)])
def test_without_a_token_only_loopback_host_names_are_served(serve: Any, host: str, expected: int) -> None:
    """A page elsewhere that rebinds its name to 127.0.0.1 sends its own name as Host: refused."""
    served = serve()
    assert _request(served, "GET", "/stats.json", host=host)[0] == expected


def test_switching_takes_configured_labels_only(serve: Any) -> None:
    served = serve()
    status, _, body = _request(served, "POST", "/variant", {"variant": CHOICES[1].label})
    assert status == 202 and json.loads(body)["variant"] == CHOICES[1].label
    status, _, body = _request(served, "POST", "/variant", {"variant": "rm -rf / + numpy"})
    assert status == 400 and json.loads(body)["choices"] == [c.label for c in CHOICES]
    for bad in (b"not json", json.dumps({"variant": 3}).encode(), json.dumps({"other": "x"}).encode()):
        assert _request(served, "POST", "/variant", bad)[0] == 400
    assert _request(served, "POST", "/stats.json", {"variant": CHOICES[0].label})[0] == 404
    assert served.switched == [CHOICES[1].label]


def test_clients_beyond_max_clients_get_503_and_a_freed_slot_is_reused(serve: Any) -> None:
    served = serve(max_clients=2)
    readers = [MjpegReader(served.port) for _ in range(2)]
    try:
        for r in readers:
            r.part()
        assert _request(served, "GET", "/stream.mjpg")[0] == 503
        readers.pop().close()
        wait_until(lambda: served.hub.clients == 1, what="the closed client's slot to be freed")
        readers.append(MjpegReader(served.port))
        assert readers[-1].status == 200 and readers[-1].part()
    finally:
        for r in readers:
            r.close()


def test_a_stalled_client_never_holds_the_frames_or_another_client_back(serve: Any) -> None:
    """Frames of 200 KB fill the stalled client's socket buffers after a few: from then on the server skips
    frames for it, while the other client goes on receiving every new one."""
    served = serve(rate_hz=50, padding=200_000)
    stalled = MjpegReader(served.port)
    fast = MjpegReader(served.port)
    try:
        first = seq_of(fast.part())
        seqs = [seq_of(fast.part()) for _ in range(60)]  # the stalled client reads nothing meanwhile
        assert seqs == sorted(set(seqs)) and seqs[-1] >= first + 60
        caught_up = [seq_of(stalled.part())]
        while caught_up[-1] < seqs[-1]:
            caught_up.append(seq_of(stalled.part()))
        gaps = [b - a for a, b in zip(caught_up, caught_up[1:], strict=False)]
        assert max(gaps) > 10, f"the stalled client was sent every frame: {caught_up}"
    finally:
        stalled.close()
        fast.close()


def test_a_client_that_disconnects_mid_frame_is_cleaned_up(serve: Any) -> None:
    served = serve()
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=20)
    sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: localhost:{served.port}\r\n\r\n".encode())
    assert sock.recv(100)  # part of the head or of a frame
    wait_until(lambda: served.hub.clients == 1, what="the client to be counted")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    sock.close()
    wait_until(lambda: served.hub.clients == 0, what="the disconnected client to be cleaned up")
    wait_until(lambda: served.viewers[-1:] == [0], what="the worker to be told nobody watches")
    assert max(served.viewers) == 1


def test_a_client_that_leaves_while_no_frame_comes_is_cleaned_up(serve: Any) -> None:
    """A variant that crashed sends nothing: a client closing meanwhile still frees its slot."""
    served = serve(rate_hz=0.01)
    reader = MjpegReader(served.port)
    assert reader.status == 200
    wait_until(lambda: served.hub.clients == 1, what="the client to be counted")
    reader.close()
    wait_until(lambda: served.hub.clients == 0, what="the client to be cleaned up")


def test_a_snapshot_asks_the_worker_for_a_frame_while_it_waits(serve: Any) -> None:
    """No frame, or none newer than a second: the request counts as a viewer (the worker encodes one) until a
    new frame comes."""
    served = serve(rate_hz=0.001)  # the producer sends nothing: the frame comes by hand, once it is asked for
    answer: list[tuple[int, Any, bytes]] = []
    asker = threading.Thread(target=lambda: answer.append(_request(served, "GET", "/snapshot.jpg")), daemon=True)
    asker.start()
    wait_until(lambda: served.viewers == [1], what="the snapshot request to count as a viewer")
    served.hub.put_frame(fake_jpeg(1), {"frame": 1})
    asker.join(30)
    (status, _, body), = answer
    assert status == 200 and seq_of(body) == 1
    wait_until(lambda: served.viewers == [1, 0], what="the viewer to leave")


def _raw(served: Served, request: bytes) -> bytes:
    """``request`` sent as it is on a connection of its own; what the server answered before closing it."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=20) as sock:
        sock.sendall(request)
        chunks = list(iter(lambda: sock.recv(65536), b""))
    return b"".join(chunks)


@pytest.mark.parametrize("length", ["abc", "-5", "5_0", "1e3", "", "99999999999999999999"])
def test_a_bad_content_length_is_400_and_prints_nothing(serve: Any, capsys: pytest.CaptureFixture[str],
                                                        length: str) -> None:
    served = serve()
    body = json.dumps({"variant": CHOICES[1].label}).encode()
    answer = _raw(served, f"POST /variant HTTP/1.1\r\nHost: localhost:{served.port}\r\nContent-Type: application/json"
                          f"\r\nContent-Length: {length}\r\n\r\n".encode() + body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert served.switched == []
    assert capsys.readouterr().err == ""


def _handled_errors(served: Served, monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """What each request that raised raised, as the server's ``handle_error`` is called with it."""
    seen: list[BaseException | None] = []
    handle = served.server.handle_error

    def spy(request: Any, client_address: Any) -> None:
        seen.append(sys.exc_info()[1])
        handle(request, client_address)

    monkeypatch.setattr(served.server, "handle_error", spy)
    return seen


def test_a_client_that_resets_a_kept_alive_connection_prints_nothing(serve: Any, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The server waits for the next request on the kept-alive connection; the client resets it."""
    served = serve()
    seen = _handled_errors(served, monkeypatch)
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=20)
    sock.sendall(f"GET /stats.json HTTP/1.1\r\nHost: localhost:{served.port}\r\n\r\n".encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 200 and not response.will_close
    response.read()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    sock.close()
    wait_until(lambda: seen, what="the reset to reach the server")
    assert isinstance(seen[0], ConnectionResetError), seen
    assert capsys.readouterr().err == ""


def test_any_other_failure_of_a_request_is_one_line(serve: Any, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    served = serve()
    seen = _handled_errors(served, monkeypatch)

    def broken() -> dict[str, Any]:
        raise RuntimeError("the figures are broken")

    monkeypatch.setattr(served.hub, "stats", broken)
    with pytest.raises(http.client.RemoteDisconnected):
        _request(served, "GET", "/stats.json")
    wait_until(lambda: seen, what="the failure to reach the server's handle_error")
    err = capsys.readouterr().err
    assert err == "accel watch: a request from 127.0.0.1 failed: RuntimeError: the figures are broken\n", err
    assert _request(served, "GET", "/")[0] == 200  # the server goes on


@pytest.mark.parametrize("headers,expected", [
    ({"Content-Type": "text/plain"}, 415),  # what another page can send without a preflight
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
    ({"Content-Type": ""}, 415),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),  # a sandboxed frame, a file:// page
    ({"Origin": "http://localhost:1"}, 403),  # another server on this machine: same site, other origin
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Sec-Fetch-Site": "same-site"}, 403),
    ({"Origin": "http://127.0.0.1:PORT", "Sec-Fetch-Site": "same-origin"}, 202),  # the page itself
    ({"Content-Type": "application/json; charset=utf-8"}, 202),  # a script (curl, Python): no Origin
], ids=lambda v: str(v))
def test_only_the_page_itself_can_switch(serve: Any, headers: dict[str, str], expected: int) -> None:
    """Cross-site request forgery: any page in the user's browser can POST to localhost; the server takes
    only JSON, which no form or simple request sends, and refuses another origin or site."""
    served = serve()
    headers = {k: v.replace("PORT", str(served.port)) for k, v in headers.items()}
    status, _, body = _request(served, "POST", "/variant", {"variant": CHOICES[1].label}, headers)
    assert status == expected, body
    assert served.switched == ([CHOICES[1].label] if expected == 202 else [])
