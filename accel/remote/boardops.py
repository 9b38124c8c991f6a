"""What the laptop asks of one board over an open link: where its accel folder and Python are (and whether that
accel is this code), an input into its cache, the line that starts a run detached, the run's log and exit
status, a stop. ``accel.remote.fleet`` puts them together for a whole run."""

from __future__ import annotations

import asyncio
import json
import posixpath
import shlex
import time
from typing import Any

from accel.remote.board import code_digest, version
from accel.remote.boards import Board
from accel.remote.feed import Upload, cleared_environment
from accel.remote.ssh import BoardError, Link, command_line, load_asyncssh, reason

__all__ = ["NotThere", "locate", "locate_line", "poll", "send", "start_line", "stop_run"]


class NotThere(BoardError):
    """The board's accel is missing or another version; ``folder`` is its accel folder (for ``--install``)."""

    def __init__(self, board: str, problem: str, folder: str) -> None:
        super().__init__(board, problem, "refused")
        self.folder = folder


def _word(path: str) -> str:
    """A board path as one shell word: quoted, a leading ``~/`` left to the shell."""
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + (shlex.quote(path[1:]) if len(path) > 1 else "")
    return shlex.quote(path)


def locate_line(board: Board, python: str | None = None) -> str:
    """The shell line that finds the board's accel folder and Python and asks it ``accel board info``:
    ``python`` when given, else the inventory's accel_python, else the venv ``--install`` made there, else the
    inventory's ansible_python_interpreter, else ``python3``."""
    folder = _word(board.accel_dir) if board.accel_dir else '"${XDG_CACHE_HOME:-$HOME/.cache}/accel/remote"'
    python = _word(python) if python else _word(board.python) if board.python != "python3" else ""
    fallback = _word(board.interpreter) if board.interpreter else "python3"
    return (f"d={folder}; p={python or chr(39) * 2}; "
            'if [ -z "$p" ]; then if [ -x "$d/venv/bin/python" ]; then p="$d/venv/bin/python"; '
            f'else p={fallback}; fi; fi; '
            'printf "%s\\n%s\\n" "$d" "$p"; exec "$p" -m accel board info --dir "$d" --prune')


async def locate(link: Link, python: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(the board's accel folder, its Python, what ``accel board info`` said); NotThere when accel is not
    there or is another version."""
    name = link.board.name
    status, out, err = await link.shell(locate_line(link.board, python))
    lines = out.splitlines()
    folder, python = (lines + ["", ""])[:2]
    here = f"{version()} (code {code_digest()})"
    if status != 0:
        last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), f"exit status {status}")
        if status == 127 or "not found" in last:
            why = f"no Python at {python or 'python3'} ({last})"
        elif "No module named accel" in err:
            why = f"accel is not installed for {python}"
        else:
            why = f"`{python} -m accel board info` failed: {last}"
        raise NotThere(name, f"{why}; pass --install to install this accel {here} there, or set "
                       "ansible_python_interpreter to a Python that has it", folder)
    try:
        body = lines[2:]  # what a wrapper (an emulator, a module loader) printed first is skipped
        info = json.loads("\n".join(body[next(i for i, ln in enumerate(body) if ln.startswith("{")):]))
    except (ValueError, StopIteration):
        raise NotThere(name, f"`{python} -m accel board info` answered no JSON; that accel is too old or another "
                       f"program: pass --install to install this accel {here} there", folder) from None
    if info.get("digest") != code_digest():
        raise NotThere(name, f"runs accel {info.get('accel')} (code {info.get('digest')}) with {python}, this is "
                       f"{here}; pass --install to install this version there", folder)
    return folder, python, info


async def send(link: Link, upload: Upload, cache: str) -> bool:
    """``upload`` into the board's cache, unless it is there already (a finished entry has a ``.done`` mark);
    written under a temporary name first, so a dropped link leaves no half entry. True if it was sent."""
    final = posixpath.join(cache, upload.key)
    asyncssh = load_asyncssh()
    async with link.conn.start_sftp_client() as sftp:
        if await sftp.exists(posixpath.join(final, ".done")):
            try:
                await sftp.utime(posixpath.join(final, ".done"))  # used now: the board's prune keeps it longest
            except asyncssh.SFTPError:
                pass  # another user's entry: used as it is
            return False
        tmp = f"{final}.part-{time.time_ns()}"
        try:
            await sftp.makedirs(tmp, exist_ok=True)
            for rel, local in upload.files:
                target = posixpath.join(tmp, rel)
                await sftp.makedirs(posixpath.dirname(target), exist_ok=True)
                await sftp.put(str(local), target)
            async with sftp.open(posixpath.join(tmp, ".done"), "w") as f:
                await f.write(f"{upload.size}\n")
        except asyncssh.SFTPError as exc:  # no space, no permission: said, and the half entry removed
            try:
                await link.shell(command_line(["rm", "-rf", tmp]), timeout=30)
            except (OSError, TimeoutError, asyncssh.Error):
                pass  # the board's prune removes it after an hour
            raise BoardError(link.board.name, f"cannot write {upload.name} into its cache {cache} "
                             f"({reason(exc)}); free some space there or set accel_dir elsewhere") from None
        # into place unless another run put it there meanwhile (then this copy goes)
        q_final, q_tmp = shlex.quote(final), shlex.quote(tmp)
        status, _, err = await link.shell(f"if [ -e {q_final}/.done ]; then rm -rf {q_tmp}; else rm -rf {q_final} "
                                          f"&& mv {q_tmp} {q_final}; fi", timeout=60)
        if status != 0:
            raise BoardError(link.board.name, f"cannot move {upload.name} into place in its cache {cache}: "
                             f"{err.strip() or status}")
    return True


def start_line(python: str, run_dir: str, command: tuple[str, ...] = ("compare",), env: list[str] | None = None) -> str:
    """Start ``accel COMMAND --config accel.toml`` detached (its own session: no SIGHUP when the SSH session
    goes), its output in ``log``, its exit status in ``rc`` (written last, so ``rc`` means finished), its
    process group in ``pid``."""
    words = [*cleared_environment(), *(env or []), python, "-m", "accel", command[0], "--config", "accel.toml",
             *command[1:]]
    inner = f"echo $$ > pid; trap : INT TERM HUP; {command_line(words)} > log 2>&1; echo $? > rc.part && mv rc.part rc"
    return (f"cd {shlex.quote(run_dir)} || exit 1; setsid sh -c {shlex.quote(inner)} < /dev/null > /dev/null 2>&1 & "
            "i=0; while [ ! -s pid ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done; cat pid 2>/dev/null || true")


async def poll(link: Link, run_dir: str, offset: int | None) -> tuple[bytes, int | None]:
    """New bytes of the run's log from ``offset`` (None: none), and its exit status once it has finished. A run folder
    without the run's process group (``pid``) is a run that never started: a BoardError."""
    async with link.conn.start_sftp_client() as sftp:
        rc: int | None = None
        if not await sftp.exists(posixpath.join(run_dir, "pid")):
            await asyncio.sleep(2)  # the start line writes pid within moments of starting
            if not await sftp.exists(posixpath.join(run_dir, "pid")):
                raise BoardError(link.board.name, f"the run did not start in {run_dir} (no pid there)", "start")
        if await sftp.exists(posixpath.join(run_dir, "rc")):
            async with sftp.open(posixpath.join(run_dir, "rc"), "rb") as f:
                raw: Any = await f.read()
                text = (raw.decode() if isinstance(raw, bytes) else str(raw)).strip()
            rc = int(text) if text.lstrip("-").isdigit() else 255
        data = b""
        if offset is not None and await sftp.exists(posixpath.join(run_dir, "log")):
            async with sftp.open(posixpath.join(run_dir, "log"), "rb") as f:
                await f.seek(offset)
                data = await f.read()
    return data, rc


async def stop_run(link: Link, run_dir: str) -> None:
    """SIGINT to the run's process group, as Ctrl-C in its terminal would send."""
    line = (f"cd {shlex.quote(run_dir)} && [ ! -e rc ] && p=$(cat pid) && kill -INT -- -\"$p\" 2>/dev/null; true")
    await link.shell(line, timeout=30)
