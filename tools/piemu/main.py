"""tools/pi_emulate.py: build (once) what an emulated Pi needs, then run accel or pytest there."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from piemu import EmulateError, debian, emulator, options, site

REPO = Path(__file__).resolve().parents[2]


def prepare(opts: options.Options) -> tuple[Path, dict[str, str]]:
    """The wrapper standing for the emulated Python, and its environment; builds what is missing."""
    opts.cache.mkdir(parents=True, exist_ok=True)
    qemu = emulator.find_qemu(opts.cache, opts.suite)
    root = debian.build_root(opts.cache, opts.suite, opts.python, opts.vulkan)
    reqs = site.runtime_requirements(REPO / "pyproject.toml", test=opts.pytest)
    sites = [site.project_site(opts.cache, REPO), site.wheels_site(opts.cache, reqs, opts.python)]
    wrapper = emulator.write_wrapper(opts.cache, qemu, root, opts.cpu, opts.python)
    runtime = None
    if opts.vulkan:
        current = os.environ.get("XDG_RUNTIME_DIR")
        runtime = Path(current) if current and Path(current).is_dir() else Path(tempfile.mkdtemp(prefix="xdg."))
    env = emulator.emulated_env(os.environ, opts.cpu, sites, root, opts.vulkan, runtime)
    return wrapper, env


def command(wrapper: Path, opts: options.Options) -> list[str]:
    """What runs emulated: ``python -m accel ARGS`` or ``python -m pytest ARGS``."""
    module = "pytest" if opts.pytest else "accel"
    return [str(wrapper), "-m", module, *opts.args]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the emulated command's exit status (2 for a failure of this tool)."""
    try:
        opts = options.parse(sys.argv[1:] if argv is None else argv)
        wrapper, env = prepare(opts)
    except EmulateError as exc:
        print(f"pi_emulate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"pi_emulate: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pi_emulate: interrupted while building (what was complete stays cached)", file=sys.stderr)
        return 130
    sys.stdout.flush()
    try:
        done = subprocess.run(command(wrapper, opts), env=env)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"pi_emulate: error: cannot start the emulator: {exc}", file=sys.stderr)
        return 2
    return done.returncode if done.returncode >= 0 else 128 - done.returncode
