#!/usr/bin/env python3
"""Run accel on an emulated Raspberry Pi CPU: qemu user mode, an arm64 Debian userland, aarch64 wheels.

    python tools/pi_emulate.py --cpu cortex-a72|cortex-a76 [--python 3.11] [--vulkan] [--root DIR] -- ACCEL-ARGS...
    python tools/pi_emulate.py --cpu cortex-a76 --pytest -- tests/kernels -q

Builds once, under --root (default ~/.cache/accel/pi-emulate): qemu-aarch64 10 (Debian 12 backports'
qemu-user, unpacked, not installed), the arm64 root (python3.X and its dependency closure as apt resolves it;
with --vulkan also Mesa's lavapipe from backports), the aarch64 wheels of the project's dependencies, and this
checkout (reinstalled whenever its files change). Then runs `python -m accel ACCEL-ARGS` emulated, in the
current directory, with stdout, stderr and the exit status passed through, ACCEL_EMULATED_CPU=<cpu> set.
Timings from emulation say nothing about a Pi's speed. Failures of this tool: one line, exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from piemu.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
