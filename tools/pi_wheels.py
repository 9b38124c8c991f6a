#!/usr/bin/env python3
"""Check that accel installs on a Raspberry Pi from wheels alone: `.[dev]` and `.[opencl]` for aarch64
CPython 3.11, 3.12 and 3.13 (manylinux_2_27 / manylinux2014), resolved by pip's dry run; nothing is installed.

    python tools/pi_wheels.py [3.11 3.12 ...]

One line per Python and extra; exit status 1 when something would build from source, 2 when pip is unusable.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from piemu import EmulateError  # noqa: E402
from piemu.wheels import main  # noqa: E402

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except EmulateError as exc:
        print(f"pi_wheels: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
