"""``accel watch --on HOST``: the live view runs on the board (fed and checked as a remote compare is), its
port is forwarded over the same SSH connection to a port here, and the local URL is printed. Ctrl-C here
stops the board's watch as Ctrl-C stops a local one, then the forward; nothing is left running there (its
run folder goes too)."""

from __future__ import annotations

import argparse
import asyncio
import posixpath
import re
import secrets
import shlex
import signal
import time
from typing import Any

from accel.core.errors import ConfigError
from accel.plan.config import Config
from accel.remote.boardops import poll, send, start_line, stop_run
from accel.remote.boards import Board
from accel.remote.feed import board_config, uploads
from accel.remote.install import ready, wheel_uploads
from accel.remote.ssh import BoardError, Link, SshOptions, command_line, load_asyncssh, open_link, reason

__all__ = ["watch_on"]

_SERVING = re.compile(r"serving (http://[^\s/]+:(\d+)/\S*)")
_WATCH_FLAGS = ("variant", "token", "stream_fps", "stream_size", "jpeg_quality", "stream_encoder", "max_clients")


def _watch_words(args: argparse.Namespace) -> tuple[str, ...]:
    """The board's ``accel watch`` options: the live view's own, its server on the board's loopback only."""
    words = ["watch", "--host", "127.0.0.1", "--port", "0"]
    for name in _WATCH_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            words += [f"--{name.replace('_', '-')}", str(value)]
    return tuple(words)


def watch_on(args: argparse.Namespace, config: Config, boards: list[Board]) -> int:
    """Run the live view on the one board and forward it here; the exit code."""
    if len(boards) != 1:
        raise ConfigError(f"accel watch --on: one board at a time (got {len(boards)}: "
                          f"{', '.join(b.name for b in boards)}); run one accel watch per board")
    if args.no_server:
        raise ConfigError("option --no-server: a remote watch is its web page forwarded here; leave it out")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        args.token = secrets.token_urlsafe(16)  # a forward others can reach needs a token, as a LAN bind does
        print(f"token: {args.token} (generated: --host {args.host} can be reached from other machines; every "
              "request needs it; --token chooses one)")
    uploads(config)  # every input readable here before the board is contacted
    wheel = wheel_uploads(args.wheelhouse) if args.install else None
    from rich.console import Console

    console = Console()
    try:
        return asyncio.run(_watch(args, config, boards[0], console, wheel[:2] if wheel else None))
    finally:
        if wheel:
            wheel[2].cleanup()


async def _watch(args: argparse.Namespace, config: Config, board: Board, console: Any, install_with: Any) -> int:
    def say(text: str) -> None:
        console.print(f"[{board.name}] {text}", highlight=False, markup=False, soft_wrap=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping.set)
    link: Link | None = None
    try:
        link = await open_link(board, SshOptions(args.ssh_config, args.accept_new_host_keys))
        folder, python, _ = await ready(link, install_with, say)
        sent, plain = uploads(config)
        cache = posixpath.join(folder, "cache")
        for upload in {u.key: u for u in sent.values()}.values():
            await send(link, upload, cache)
        run_dir = posixpath.join(folder, "runs", f"watch-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}")
        await link.shell(command_line(["mkdir", "-p", run_dir]))
        async with link.conn.start_sftp_client() as sftp:
            async with sftp.open(posixpath.join(run_dir, "accel.toml"), "w") as f:
                await f.write(board_config(plain, sent, cache, run_dir))
        status, out, err = await link.shell(start_line(python, run_dir, _watch_words(args)))
        if status != 0 or not out.strip().isdigit():
            raise BoardError(board.name, f"accel watch did not start in {run_dir}: {err.strip() or out.strip()}")
        try:
            return await _serve(link, run_dir, args, say, stopping)
        finally:
            try:
                await _end(link, run_dir, say, SshOptions(args.ssh_config, args.accept_new_host_keys))
            except (OSError, TimeoutError, BoardError, load_asyncssh().Error) as exc:
                say(f"could not reach the board to stop its accel watch ({exc}); stop it there: "
                    f"kill -INT -- -$(cat {run_dir}/pid)")
    except BoardError as exc:
        console.print(f"accel: error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return 1
    except (TimeoutError, OSError, load_asyncssh().Error) as exc:  # the link went, or the local port is taken
        console.print(f"accel: error: board {board.name}: {reason(exc)}", highlight=False, markup=False, soft_wrap=True)
        return 1
    finally:
        if link is not None:
            link.close()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


async def _serve(link: Link, run_dir: str, args: argparse.Namespace, say: Any, stopping: asyncio.Event) -> int:
    """Wait until the board serves, forward its port here, print the URL, then show its lines until it ends
    or a stop comes."""
    offset, pending, listener = 0, b"", None
    while True:
        data, rc = await poll(link, run_dir, offset)
        offset += len(data)
        *lines, pending = (pending + data).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            found = _SERVING.search(line)
            if found and listener is None:
                try:
                    listener = await link.conn.forward_local_port(args.host, args.port, "127.0.0.1",
                                                                  int(found.group(2)))
                except OSError as exc:
                    raise BoardError(link.board.name, f"cannot listen on {args.host}:{args.port} here "
                                     f"({exc.strerror or exc}); choose another with --port") from None
                local = found.group(1).replace(found.group(1).split("/")[2], f"{args.host}:{listener.get_port()}")
                say(f"serving {local} (the board's {found.group(1)}, forwarded over ssh)")
            elif line.startswith("accel") and "serving" not in line:
                say(line)
        if rc is not None:
            say(f"accel watch ended there (exit {rc})")
            return rc
        try:
            await asyncio.wait_for(stopping.wait(), 0.5)
        except TimeoutError:
            continue
        say("stopping the board's accel watch")
        return 0


async def _end(link: Link, run_dir: str, say: Any, ssh: SshOptions | None = None) -> None:
    """Stop the board's watch (SIGINT, then SIGKILL after 15 s) until no process of its group is left, and
    remove its run folder. A link that went meanwhile is opened once more for it (``ssh``)."""
    alive = f"cd {shlex.quote(run_dir)} && kill -0 -- -\"$(cat pid)\" 2>/dev/null"
    try:
        if ssh is not None and link.conn.is_closed():
            link = await open_link(link.board, ssh)
        await stop_run(link, run_dir)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, _, _ = await link.shell(alive, timeout=30)
            if status != 0:
                break
            await asyncio.sleep(0.2)
        else:
            await link.shell(f"cd {shlex.quote(run_dir)} && kill -KILL -- -\"$(cat pid)\" 2>/dev/null; true")
            say("the board's accel watch did not stop within 15 s: killed")
        await link.shell(command_line(["rm", "-rf", run_dir]), timeout=30)
    except (OSError, TimeoutError, BoardError, load_asyncssh().Error) as exc:
        if ssh is not None:  # once more, over a new link
            say(f"the link went while stopping the board's accel watch ({exc}); again over a new one")
            return await _end(await open_link(link.board, ssh), run_dir, say)
        say(f"could not make sure the board's accel watch stopped ({exc}); check {run_dir} there")
