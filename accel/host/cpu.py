"""What CPU this is: on aarch64 the core (from its part number) and its hardware capabilities, the board
class a Raspberry Pi user knows it by, and whether it is emulated (qemu user mode on another machine).

The capabilities come from the kernel's ``AT_HWCAP`` auxiliary vector entry (``getauxval`` through ctypes):
they are what the running process may execute, which is also what an emulator offers, so a Pi 4's missing
dot-product instructions show under ``qemu-aarch64 -cpu cortex-a72`` as on the board itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["CpuInfo", "cpu_info", "hwcap_features", "missing_dot_product"]

AT_HWCAP = 16
# Linux arch/arm64/include/uapi/asm/hwcap.h: bit -> the name /proc/cpuinfo's Features line uses.
_HWCAP_NAMES = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp",
                "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512",
                "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg")
# Arm's MIDR part numbers (implementer 0x41) of the cores in Raspberry Pi boards.
_PARTS = {0xD03: ("Cortex-A53", "Raspberry Pi 3 / Zero 2 W class"),
          0xD08: ("Cortex-A72", "Raspberry Pi 4 / 400 / CM4 class"),
          0xD0B: ("Cortex-A76", "Raspberry Pi 5 / 500 / CM5 class")}
_EMULATED_NAMES = {"cortex-a53": 0xD03, "cortex-a72": 0xD08, "cortex-a76": 0xD0B}


@dataclass(frozen=True)
class CpuInfo:
    """``core`` (e.g. "Cortex-A72") and ``board_class`` when the part is known; ``features``: hardware
    capabilities by their /proc/cpuinfo names (aarch64 only); ``emulated``: the emulated CPU's name when
    this process runs under an emulator, else None."""

    arch: str
    part: int | None = None
    core: str | None = None
    board_class: str | None = None
    features: tuple[str, ...] = ()
    emulated: str | None = None


def hwcap_features(hwcap: int) -> tuple[str, ...]:
    """The names of the bits set in an aarch64 ``AT_HWCAP`` value."""
    return tuple(name for bit, name in enumerate(_HWCAP_NAMES) if hwcap >> bit & 1)


def _getauxval(kind: int) -> int | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.getauxval.restype = ctypes.c_ulong
        libc.getauxval.argtypes = [ctypes.c_ulong]
        return int(libc.getauxval(kind))
    except (OSError, AttributeError):
        return None


def _cpuinfo_part(text: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "CPU part":
            try:
                return int(value.strip(), 16)
            except ValueError:
                return None
    return None


def _host_is_x86(text: str) -> bool:
    """/proc/cpuinfo of an x86 host, as qemu user mode passes it through to the emulated process."""
    return any(vendor in text for vendor in ("GenuineIntel", "AuthenticAMD", "HygonGenuine"))


@cache
def cpu_info() -> CpuInfo:
    """This machine's CPU (cached: it does not change while the process runs)."""
    arch = platform.machine()
    if arch not in ("aarch64", "arm64"):
        return CpuInfo(arch)
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    named = os.environ.get("ACCEL_EMULATED_CPU", "").strip().lower() or None  # set by tools/pi_emulate.py
    emulated = named or ("qemu" if _host_is_x86(text) else None)
    part = _cpuinfo_part(text) if not _host_is_x86(text) else None
    if part is None and named in _EMULATED_NAMES:
        part = _EMULATED_NAMES[named]
    hwcap = _getauxval(AT_HWCAP)
    core, board = _PARTS.get(part, (None, None)) if part is not None else (None, None)
    return CpuInfo(arch, part, core, board, hwcap_features(hwcap) if hwcap else (), emulated)


def missing_dot_product(info: CpuInfo | None = None) -> str | None:
    """Why LiteRT's prebuilt aarch64 GPU accelerator cannot run on this CPU (it executes Armv8.2 dot-product
    instructions and dies with SIGILL where there are none), or None where it can (or off aarch64)."""
    info = info or cpu_info()
    if info.arch not in ("aarch64", "arm64") or not info.features or "asimddp" in info.features:
        return None
    this = f"this {info.core} ({info.board_class})" if info.core else "this CPU"
    return (f"LiteRT's prebuilt GPU accelerator needs Armv8.2 dot-product instructions; {this} has none: use "
            "gpu-delegate with a GPU delegate built for this board")
