"""``accel compare --on HOST`` / ``--hosts FILE`` and ``accel collect FOLDER``: the remote run from the command
line, its live lines, the merged report (the boards side by side, ratios against the first, as ``accel report
a.json b.json``) and a line per board."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
from pathlib import Path
from typing import Any

from accel.core.errors import AccelError, ConfigError
from accel.plan.config import Config
from accel.remote.boards import Board, boards_on
from accel.remote.display import Display
from accel.remote.fleet import STATE_FILE, Outcome, RemoteRun, follow, run_boards
from accel.remote.install import wheel_uploads
from accel.remote.inventory import read_inventory
from accel.remote.ssh import SshOptions, load_asyncssh, open_link

__all__ = ["boards_of", "collect", "run_compare", "wants_remote"]


_WITH_BOARDS = ("limit", "ssh_config", "accept_new_host_keys", "install", "wheelhouse", "one_at_a_time")


def wants_remote(args: argparse.Namespace) -> bool:
    """Whether the command runs on boards (--on, --hosts); a board option without them is a ConfigError
    rather than a local run that ignores it."""
    if getattr(args, "on", None) or getattr(args, "hosts", None):
        return True
    given = [name for name in _WITH_BOARDS if getattr(args, name, None)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"option {flag}: it goes with --on HOST or --hosts FILE (the boards to run on); give "
                          "one of them, or leave it out to run here")
    return False


def boards_of(args: argparse.Namespace) -> list[Board]:
    """The boards ``--on`` and ``--hosts`` (narrowed by ``--limit``) name, in order."""
    if args.limit and not args.hosts:
        raise ConfigError("option --limit: it narrows --hosts FILE; give the inventory too")
    boards = boards_on(args.on or [])
    if args.hosts:
        inventory = read_inventory(args.hosts)
        boards += inventory.select(args.limit) if args.limit else inventory.boards()
    names = [b.name for b in boards]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"the board {twice[0]!r} is named twice (--on and --hosts); name each board once")
    return boards


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=190)


def run_compare(args: argparse.Namespace, config: Config) -> int:
    """Run the comparison on the boards; 0 when every board ran and each run's own exit status was 0, 1 when
    a board failed or was unreachable (or a variant failed there), 130 when stopped by Ctrl-C."""
    from accel.results.document import new_run_folder

    try:
        load_asyncssh()
        import tomli_w  # noqa: F401
    except (ImportError, AccelError):
        raise ConfigError("remote boards need the remote extra: pip install 'accel[remote]'") from None
    if args.json_path:
        raise ConfigError("option --json: a remote run writes a folder (output.dir) holding each board's result "
                          "and the merged report; leave --json out")
    boards = boards_of(args)
    from accel.remote.feed import uploads

    prepared = uploads(config)  # every input read and hashed here before any board is contacted
    if not args.dry_run:
        from accel.plan.inputs import configured_labels, configured_model

        for section in config.models or (config.model,):  # every model checked here first, as a local run does
            configured_labels(section, configured_model(section))
    if args.wheelhouse and not args.install:
        raise ConfigError("option --wheelhouse: it feeds --install; give --install too")
    wheel = wheel_uploads(args.wheelhouse) if args.install else None  # built before any board is contacted
    folder = new_run_folder(config.output.dir, config.origins.get("output.dir") or "output.dir").parent
    console = _console()
    display = Display(console, [b.name for b in boards])
    rr = RemoteRun(config, boards, SshOptions(args.ssh_config, args.accept_new_host_keys), folder,
                   f"{folder.name}-{secrets.token_hex(3)}", display, dry_run=args.dry_run,
                   install=wheel[:2] if wheel else None, prepared=prepared)
    console.print(f"running on {len(boards)} board{'s' if len(boards) != 1 else ''}: "
                  f"{', '.join(b.name for b in boards)}; results here: {folder}", highlight=False, markup=False)
    try:
        with display:
            outcomes = _run(rr, lambda: run_boards(rr, args.one_at_a_time))
    finally:
        if wheel:
            wheel[2].cleanup()
    if args.dry_run:
        _print_boards(console, outcomes)
        return 0 if all(o.status == "ok" for o in outcomes) else 1
    return _merged(console, rr, outcomes)


def _run(rr: RemoteRun, make: Any) -> list[Outcome]:
    """Run the boards' coroutine with Ctrl-C, SIGTERM and SIGHUP passed on to every board (each stops as a
    local run does and its partial result is pulled); a second signal leaves at once, the boards' runs
    stopping on their own."""

    async def main() -> list[Outcome]:
        loop = asyncio.get_running_loop()
        rr.stopping = asyncio.Event()
        task = asyncio.current_task()

        def stop(signum: int) -> None:
            rr.signal = rr.signal or signum
            if rr.stopping.is_set() and task is not None:
                task.cancel()
                return
            rr.stopping.set()
            rr.on_event("all", "state", f"{signal.Signals(signum).name}: stopping every board's run; pulling what "
                        "each measured (again to leave now)")

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop, sig)
        rr.on_event("all", "state", "following (Ctrl-C: " + ("stop every board's run and pull what it measured)"
                                                              if rr.stop_boards else "stop following; the runs go on)"))
        try:
            return list(await make())
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        rr.save_state()
        return [rr.outcomes[b.name] for b in rr.boards]
    finally:  # asyncio leaves the default actions behind: the command line's own handlers go back
        for sig, handler in before.items():
            if handler is not None:
                signal.signal(sig, handler)


def _merged(console: Any, rr: RemoteRun, outcomes: list[Outcome]) -> int:
    """The boards' results side by side here (terminal, and md/csv/html files in the run folder), a line per
    board; the exit code."""
    from accel.report import compare_table, legend, render, variants_table
    from accel.results.document import load_result, per_model

    docs: list[dict[str, Any]] = []
    bases: list[Path] = []
    for outcome in outcomes:
        if not outcome.result:
            continue
        path = Path(outcome.result)
        try:
            doc = load_result(path)
        except ConfigError as exc:  # not a result this accel reads: that board failed, the others stand
            outcome.status, outcome.why, outcome.result = "failed", str(exc), ""
            continue
        doc.setdefault("remote", {"board": outcome.board, "run_dir": outcome.remote_dir, "python": outcome.python})
        path.write_text(json.dumps(doc, indent=2))
        for part in per_model(doc):
            docs.append(part)
            bases.append(path.parent)
    for doc in docs:
        console.print(variants_table(doc))
        console.print(legend(doc), style="dim", highlight=False)
    if len(docs) > 1:
        console.print(compare_table(docs))
    if docs:
        for fmt in rr.config.output.formats:
            try:
                text = render(docs, fmt, bases)
            except ConfigError as exc:  # HTML without matplotlib: the other formats are still written
                console.print(f"report.{fmt} not written: {exc}", highlight=False, markup=False)
                continue
            if fmt == "md":
                text = boards_markdown(outcomes) + "\n" + text
            (rr.out / f"report.{fmt}").write_text(text, encoding="utf-8")
    _print_boards(console, outcomes)
    console.print(f"results: {rr.out}", highlight=False, markup=False)
    if rr.signal or any(o.status == "interrupted" for o in outcomes):
        return 128 + (rr.signal or signal.SIGINT)
    return 0 if all(o.status == "ok" and o.exit_code == 0 for o in outcomes) else 1


def board_rows(outcomes: list[Outcome]) -> tuple[list[str], list[list[str]]]:
    """One row per board: its outcome and the facts its result names (CPU, OS, accel, LiteRT, Python)."""
    headers = ["board", "status", "board model / CPU", "OS", "accel", "LiteRT", "Python", "why"]
    rows = []
    for o in outcomes:
        m = o.host or {}
        libs = m.get("libraries", {}) if isinstance(m.get("libraries"), dict) else {}
        emulated = m.get("emulated") or {}
        cpu = str(m.get("board") or m.get("cpu") or "")
        if emulated:
            cpu += f" (EMULATED {emulated.get('cpu')})"
        status = o.status + (f" (exit {o.exit_code})" if o.exit_code not in (None, 0) and o.status == "ok" else "")
        rows.append([o.board, status, cpu, str(m.get("os") or ""), str(libs.get("accel") or ""),
                     str(libs.get("ai-edge-litert") or ""), str(m.get("python") or ""), o.why])
    return headers, rows


def boards_markdown(outcomes: list[Outcome]) -> str:
    headers, rows = board_rows(outcomes)
    lines = ["# Boards", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _print_boards(console: Any, outcomes: list[Outcome]) -> None:
    from rich import box
    from rich.table import Table

    headers, rows = board_rows(outcomes)
    t = Table(title="boards", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for h in headers:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*row)
    console.print(t)


def collect(args: argparse.Namespace) -> int:
    """Fetch a remote run's results: boards that finished are pulled, boards still running are followed."""
    folder = Path(args.folder)
    try:
        state = json.loads((folder / STATE_FILE).read_text())
        entries = state["boards"]
        boards = [Board(**{**e["board"], "groups": tuple(e["board"].get("groups", ()))}) for e in entries]
        outcomes = [Outcome(**e["outcome"]) for e in entries]
    except FileNotFoundError:
        raise ConfigError(f"{folder}: no {STATE_FILE} here; give the folder a remote run printed "
                          "('results: ...')") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder / STATE_FILE}: not a remote run's state ({exc.__class__.__name__}: {exc})") \
            from None
    console = _console()
    rr = RemoteRun(Config(), boards, SshOptions(args.ssh_config or state.get("ssh_config")), folder,
                   str(state.get("run_id", folder.name)), display := Display(console, [b.name for b in boards]))
    rr.stop_boards = False  # Ctrl-C here stops following; the boards' runs go on, to be collected again
    for outcome, board in zip(outcomes, boards, strict=True):
        rr.outcomes[board.name] = outcome

    async def fetch(board: Board) -> Outcome:
        outcome = rr.outcomes[board.name]
        if not outcome.remote_dir:
            return outcome  # never started: nothing on the board to fetch
        try:
            link = await open_link(board, rr.ssh)
        except Exception as exc:  # BoardError: unreachable or refused now
            outcome.status, outcome.why = "unreachable", str(getattr(exc, "problem", exc))
            return outcome
        return await follow(rr, board, link, outcome.remote_dir)

    async def every() -> list[Outcome]:
        return list(await asyncio.gather(*(fetch(b) for b in boards)))

    with display:
        outcomes = _run(rr, every)
    rr.save_state()
    return _merged(console, rr, outcomes)
