"""Driving boards from this machine: each board is checked (reachable, its host key known, this very accel
there), fed (the run's inputs into its cache, sent once), started detached from the SSH session (a dropped link
does not stop it), followed (its progress streamed here; a lost connection is re-opened with backoff) and its
result pulled back. Boards run in parallel unless ``one_at_a_time``. A stop (Ctrl-C, SIGTERM) here stops
every board's run as Ctrl-C stops a local one, and pulls what each measured.

On a board, everything lives in its accel folder (``$XDG_CACHE_HOME/accel/remote``, or the inventory's
``accel_dir``): ``cache/<key>/`` (inputs by content), ``runs/<id>/`` (the run's accel.toml, log, exit status,
``out/`` with result.json and the reports) and ``venv/`` (what ``--install`` made).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from accel.core.errors import AccelError
from accel.plan.config import Config
from accel.remote.boardops import poll, send, start_line, stop_run
from accel.remote.boards import Board
from accel.remote.feed import Upload, board_config, cleared_environment, delegate_order, uploads
from accel.remote.install import ready
from accel.remote.ssh import BoardError, Link, SshOptions, command_line, load_asyncssh, open_link, reason

__all__ = ["Outcome", "RemoteRun", "STATE_FILE", "board_folder", "drive", "follow", "last_error", "run_boards"]

STATE_FILE = "boards.json"  # in the local run folder: each board's connection and run folder, for `accel collect`
_POLL_S = 1.0
# the lines of a board's log streamed here as it runs: what starts, each variant's outcome, errors (its final
# tables come back in the merged report instead)
_PROGRESS = re.compile(r"^(capturing |idle power |cooling down|\[\d+/\d+\] |  \S.*: |accel: |model \d+ of \d+)")


@dataclass
class Outcome:
    """How one board's run ended, as the merged report lists it: ok, failed (why), unreachable (why),
    refused (why: host key, authentication, version), interrupted (what was pulled)."""

    board: str
    status: str = "pending"
    why: str = ""
    exit_code: int | None = None
    result: str = ""  # the local copy of the board's result.json ('' if none came back)
    remote_dir: str = ""  # the board's run folder
    python: str = ""
    host: dict[str, Any] = field(default_factory=dict)


@dataclass
class RemoteRun:
    """One run over several boards: the resolved configuration, the boards, how to reach them, where the
    merged result goes here, and what the caller is told as boards progress (``on_event(board, kind,
    text)``: 'line' for a progress line of the board's run, 'state' for a change of its state)."""

    config: Config
    boards: list[Board]
    ssh: SshOptions
    out: Path
    run_id: str
    on_event: Callable[[str, str, str], None] = lambda board, kind, text: None
    dry_run: bool = False
    install: tuple[Upload, Upload | None] | None = None  # --install: the wheel built here, the wheelhouse given
    reconnect_for_s: float = 600.0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    signal: int = 0  # the signal that stopped the run here (0: none)
    stop_boards: bool = True  # a stop here stops the boards' runs (False, for collect: only stop following)
    prepared: tuple[dict[str, Upload], dict[str, Any]] | None = None  # uploads(config), once for every board

    def inputs(self) -> tuple[dict[str, Upload], dict[str, Any]]:
        """What the run sends (``accel.remote.feed.uploads``), hashed once for every board."""
        if self.prepared is None:
            self.prepared = uploads(self.config)
        return self.prepared

    def save_state(self) -> None:
        """boards.json here: every board's connection and outcome so far (``accel collect`` reads it)."""
        state = {"run_id": self.run_id, "ssh_config": self.ssh.config,
                 "boards": [{"board": {k: v for k, v in asdict(b).items() if k != "vars"},
                             "outcome": asdict(self.outcomes[b.name])} for b in self.boards if b.name in self.outcomes]}
        tmp = self.out / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.out / STATE_FILE)


def board_folder(name: str) -> str:
    """A board's name as a local folder name (``pi@pi5.local`` -> ``pi_pi5.local``)."""
    return re.sub(r"[^\w.-]", "_", name).strip(".") or "board"


async def _start(link: Link, rr: RemoteRun, folder: str, python: str) -> str:
    """Feed the board and start its run (unless a stop came meanwhile: ''); the board's run folder, one per
    board (two names for one account share its accel folder, never a run folder)."""
    sent, plain = rr.inputs()
    cache = posixpath.join(folder, "cache")
    run_dir = posixpath.join(folder, "runs", f"{rr.run_id}-{board_folder(link.board.name)}")
    for upload in {u.key: u for u in sent.values()}.values():
        if await send(link, upload, cache):
            rr.on_event(link.board.name, "state", f"sent {upload.name} ({upload.size / 1e6:.1f} MB)")
    text = board_config(plain, sent, cache, run_dir)
    status, _, err = await link.shell(command_line(["mkdir", "-p", posixpath.join(run_dir, "out")]))
    if status != 0:
        raise BoardError(link.board.name, f"cannot make its run folder {run_dir}: {err.strip() or status}")
    try:
        async with link.conn.start_sftp_client() as sftp:
            async with sftp.open(posixpath.join(run_dir, "accel.toml"), "w") as f:
                await f.write(text)
    except Exception as exc:  # SFTPError: no space, permission
        raise BoardError(link.board.name, f"cannot write the run's accel.toml into {run_dir} ({reason(exc)}); "
                         "free some space there") from None
    if rr.dry_run:
        status, out, err = await link.shell(f"cd {shlex.quote(run_dir)} && " + command_line(
            [*cleared_environment(), *delegate_order(rr.config), python, "-m", "accel", "compare", "--config",
             "accel.toml", "--dry-run"]))
        for line in (out + err).splitlines():
            rr.on_event(link.board.name, "line", line)
        await link.shell(command_line(["rm", "-rf", run_dir]))
        rr.outcomes[link.board.name].exit_code = status
        return ""
    if rr.stopping.is_set():
        await link.shell(command_line(["rm", "-rf", run_dir]))
        return ""
    try:
        status, out, err = await link.shell(start_line(python, run_dir, env=delegate_order(rr.config)))
    except (TimeoutError, OSError, load_asyncssh().Error):
        return run_dir  # the link went while starting: following it says whether the run began
    if status != 0 or not out.strip().isdigit():
        raise BoardError(link.board.name, f"the run did not start in {run_dir}: {err.strip() or out.strip()}")
    return run_dir


async def _pull(link: Link, run_dir: str, local: Path) -> None:
    local.mkdir(parents=True, exist_ok=True)
    async with link.conn.start_sftp_client() as sftp:
        out = posixpath.join(run_dir, "out")
        for name in await sftp.listdir(out):
            if name in (".", ".."):
                continue
            await sftp.get(posixpath.join(out, name), str(local / name), recurse=True, preserve=True)
        await sftp.get(posixpath.join(run_dir, "log"), str(local / "board.log"))


async def follow(rr: RemoteRun, board: Board, link: Link | None, run_dir: str) -> Outcome:
    """Follow a started run to its end: stream its log's lines, re-open a lost connection with backoff (for
    ``reconnect_for_s``), pass a stop on, then pull its result. The board's run goes on whatever happens here."""
    outcome = rr.outcomes[board.name]
    offset, pending, stopped, lost_at, delay = 0, b"", False, 0.0, 0.5
    while True:
        try:
            if link is None:
                link = await open_link(board, rr.ssh)
                rr.on_event(board.name, "state", "reconnected; following")
            if rr.stopping.is_set() and not rr.stop_boards:  # collect: stop following, the run goes on there
                outcome.why = f"still running there; `accel collect {rr.out}` follows it again"
                link.close()
                return outcome
            if rr.stopping.is_set():  # sent again at every poll: a run still starting may not hear the first
                await stop_run(link, run_dir)
                if not stopped:
                    rr.on_event(board.name, "state", "stopping (SIGINT sent)")
                stopped = True
            data, rc = await asyncio.wait_for(poll(link, run_dir, offset), 60)
            lost_at, delay = 0.0, 0.5
            offset += len(data)
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip()
                if _PROGRESS.match(text):
                    rr.on_event(board.name, "line", text)
            if rc is not None:
                await _finish(rr, link, run_dir, rc, stopped)
                link.close()
                return outcome
            await _wait(rr.stopping, _POLL_S)
        except (TimeoutError, BoardError, OSError, _asyncssh_error()) as exc:
            if isinstance(exc, BoardError) and exc.kind == "start":
                if link is not None:
                    link.close()
                outcome.status, outcome.why = "failed", exc.problem
                return outcome
            if link is not None:
                link.close()
            link = None
            lost_at = lost_at or time.monotonic()
            if time.monotonic() - lost_at > rr.reconnect_for_s:
                outcome.status, outcome.why = "unreachable", (
                    f"lost during the run and not back within {rr.reconnect_for_s:g} s ({reason(exc)}); its run "
                    f"goes on there: `accel collect {rr.out}` fetches it later")
                return outcome
            rr.on_event(board.name, "state", f"connection lost ({reason(exc)}); reconnecting in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _finish(rr: RemoteRun, link: Link, run_dir: str, rc: int, stopped: bool) -> None:
    """Pull a finished run's folder and set its board's outcome. A result that cannot be written here (a full
    disk) is a failed outcome (the board keeps its copy); a lost link raises, to be followed again."""
    outcome = rr.outcomes[link.board.name]
    local = rr.out / "boards" / board_folder(link.board.name)
    try:
        await _pull(link, run_dir, local)
    except OSError as exc:
        if isinstance(exc, (_asyncssh_error(), ConnectionError)):
            raise
        outcome.status, outcome.why = "failed", (
            f"its result could not be written to {local} ({exc.strerror or exc}); it is kept there in {run_dir}: "
            f"`accel collect {rr.out}` fetches it")
        return
    outcome.exit_code = rc
    outcome.result = str(local / "result.json") if (local / "result.json").is_file() else ""
    outcome.status = "interrupted" if stopped else ("ok" if rc in (0, 1) and outcome.result else "failed")
    if outcome.status == "failed":
        outcome.why = last_error(local / "board.log") or f"accel exited {rc}"


def _asyncssh_error() -> type[BaseException]:
    return load_asyncssh().Error


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """``seconds``, or less when ``event`` comes; once it has come, the whole ``seconds``."""
    if event.is_set():
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass


def last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if ln.startswith("accel: error:")]
    return (errors or lines[-1:] or [""])[-1]


async def drive(rr: RemoteRun, board: Board) -> Outcome:
    """One board from connection to pulled result; every failure is this board's outcome, never an error
    that stops the others."""
    outcome = rr.outcomes.setdefault(board.name, Outcome(board.name))
    link: Link | None = None
    try:
        rr.on_event(board.name, "state", "connecting")
        link = await open_link(board, rr.ssh)
        folder, python, info = await ready(link, rr.install, lambda text: rr.on_event(board.name, "state", text))
        outcome.python, outcome.host = python, info.get("machine", {})
        if rr.stopping.is_set():
            outcome.status, outcome.why = "interrupted", "stopped before its run started"
            return outcome
        rr.on_event(board.name, "state", "feeding")
        run_dir = await _start(link, rr, folder, python)
        if rr.dry_run:
            outcome.status = "ok" if outcome.exit_code == 0 else "failed"
            return outcome
        if not run_dir:
            outcome.status, outcome.why = "interrupted", "stopped before its run started"
            return outcome
        outcome.remote_dir, outcome.status = run_dir, "running"
        rr.save_state()
        rr.on_event(board.name, "state", f"running in {run_dir}")
        result = await follow(rr, board, link, run_dir)
        link = None
        return result
    except BoardError as exc:
        outcome.status = exc.kind if exc.kind in ("unreachable", "refused") else "failed"
        outcome.why = exc.problem
        return outcome
    except AccelError as exc:  # a bad input found while feeding: said for this board
        outcome.status, outcome.why = "failed", str(exc)
        return outcome
    except (TimeoutError, OSError, _asyncssh_error()) as exc:  # the link went before the run started
        outcome.status, outcome.why = "unreachable", f"lost before its run started ({reason(exc)})"
        return outcome
    finally:
        if link is not None:
            link.close()
        rr.on_event(board.name, "state", f"{outcome.status}{': ' + outcome.why if outcome.why else ''}")
        rr.save_state()


async def run_boards(rr: RemoteRun, one_at_a_time: bool = False) -> list[Outcome]:
    """Every board of the run, in parallel (or one after another), until each has an outcome."""
    for board in rr.boards:
        rr.outcomes[board.name] = Outcome(board.name)
    if one_at_a_time:
        done = []
        for board in rr.boards:
            if rr.stopping.is_set():
                rr.outcomes[board.name] = replace(rr.outcomes[board.name], status="interrupted",
                                                  why="stopped before its run started")
                continue
            done.append(await drive(rr, board))
        return [rr.outcomes[b.name] for b in rr.boards]
    await asyncio.gather(*(drive(rr, b) for b in rr.boards))
    return [rr.outcomes[b.name] for b in rr.boards]
