"""Facts about the machine a run happened on, for the result document."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from accel.host.cpu import cpu_info


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Board, CPU, OS, Python and library versions. Missing facts are ``None``."""
    import psutil

    os_release = {}
    for line in (_read("/etc/os-release") or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            os_release[k] = v.strip('"')
    libs = {name: _version(name) for name in ("accel", "ai-edge-litert", "tflite-runtime", "numpy", "pillow",
                                              "opencv-python-headless", "psutil", "rich")}
    cpu = cpu_info()
    return {
        "board": _read("/proc/device-tree/model"),
        "cpu": cpu.core or _cpu_model(),
        "cpu_part": f"0x{cpu.part:03x}" if cpu.part is not None else None,
        "cpu_class": f"{cpu.core}: {cpu.board_class}" if cpu.core else None,
        "cpu_features": list(cpu.features),
        "emulated": {"cpu": cpu.emulated, "by": "qemu user mode"} if cpu.emulated else None,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "os": os_release.get("PRETTY_NAME") or platform.platform(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "libraries": {k: v for k, v in libs.items() if v},
    }
