"""Fakes at the hardware boundary for the power tests: sysfs files and stand-in programs in tmp_path."""

from __future__ import annotations

import stat
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def write(path: Path, text: str) -> Path:
    """Create ``path`` (and its folders) holding ``text``: one sysfs attribute."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_program(path: Path, script: str) -> str:
    """An executable shell script standing in for a hardware tool (vcgencmd); returns its path."""
    write(path, "#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)
