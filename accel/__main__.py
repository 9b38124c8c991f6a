"""``python -m accel``: a thin shell around ``accel.cli.main.main``."""

from __future__ import annotations

import sys

from accel.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
