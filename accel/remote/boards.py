"""The boards a remote run drives, as ``Board``s: ``--on HOST`` (anything ``ssh`` accepts) here, an Ansible
inventory's hosts in ``accel.remote.inventory``; and Ansible's host ranges (``pi[1:4].local``)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accel.core.errors import ConfigError

__all__ = ["Board", "boards_on", "expand_range"]

_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")


@dataclass(frozen=True)
class Board:
    """One board to run on: ``name`` as the user wrote it (the inventory's host name or ``--on``'s HOST), the
    address ssh connects to (``host``: ``ansible_host``, else the name), and what the inventory or HOST said
    about the connection; what is not said comes from the user's ssh config (``~/.ssh/config``) and then
    OpenSSH's defaults."""

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    python: str = "python3"  # accel_python: the Python that has accel there, tried first
    interpreter: str = ""  # ansible_python_interpreter: tried when accel_python is unset and no --install venv
    accel_dir: str = ""  # the board's accel folder (cache, runs): '' is $XDG_CACHE_HOME/accel/remote there
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, variables: Mapping[str, Any], groups: Iterable[str] = (), where: str = "") -> Board:
        """A board from its inventory name and variables (checked: a port is a number, names are text)."""
        def text(key: str) -> str | None:
            value = variables.get(key)
            if value is None:
                return None
            if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
                raise ConfigError(f"{where}host {name}: {key} = {value!r}, expected text")
            return str(value)

        port = variables.get("ansible_port", variables.get("ansible_ssh_port"))
        if port is not None:
            try:
                port = int(str(port))
            except ValueError:
                port = 0
            if not 1 <= port <= 65535:
                raise ConfigError(f"{where}host {name}: ansible_port = {variables.get('ansible_port')!r}, "
                                  "expected a port number 1..65535")
        for key in ("ansible_host", "ansible_user", "ansible_python_interpreter", "accel_python", "accel_dir"):
            if "{{" in str(variables.get(key, "")):
                raise ConfigError(f"{where}host {name}: {key} = {variables[key]!r} is a Jinja template; accel reads "
                                  "inventories without Ansible's templating: give the value itself")
        interpreter = text("ansible_python_interpreter")
        if interpreter and interpreter.startswith("auto"):  # Ansible's own discovery: none named here
            interpreter = None
        return cls(name=name, host=text("ansible_host") or text("ansible_ssh_host") or name,
                   user=text("ansible_user") or text("ansible_ssh_user"), port=port,
                   key_file=text("ansible_ssh_private_key_file"), python=text("accel_python") or "python3",
                   interpreter=interpreter or "", accel_dir=text("accel_dir") or "",
                   groups=tuple(groups), vars=dict(variables))


def boards_on(hosts: Iterable[str]) -> list[Board]:
    """The boards ``--on HOST`` names: ``[user@]host`` or ``ssh://[user@]host[:port]``, or a ``~/.ssh/config``
    alias; the rest of the connection comes from the user's ssh config, as for ``ssh HOST``."""
    boards = []
    for given in hosts:
        spec = given.strip()
        port = None
        if spec.startswith("ssh://"):
            found = re.fullmatch(r"ssh://(?:([^@/]+)@)?(\[[^\]]+\]|[^:/@]+)(?::(\d+))?/?", spec)
            if not found:
                raise ConfigError(f"option --on: {given!r} is not an ssh URI; expected ssh://[user@]host[:port]")
            user, host, port_text = found.groups()
            host = host.strip("[]")
            port = int(port_text) if port_text else None
            if port is not None and not 1 <= port <= 65535:
                raise ConfigError(f"option --on: {given!r} has port {port}, expected 1..65535")
        else:
            user, _, host = spec.rpartition("@")
            user = user or None
        if not host or any(c.isspace() for c in host) or host.startswith("-"):
            raise ConfigError(f"option --on: {given!r} is not a host; expected [user@]host, an ssh config alias or "
                              "ssh://[user@]host[:port]")
        boards.append(Board(name=given, host=host, user=user, port=port))
    _check_unique(boards, "option --on")
    return boards


def _check_unique(boards: list[Board], where: str) -> None:
    seen: set[str] = set()
    for board in boards:
        if board.name in seen:
            raise ConfigError(f"{where}: the board {board.name!r} is named twice; name each board once")
        seen.add(board.name)


def expand_range(pattern: str) -> list[str]:
    """The host names an Ansible range stands for: ``pi[1:3]`` is pi1, pi2, pi3; ``[01:10:2]`` keeps the
    leading zeros and steps by 2; ``[a:c]`` is letters. Several ranges multiply out."""
    found = _RANGE.search(pattern)
    if not found:
        return [pattern]
    first, last, step_text = found.groups()
    step = int(step_text) if step_text else 1
    head, tail = pattern[:found.start()], pattern[found.end():]
    if first.isdigit() and last.isdigit():
        width = len(first) if first.startswith("0") and len(first) > 1 else 0
        items = [str(i).zfill(width) for i in range(int(first), int(last) + 1, max(step, 1))]
    elif len(first) == 1 and len(last) == 1 and first in string.ascii_letters and last in string.ascii_letters:
        items = [chr(c) for c in range(ord(first), ord(last) + 1, max(step, 1))]
    else:
        raise ConfigError(f"host range {found.group(0)!r} in {pattern!r}: expected [1:9], [01:10], [a:f] "
                          "or a stride such as [1:9:2]")
    if not items:
        raise ConfigError(f"host range {found.group(0)!r} in {pattern!r} is empty: its start is after its end")
    return [name for item in items for name in expand_range(head + item + tail)]
