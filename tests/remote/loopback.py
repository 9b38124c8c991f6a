"""Loopback boards for the remote tests: a real OpenSSH server (Debian's openssh-server) started as the
current user on 127.0.0.1, one per board, each with its own port, host key, cache folder and ``python3``; and
an ssh client config naming them, as a user's ``~/.ssh/config`` would (HostName, Port, User, IdentityFile,
UserKnownHostsFile)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SSHD", "Board", "Fleet", "free_port"]

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/bin/sshd") if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (no passphrase); its public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip() if path.suffix else Path(f"{path}.pub").read_text().strip()


@dataclass
class Board:
    """One loopback board: an sshd on ``port`` whose sessions see ``home`` as XDG_CACHE_HOME's parent and
    ``bin`` first on PATH (its ``python3``)."""

    name: str
    root: Path
    client_key: Path
    python: str | None = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        self.cache.mkdir(exist_ok=True)
        self.host_key = self.root / "host_key"
        if not self.host_key.exists():
            keygen(self.host_key)
        (self.root / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        self.set_python(self.python)
        self.port = self.port or free_port()

    @property
    def venv_python(self) -> Path:
        """Where ``--install`` puts the board's accel: the Python a remote run uses first."""
        return self.cache / "accel" / "remote" / "venv" / "bin" / "python"

    def set_python(self, python: str | None) -> None:
        """The board's accel Python (the venv ``--install`` makes): a script that runs ``python`` (a path or a
        shell command line); None: no accel there (only the system's python3)."""
        self.python = python or ""
        if python is None:
            self.venv_python.unlink(missing_ok=True)
            return
        self.venv_python.parent.mkdir(parents=True, exist_ok=True)
        self.venv_python.write_text(f"#!/bin/sh\nexec {python} \"$@\"\n")
        self.venv_python.chmod(0o755)

    def set_script(self, body: str) -> None:
        """The board's accel Python as a shell script of its own (``body`` after the ``#!/bin/sh`` line)."""
        self.python = str(self.venv_python)
        self.venv_python.parent.mkdir(parents=True, exist_ok=True)
        self.venv_python.write_text("#!/bin/sh\n" + body)
        self.venv_python.chmod(0o755)

    def config(self) -> str:
        env = {"XDG_CACHE_HOME": str(self.cache), "PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
               **self.extra_env}
        lines = [f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
                 f"AuthorizedKeysFile {self.root / 'authorized_keys'}", f"PidFile {self.root / 'sshd.pid'}",
                 "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                 "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "AllowTcpForwarding yes",
                 "ClientAliveInterval 0", "MaxStartups 100", "MaxSessions 100", "LogLevel ERROR",
                 "SetEnv " + " ".join(f'{k}="{v}"' for k, v in env.items())]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start (or restart) this board's sshd and wait until it accepts connections."""
        assert SSHD, "sshd is not installed (Debian: openssh-server)"
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder, as root
        conf = self.root / "sshd_config"
        conf.write_text(self.config())
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "sshd.log", "ab"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {(self.root / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd on port {self.port} did not start")

    def kill(self) -> None:
        """Kill the listening sshd and every session it forked (a dropped link; what the sessions started
        with setsid lives on)."""
        if self.proc is not None and self.proc.poll() is None:
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            self.proc.kill()
            self.proc.wait()
            for pid in children.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        self.proc = None

    def known_hosts_line(self) -> str:
        key = Path(f"{self.host_key}.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}"


@dataclass
class Fleet:
    """Loopback boards and the client's ssh config and known_hosts naming them."""

    root: Path
    boards: dict[str, Board] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.client_key = self.root / "client_key"
        if not self.client_key.exists():
            keygen(self.client_key)
        self.known_hosts = self.root / "known_hosts"
        self.known_hosts.touch()
        self.ssh_config = self.root / "ssh_config"

    def add(self, name: str, python: str | None = sys.executable, trusted: bool = True, **env: str) -> Board:
        board = Board(name, self.root / name, self.client_key, python, dict(env))
        board.prepare()
        board.start()
        self.boards[name] = board
        if trusted:
            with self.known_hosts.open("a") as f:
                f.write(board.known_hosts_line() + "\n")
        self.write_config()
        return board

    def write_config(self) -> None:
        user = getpass.getuser()
        blocks = [f"Host {b.name}\n  HostName 127.0.0.1\n  Port {b.port}\n  User {user}\n"
                  f"  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n"
                  for b in self.boards.values()]
        self.ssh_config.write_text("\n".join(blocks))

    def stop(self) -> None:
        for board in self.boards.values():
            board.kill()
