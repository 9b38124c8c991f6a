"""The command line of tools/pi_emulate.py."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from piemu import EmulateError

CPUS = ("cortex-a72", "cortex-a76", "max")
"""qemu's names: the Pi 4's and Pi 5's CPUs, and qemu's every-feature CPU (for telling emulator from CPU)."""

PYTHONS = {"3.11": "bookworm"}
"""Python version -> the Debian suite whose arm64 python3.X the root is built from."""

_USAGE = """python tools/pi_emulate.py --cpu {cortex-a72,cortex-a76} [--python 3.11] [--vulkan] [--root DIR]
                             [--pytest] -- ARGS..."""


@dataclass(frozen=True)
class Options:
    """What to build and what to run."""

    cpu: str
    python: str
    vulkan: bool
    cache: Path
    pytest: bool
    args: tuple[str, ...]

    @property
    def suite(self) -> str:
        return PYTHONS[self.python]


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/accel/pi-emulate`` (``~/.cache/accel/pi-emulate``): outside any checkout."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "accel" / "pi-emulate"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pi_emulate.py", usage=_USAGE,
        description="Run `python -m accel ARGS` (or, with --pytest, `python -m pytest ARGS`) on an emulated "
        "Raspberry Pi CPU: qemu user mode, an arm64 Debian userland and the aarch64 wheels, built once and cached.")
    ap.add_argument("--cpu", required=True, choices=CPUS,
                    help="cortex-a72: Pi 4 / 400 / CM4; cortex-a76: Pi 5; max: every feature qemu has")
    ap.add_argument("--python", default="3.11", choices=sorted(PYTHONS),
                    help="the emulated CPython (Debian 12's arm64 python3.11)")
    ap.add_argument("--vulkan", action="store_true",
                    help="add arm64 Mesa lavapipe (software Vulkan, bookworm-backports) so litert-gpu can run")
    ap.add_argument("--root", type=Path, default=None,
                    help=f"cache folder for the roots, wheels and qemu (default {default_cache()})")
    ap.add_argument("--pytest", action="store_true",
                    help="run the test suite instead: ARGS go to pytest (e.g. -- tests/kernels -q)")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="after --: the arguments of accel (or pytest)")
    return ap


def parse(argv: Sequence[str]) -> Options:
    """Parse ``argv``; argparse itself reports usage errors (exit status 2)."""
    ns = _parser().parse_args(list(argv))
    args = list(ns.args)
    if args and args[0] == "--":
        args = args[1:]
    if not args and not ns.pytest:
        raise EmulateError("nothing to run: give accel's arguments after --, e.g. -- delegates --json")
    cache = (ns.root or default_cache()).expanduser().resolve()
    return Options(cpu=ns.cpu, python=ns.python, vulkan=ns.vulkan, cache=cache, pytest=ns.pytest,
                   args=tuple(args))
