"""Run accel on an emulated Raspberry Pi CPU (qemu user mode): the arm64 userland, the aarch64 wheels, the run.

``tools/pi_emulate.py`` is the command; this package holds its parts, one concern a module:
``options`` (the command line), ``debian`` (apt and dpkg: the arm64 root and qemu itself), ``site`` (the
aarch64 wheels and the checkout), ``emulator`` (the wrapper and the emulated environment) and ``main``.
"""

from __future__ import annotations


class EmulateError(Exception):
    """A failure the user can act on: printed as one line, exit status 2, never a traceback."""

    exit_code = 2
