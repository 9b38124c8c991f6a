"""Loopback boards (real sshd, tests/remote/loopback.py) for the remote tests; skipped where OpenSSH's server or
the remote extra is missing."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import SSHD, Fleet

warnings.filterwarnings("ignore", message=".*DSA.*")  # asyncssh imports cryptography's deprecated DSA names

needs_ssh = pytest.mark.skipif(SSHD is None or importlib.util.find_spec("asyncssh") is None,
                               reason="needs OpenSSH's server (Debian: openssh-server) and accel[remote]")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if SSHD is None or importlib.util.find_spec("asyncssh") is None:
        pytest.skip("needs OpenSSH's server (Debian: openssh-server) and accel[remote]")
    boards = Fleet(Path(tmp_path_factory.mktemp("fleet")))
    boards.add("board1")
    boards.add("board2")
    yield boards
    boards.stop()
