"""``accel watch`` put together: the choices from the config, the worker session, the HTTP server, this
machine's figures and the terminal panel, until Ctrl-C (or SIGTERM, or the SSH session hanging up), after
which the worker, the server and every thread are stopped in order.

The signals are the command line's (``accel.run.interrupt.stop_on_signals`` around every command): the first
one raises ``KeyboardInterrupt`` here, which ends the watch with exit code 0; the ones after it are ignored
while everything stops, so a second Ctrl-C or SIGTERM cannot cut the clean-up short."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from accel.core.errors import ConfigError
from accel.plan.config import Config
from accel.plan.inputs import configured_labels, configured_model  # as compare reads and checks them
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.sources import check_source
from accel.watch.choices import Choice, best, choices, find
from accel.watch.detector import Watched
from accel.watch.hub import Hub
from accel.watch.options import WatchOptions
from accel.watch.server import WatchServer
from accel.watch.session import Session
from accel.watch.system import SystemProbe, open_live_meter

__all__ = ["watch"]

_ENDED = ("failed", "crashed", "timeout")


def _chosen(options: list[Choice], asked: str | None) -> Choice:
    if asked is None:
        return best(options)
    choice = find(options, asked)
    if choice is None:
        raise ConfigError(f"option --variant: {asked!r} is not a configured variant that can run here; choose "
                          f"one of: {', '.join(repr(c.label) for c in options)}")
    return choice


def _serve(options: WatchOptions, hub: Hub, switch: Callable[[str], Choice]) -> WatchServer:
    try:
        return WatchServer(options, hub, switch).start()
    except OSError as exc:  # in use, a privileged port, an address this machine does not have
        raise ConfigError(f"option --host/--port: cannot listen on {options.host}:{options.port}: "
                          f"{exc.strerror or exc}; choose another --port (0: any free one)") from None


def _address(options: WatchOptions, server: WatchServer | None) -> str:
    if server is None:
        return ""
    host = options.host
    if host in ("0.0.0.0", "::", "[::]"):
        host = socket.gethostname()
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{server.port}/" + (f"?token={options.token}" if options.token else "")


def _announce(console: Any, options: WatchOptions, server: WatchServer | None, choice: Choice, model: str) -> str:
    where = _address(options, server)
    console.print(f"accel watch: {choice.label} on {model}", highlight=False)
    if server is not None:
        console.print(f"serving {where}", highlight=False, soft_wrap=True)
        if options.loopback and options.token is None:
            console.print(f"from another machine: ssh -L {server.port}:localhost:{server.port} pi@<this Pi>, then "
                          f"open http://localhost:{server.port}/", highlight=False, soft_wrap=True)
        elif options.token_generated:
            console.print(f"token: {options.token} (generated; every request needs it: --token chooses one)",
                          highlight=False, soft_wrap=True)
    sys.stdout.flush()
    return where


def _show(console: Any, hub: Hub, where: str, stop: threading.Event, served: bool) -> int:
    """The panel until ``stop`` or Ctrl-C; without a server, a variant that ended ends the watch (exit 1)."""
    from rich.live import Live

    from accel.watch.panel import panel

    live = Live(panel(hub.stats(), where), console=console, refresh_per_second=2, transient=False) \
        if console.is_terminal else None
    with live if live is not None else ExitStack():
        while not stop.wait(0.5):
            stats = hub.stats()
            if live is not None:
                live.update(panel(stats, where))
            if not served and stats["status"] in _ENDED:
                console.print(f"accel watch: {stats['variant']}: {stats['status']}: {stats['error']}", highlight=False)
                return 1
    return 0


def watch(config: Config, options: WatchOptions, *, console: Any = None, stop: threading.Event | None = None,
          on_ready: Callable[[str], None] | None = None) -> int:
    """Watch the variant ``options.variant`` names (default: ``choices.best``) until Ctrl-C or ``stop``;
    ``on_ready(address)`` once serving. Returns the exit code (0; 1 when, without a server, the variant
    failed or crashed)."""
    from rich.console import Console

    console = console or Console()
    options = options.with_token()
    try:  # Ctrl-C while it reads the model or checks the source: nothing is running yet, exit 0 all the same
        available = choices(config)
        chosen = _chosen(available, options.variant)
        if len(config.models) > 1:
            raise ConfigError(f"accel watch runs one model; {len(config.models)} are configured (--model given "
                              "more than once, or [[models]] tables): give one --model")
        model = configured_model(config.model)
        labels, _ = configured_labels(config.model, model)
        settings = Settings.from_config(config, model, labels=labels, live=True)  # watch is always live
        assert settings.live_source is not None, "watch runs live"
        check_source(settings.live_source)  # a missing picture or video is bad input here, not a failed worker
        options.stream.from_camera(settings.live_source.kind)  # --stream-encoder picamera2 needs the camera
    except KeyboardInterrupt:
        return 0
    hub = Hub([c.label for c in available], options.max_clients)
    session = Session(hub, available,
                      lambda c: Watched(Job(model, c.variant, c.kernels, settings, "pipelined"), options.stream))
    stop = stop or threading.Event()
    try:
        with ExitStack() as stack:
            meter, why = open_live_meter(config)
            if meter is not None:
                stack.callback(meter.close)
            server = _serve(options, hub, session.switch) if options.server else None
            if server is not None:
                stack.callback(server.close)
            probe = SystemProbe(hub.put_system, lambda: session.worker_pid, meter, why).start()
            stack.callback(probe.stop)
            stack.callback(session.close)
            try:
                session.start(chosen)
                where = _announce(console, options, server, chosen, model.path.name)
                if on_ready is not None:
                    on_ready(where)
                return _show(console, hub, where, stop, server is not None)
            except KeyboardInterrupt:
                console.print("accel watch: stopping", highlight=False)
                return 0
    except KeyboardInterrupt:  # before it served, or while it stopped: what was opened is closed all the same
        return 0
