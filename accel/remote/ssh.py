"""SSH connections to boards, through asyncssh over the user's own OpenSSH set-up: ``~/.ssh/config`` (or
``--ssh-config FILE``, as ``ssh -F``) gives HostName, User, Port, IdentityFile, UserKnownHostsFile and
ProxyJump; the agent's keys and the default key files are tried as ssh tries them.

Host keys are checked against the known_hosts files the config names (else ``~/.ssh/known_hosts``): an
unknown key is refused with its fingerprint and what to do, unless ``accept_new`` (OpenSSH's
``StrictHostKeyChecking=accept-new``) appends it; a changed key is always refused. No password is asked for,
stored or logged. Every failure to connect is one ``BoardError`` line saying which board and what to do.

Every remote command is a list of words joined with ``shlex.join``, so a file name with spaces, quotes or
``$(...)`` reaches the board as that file name (the board's login shell must be a POSIX shell).
"""

from __future__ import annotations

import asyncio
import shlex
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accel.core.errors import AccelError
from accel.remote.boards import Board

if TYPE_CHECKING:
    import asyncssh

__all__ = ["BoardError", "Link", "SshOptions", "command_line", "load_asyncssh", "open_link", "reason"]


class BoardError(AccelError):
    """A board cannot be reached, refuses us, or cannot run what was asked: one line naming the board; the
    other boards go on (exit 1 for the run)."""

    exit_code = 1

    def __init__(self, board: str, problem: str, kind: str = "failed") -> None:
        super().__init__(f"board {board}: {problem}")
        self.board, self.problem, self.kind = board, problem, kind  # kind: unreachable | refused | failed


@dataclass(frozen=True)
class SshOptions:
    """How to connect: the ssh config file (None: ``~/.ssh/config`` when it exists), whether an unknown host
    key may be added to known_hosts, and how long a connection may take to open."""

    config: str | None = None
    accept_new_host_keys: bool = False
    connect_timeout_s: float = 15.0

    def config_paths(self) -> list[str]:
        if self.config is not None:
            return [str(Path(self.config).expanduser())]
        default = Path("~/.ssh/config").expanduser()
        return [str(default)] if default.is_file() else []


#: OpenSSH's known_hosts files when the ssh config names none (UserKnownHostsFile, GlobalKnownHostsFile)
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts",
                       "/etc/ssh/ssh_known_hosts2")


def command_line(words: Sequence[str | Path]) -> str:
    """``words`` as one POSIX shell command line, each word quoted."""
    return shlex.join(str(w) for w in words)


def load_asyncssh() -> Any:
    """asyncssh, imported without the deprecation warnings its DSA support draws from cryptography (nothing
    here uses DSA); an AccelError saying how to install it when it is missing."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import asyncssh
    except ImportError:
        raise AccelError("remote boards need asyncssh: pip install 'accel[remote]'") from None
    return asyncssh


class _Client:
    """asyncssh's SSHClient, asked about a host key no known_hosts line trusts: with accept-new and no line
    for the host at all, the key is added to the user's known_hosts; otherwise refused (and remembered)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        asyncssh = load_asyncssh()

        class Client(asyncssh.SSHClient):  # type: ignore[misc,name-defined]
            def __init__(self, link: _HostKeys) -> None:
                self.link = link

            def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
                return self.link.offered(host, addr, port, key)

        return Client(*args, **kwargs)


@dataclass
class _HostKeys:
    """What the host key check found: the key offered, whether known_hosts had other keys for the host."""

    board: str
    files: list[str]
    accept_new: bool
    key: Any = None
    port: int = 22
    changed: bool = False
    added_to: str = ""

    def offered(self, host: str, addr: str, port: int, key: Any) -> bool:
        asyncssh = load_asyncssh()
        self.key, self.port = key, port
        files = [f for f in self.files if Path(f).expanduser().is_file()]
        known: list[Any] = []
        for f in files:
            known += asyncssh.match_known_hosts(str(Path(f).expanduser()), host, addr,
                                                port if port != 22 else None)[0]
        if key in known:  # trusted by a file asyncssh itself did not read (a system-wide known_hosts)
            return True
        self.changed = bool(known)
        if self.changed or not self.accept_new:
            return False
        target = Path(self.files[0] if self.files else "~/.ssh/known_hosts").expanduser()
        name = host if port == 22 else f"[{host}]:{port}"
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with target.open("a") as out:
            out.write(f"{name} {key.export_public_key().decode().strip()}\n")
        self.added_to = str(target)
        return True

    def refusal(self, host: str) -> BoardError:
        fingerprint = self.key.get_fingerprint("sha256") if self.key is not None else "unknown"
        name = host if self.port == 22 else f"'[{host}]:{self.port}'"
        if self.changed:
            return BoardError(self.board, f"the host key of {host} has CHANGED ({fingerprint} is not the key "
                              f"{' or '.join(self.files)} holds): if the board was "
                              f"reinstalled, remove the old key with `ssh-keygen -R {name}` and connect once with "
                              "ssh; otherwise someone may be intercepting the connection. Nothing was run there",
                              "refused")
        return BoardError(self.board, f"the host key of {host} is not known ({fingerprint}): check it on the "
                          "board (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and connect once with ssh to "
                          "trust it, or pass --accept-new-host-keys. Nothing was run there", "refused")


class Link:
    """An open connection to one board, with helpers to run a command and to reach its files."""

    def __init__(self, board: Board, conn: asyncssh.SSHClientConnection) -> None:
        self.board, self.conn = board, conn

    async def run(self, words: Sequence[str | Path], check: bool = True, input: str | None = None,
                  timeout: float | None = 120) -> tuple[int, str, str]:
        """Run ``words`` (quoted) on the board; (exit status, stdout, stderr). With ``check``, a non-zero
        status is a BoardError quoting the last line of its stderr."""
        result = await asyncio.wait_for(self.conn.run(command_line(words), input=input), timeout)
        out, err = str(result.stdout or ""), str(result.stderr or "")
        status = result.exit_status if result.exit_status is not None else 255
        if check and status != 0:
            last = next((ln for ln in reversed(err.strip().splitlines()) if ln.strip()), f"exit status {status}")
            raise BoardError(self.board.name, f"`{words[0]} {words[1] if len(words) > 1 else ''}` failed: "
                             f"{last.strip()}")
        return status, out, err

    async def shell(self, line: str, timeout: float | None = 120) -> tuple[int, str, str]:
        """Run a command line already built from quoted words (``command_line``) and shell operators."""
        result = await asyncio.wait_for(self.conn.run(line), timeout)
        return (result.exit_status if result.exit_status is not None else 255, str(result.stdout or ""),
                str(result.stderr or ""))

    def close(self) -> None:
        self.conn.close()


async def open_link(board: Board, options: SshOptions) -> Link:
    """Connect to ``board``; every failure is one BoardError (unreachable, refused or failed)."""
    asyncssh = load_asyncssh()
    config = options.config_paths()
    kwargs: dict[str, Any] = {"config": config, "connect_timeout": options.connect_timeout_s,
                              "password_auth": False, "kbdint_auth": False,
                              # a board that goes silent (off, out of Wi-Fi range) is a lost link in 30 s
                              "keepalive_interval": 10, "keepalive_count_max": 3}
    if board.port is not None:
        kwargs["port"] = board.port
    if board.user:
        kwargs["username"] = board.user
    if board.key_file:  # an encrypted one is used through the agent, as ssh -i does
        kwargs.update(client_keys=[str(Path(board.key_file).expanduser())], ignore_encrypted=True)
    try:
        resolved = asyncssh.SSHClientConnectionOptions(host=board.host, **kwargs)
    except (OSError, ValueError, asyncssh.Error) as exc:
        raise BoardError(board.name, f"its ssh settings cannot be used ({reason(exc)})", "failed") from None
    if resolved.known_hosts is None:
        raise BoardError(board.name, "host keys are not checked for it in your ssh config (UserKnownHostsFile "
                         "none); accel checks every board's key: name a known_hosts file there", "refused")
    keys = _HostKeys(board.name, [str(f) for f in resolved.known_hosts] if resolved.known_hosts else
                     list(DEFAULT_KNOWN_HOSTS), options.accept_new_host_keys)
    host = getattr(resolved, "host", board.host)
    try:
        conn = await asyncssh.connect(board.host, client_factory=lambda: _Client(keys), **kwargs)
    except asyncssh.HostKeyNotVerifiable:
        raise keys.refusal(host) from None
    except asyncssh.PermissionDenied:
        user = getattr(resolved, "username", board.user) or "?"
        raise BoardError(board.name, f"authentication as {user} on {host} failed: no key was accepted (passwords "
                         "are not used); install your key there with `ssh-copy-id`, load it into ssh-agent, or "
                         "name it with IdentityFile in ~/.ssh/config or ansible_ssh_private_key_file", "refused") \
            from None
    except (TimeoutError, OSError, socket.gaierror) as exc:
        raise BoardError(board.name, f"unreachable: {reason(exc)}; check that it is on and on the network, and that "
                         f"`ssh {board.name}` works", "unreachable") from None
    except asyncssh.Error as exc:
        raise BoardError(board.name, f"ssh failed: {reason(exc)}", "unreachable") from None
    return Link(board, conn)


def reason(exc: BaseException) -> str:
    """An exception as one line for a board's message: a BoardError's problem, an SFTP error's reason, a bare
    timeout as such, else its text (or its class)."""
    if isinstance(exc, BoardError):
        return exc.problem
    text = str(getattr(exc, "reason", "") or exc).strip()
    if not text:
        text = "the connection timed out" if isinstance(exc, asyncio.TimeoutError) else exc.__class__.__name__
    return " ".join(text.split())
