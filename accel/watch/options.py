"""What ``accel watch`` serves and how: frozen, self-validating options (``ConfigError`` naming the flag)."""

from __future__ import annotations

import ipaddress
import math
import re
import secrets
from dataclasses import dataclass, field, replace

from accel.core.errors import ConfigError
from accel.watch.render import ENCODERS

__all__ = ["STREAM_ENCODERS", "StreamOptions", "WatchOptions", "is_loopback"]

_SIZE = re.compile(r"^(\d+)x(\d+)$")
AUTO_MAX_WIDTH = 640  # --stream-size auto: the source's size, scaled down to at most this width
STREAM_ENCODERS = ("auto", "picamera2", *ENCODERS)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


@dataclass(frozen=True)
class StreamOptions:
    """The MJPEG stream: at most ``fps`` frames a second, ``size`` "auto" (the source's, at most 640 wide),
    "native" or WIDTHxHEIGHT, JPEG ``quality`` 1..100, ``encoder``: "auto" (with the picamera2 source
    Picamera2's own encoder over the camera's main stream, else the fastest of ``render.ENCODERS``
    installed), "picamera2", or one of ``render.ENCODERS``."""

    fps: float = 15.0
    size: str = "auto"
    quality: int = 80
    encoder: str = "auto"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and 0 < self.fps <= 120):
            raise ConfigError(f"option --stream-fps: expected frames per second in 0 < fps <= 120, got {self.fps:g}")
        match = _SIZE.match(self.size)
        if self.size not in ("auto", "native") and (match is None or min(int(match[1]), int(match[2])) < 16
                                                    or max(int(match[1]), int(match[2])) > 8192):
            raise ConfigError(f"option --stream-size: expected auto, native or WIDTHxHEIGHT (16..8192), "
                              f"got {self.size!r}")
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"option --jpeg-quality: expected 1..100, got {self.quality}")
        if self.encoder not in STREAM_ENCODERS:
            raise ConfigError(f"option --stream-encoder: expected one of {', '.join(STREAM_ENCODERS)}, "
                              f"got {self.encoder!r}")

    def from_camera(self, source_kind: str) -> bool:
        """Whether Picamera2 encodes the stream from the camera's main stream (``ConfigError`` when
        "picamera2" is asked for another source)."""
        if self.encoder == "picamera2" and source_kind != "picamera2":
            raise ConfigError(f"option --stream-encoder: picamera2 encodes the Raspberry Pi camera's main stream "
                              f"and needs --source picamera2 (the source is {source_kind}); use auto")
        return source_kind == "picamera2" and self.encoder in ("auto", "picamera2")

    def main_size(self, lores: tuple[int | None, int | None]) -> tuple[int, int] | None:
        """The camera main stream's size asked when Picamera2 encodes it, given the lores size asked: auto
        ``None`` (the main stream ``compare`` configures too, so the detector sees the same field of view),
        native the lores size (``None`` when not given: the default lores is the default main), else WxH."""
        if self.size == "auto":
            return None
        if self.size == "native":
            w, h = lores
            return (w, h) if w is not None and h is not None else None
        match = _SIZE.match(self.size)
        assert match is not None, "checked in __post_init__"
        return int(match[1]), int(match[2])

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """The size a ``width`` x ``height`` source frame is streamed at (even sizes: JPEG's 4:2:0 blocks)."""
        if self.size == "native":
            return width, height
        if self.size == "auto":
            scale = min(1.0, AUTO_MAX_WIDTH / width)
            return max(16, round(width * scale / 2) * 2), max(16, round(height * scale / 2) * 2)
        match = _SIZE.match(self.size)
        assert match is not None, "checked in __post_init__"
        return int(match[1]), int(match[2])


@dataclass(frozen=True)
class WatchOptions:
    """Where the page is served and to whom. ``token``: required from every request when set; a
    non-loopback ``host`` without one gets a generated token (``with_token`` says whether it was)."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    stream: StreamOptions = field(default_factory=StreamOptions)
    max_clients: int = 8
    server: bool = True
    variant: str | None = None
    token_generated: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"option --port: expected 0..65535 (0: any free port), got {self.port}")
        if self.max_clients < 1:
            raise ConfigError(f"option --max-clients: expected >= 1, got {self.max_clients}")
        if not self.host.strip():
            raise ConfigError("option --host: expected an address to bind, e.g. 127.0.0.1 or 0.0.0.0, got ''")
        if self.token is not None and (not self.token or any(c.isspace() or not c.isprintable() for c in self.token)):
            raise ConfigError("option --token: expected a non-empty token without spaces")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def with_token(self) -> WatchOptions:
        """These options, with a generated token when the bind is not loopback and none was given."""
        if self.token is not None or self.loopback or not self.server:
            return self
        return replace(self, token=secrets.token_urlsafe(12), token_generated=True)
