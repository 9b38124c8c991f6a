"""``--install``: this very accel onto a board that lacks it or has another version. A wheel is built here from
the checkout accel runs from (``pip wheel --no-deps``), sent into the board's cache, and installed into a venv
in the board's accel folder made with ``--system-site-packages`` (so Picamera2 from Raspberry Pi OS stays
visible). Its dependencies come from the board's own package index, or, for a board without network, from a
wheelhouse given here (``--wheelhouse DIR``: wheels for the board's platform and Python, e.g. from
``pip download --platform manylinux2014_aarch64 --python-version 3.11 --only-binary=:all:``)."""

from __future__ import annotations

import posixpath
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accel.core.errors import ConfigError
from accel.remote.boardops import NotThere, locate, send
from accel.remote.boards import Board
from accel.remote.feed import Upload, upload_of
from accel.remote.ssh import BoardError, Link, command_line

__all__ = ["build_wheel", "install", "install_line", "project_root", "ready", "wheel_uploads"]


def project_root() -> Path:
    """The checkout this accel runs from (an editable install); a ConfigError saying what to do otherwise."""
    import accel

    root = Path(accel.__file__).resolve().parents[1]
    project = root / "pyproject.toml"
    if not project.is_file() or 'name = "accel"' not in project.read_text(encoding="utf-8", errors="replace"):
        raise ConfigError("option --install: this accel is not run from its source checkout, so no wheel of it can "
                          "be built here; install accel on the board yourself (pip install the same wheel), or "
                          "run from a checkout (pip install -e .)")
    return root


def build_wheel(out: Path) -> Path:
    """A wheel of this checkout, in ``out``."""
    root = project_root()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out),
                           str(root)], capture_output=True, text=True)
    wheels = sorted(out.glob("accel-*.whl"))
    if done.returncode != 0 or not wheels:
        last = next((ln for ln in reversed(done.stderr.splitlines()) if ln.strip()), f"exit {done.returncode}")
        raise ConfigError(f"option --install: building a wheel of {root} failed: {last.strip()}")
    return wheels[-1]


def install_line(board: Board, folder: str, wheel: str, wheelhouse: str | None) -> str:
    """The shell line that makes the board's venv (when missing) and installs ``wheel`` there, its dependencies
    from the board's index or ``wheelhouse``; this accel replaces any other build of the same version."""
    venv = posixpath.join(folder, "venv")
    base = board.python if board.python != "python3" else board.interpreter or "python3"
    python = shlex.quote(base)
    pip = [posixpath.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    index = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    return (f"{{ [ -x {shlex.quote(venv + '/bin/python')} ] || {python} -m venv --system-site-packages "
            f"{shlex.quote(venv)}; }} && {command_line([*pip, *index, wheel])} && "
            f"{command_line([*pip, '--force-reinstall', '--no-deps', *index, wheel])}")


async def ready(link: Link, install_with: tuple[Upload, Upload | None] | None,
                say: Callable[[str], None]) -> tuple[str, str, dict[str, Any]]:
    """The board's accel folder, its Python and what ``accel board info`` said; with ``install_with`` (the
    wheel, the wheelhouse: ``--install``), a board lacking this accel gets it first. NotThere otherwise."""
    try:
        return await locate(link)
    except NotThere as missing:
        if install_with is None:
            raise
        say(f"{missing.problem.split(';')[0]}: installing this accel there")
        python = await install(link, missing.folder, *install_with)
        return await locate(link, python)


async def install(link: Link, folder: str, wheel_upload: Upload, wheelhouse: Upload | None) -> str:
    """Install on the board; the venv's Python."""
    cache = posixpath.join(folder, "cache")
    for upload in (wheel_upload, wheelhouse):
        if upload is not None:
            await send(link, upload, cache)
    line = install_line(link.board, folder, wheel_upload.remote(cache),
                        wheelhouse.remote(cache) if wheelhouse else None)
    status, out, err = await link.shell(line, timeout=1800)
    if status != 0:
        last = next((ln.strip() for ln in reversed((err or out).splitlines()) if ln.strip()), f"exit {status}")
        raise BoardError(link.board.name, f"--install failed: {last}; see that pip can reach its index there, or "
                         "give --wheelhouse DIR with the wheels for its platform", "failed")
    return posixpath.join(folder, "venv", "bin", "python")


def wheel_uploads(wheelhouse: str | None) -> tuple[Upload, Upload | None, tempfile.TemporaryDirectory[str]]:
    """The wheel built here (and the wheelhouse given) as uploads; the temporary folder holding the wheel."""
    tmp = tempfile.TemporaryDirectory(prefix="accel-wheel-")
    wheel = upload_of(build_wheel(Path(tmp.name)))
    house = None
    if wheelhouse:
        path = Path(wheelhouse).expanduser()
        if not path.is_dir() or not any(path.glob("*.whl")):
            tmp.cleanup()
            raise ConfigError(f"option --wheelhouse: {wheelhouse} is not a folder of wheels (.whl)")
        house = upload_of(path)
    return wheel, house, tmp
