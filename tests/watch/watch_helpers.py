"""Helpers for the watch tests: a hub served in this process, an MJPEG reader, polling with a deadline."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from accel.delegates import Variant
from accel.watch.choices import Choice
from accel.watch.hub import Hub
from accel.watch.server import WatchServer

CHOICES = [Choice(Variant("null"), "numpy"), Choice(Variant("xnnpack", (("threads", 2),)), "opencv")]


def fake_jpeg(seq: int, padding: int = 0) -> bytes:
    """A JPEG-framed payload that says its sequence number: SOI, the number, ``padding`` bytes, EOI."""
    return b"\xff\xd8" + f"frame {seq:08d}".encode() + bytes(padding) + b"\xff\xd9"


def seq_of(payload: bytes) -> int:
    return int(payload[8:16])


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout:g} s")


class MjpegReader:
    """A raw socket reading ``/stream.mjpg``: the response head, then one part at a time."""

    def __init__(self, port: int, path: str = "/stream.mjpg", host: str = "127.0.0.1", timeout: float = 20.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        self.headers: dict[str, str] = {}
        for line in iter(self.file.readline, b"\r\n"):
            key, _, value = line.decode().partition(":")
            self.headers[key.strip().lower()] = value.strip()

    def part(self) -> bytes:
        """The next frame's bytes."""
        boundary = self.file.readline()
        assert boundary.startswith(b"--"), boundary
        headers = {}
        for line in iter(self.file.readline, b"\r\n"):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg", headers
        body = self.file.read(int(headers["content-length"]))
        assert self.file.read(2) == b"\r\n"
        return body

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@dataclass
class Served:
    """A hub served in this process, fed ``rate_hz`` frames a second; what the switch was asked."""

    hub: Hub
    server: WatchServer
    switched: list[str] = field(default_factory=list)
    viewers: list[int] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"




class WatchProcess:
    """``python -m accel watch ARGS`` in a subprocess, its output read as it comes; ``url`` once it serves."""

    def __init__(self, *args: str, cwd: Path, timeout: float = 120.0, env: dict[str, str] | None = None) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ACCEL_")}, **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "accel", "watch", *args], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),  # type: ignore[union-attr]
                                        daemon=True)
        self._reader.start()
        self.timeout = timeout

    def url(self) -> str:
        """The address it printed ("serving http://127.0.0.1:PORT/..."), waiting for it."""
        def served() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"accel watch exited with {self.proc.returncode}: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            return next((line.split()[1] for line in list(self.lines) if line.startswith("serving ")), None)

        return str(wait_until(served, self.timeout, "accel watch to print its address"))

    def processes(self) -> list[psutil.Process]:
        """It and every process below it."""
        me = psutil.Process(self.proc.pid)
        return [me, *me.children(recursive=True)]

    def interrupt(self, timeout: float = 60.0) -> tuple[int, str, str]:
        """Ctrl-C: (exit code, stdout, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code, "".join(self.lines), self.proc.stderr.read()  # type: ignore[union-attr]

    def kill(self) -> None:
        if self.proc.poll() is None:
            for p in reversed(self.processes()):
                p.kill()
            self.proc.wait(30)
