"""qemu user mode: the emulator itself, the wrapper that makes workers re-enter it, the emulated environment."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from piemu import EmulateError
from piemu.debian import Apt, host_arch

MIN_QEMU = (10, 0)
"""Debian 12's own qemu 7.2 segfaults inside LiteRT's invoke; 10.0 (bookworm-backports) runs it."""

QEMU_PACKAGE = "qemu-user"
"""From backports its binaries are static and it depends on nothing. Never qemu-user-static/-binfmt: installing
those registers binfmt_misc handlers, a kernel-wide change."""

INSTALL_HINT = (f"apt-get install --no-install-recommends -t bookworm-backports {QEMU_PACKAGE}  "
                "(--no-install-recommends keeps qemu-user-binfmt, a kernel-wide change, out)")

# The host's OpenBLAS tuning names an x86 core (e.g. Haswell): meaningless to the aarch64 OpenBLAS in numpy.
_HOST_ONLY = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP",
              "VIRTUAL_ENV")


def parse_version(text: str) -> tuple[int, int] | None:
    """``qemu-aarch64 --version`` -> (major, minor)."""
    m = re.search(r"version (\d+)\.(\d+)", text)
    return (int(m[1]), int(m[2])) if m else None


def qemu_version(binary: Path | str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(out)


def find_qemu(cache: Path, suite: str) -> Path:
    """A qemu-aarch64 >= 10: this machine's if new enough, else backports' unpacked into ``cache``."""
    for name in ("qemu-aarch64", "qemu-aarch64-static"):
        found = shutil.which(name)
        if found and (qemu_version(found) or (0, 0)) >= MIN_QEMU:
            return Path(found)
    local = cache / "qemu" / "qemu-aarch64"
    if local.is_file() and (qemu_version(local) or (0, 0)) >= MIN_QEMU:
        return local
    arch = host_arch()
    apt = Apt(cache / "apt" / f"{suite}-{arch}", suite, arch)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            apt.update()
            pkgs = [p for p in apt.closure([QEMU_PACKAGE], release=f"{suite}-backports") if p.name == QEMU_PACKAGE]
            (deb,) = apt.download(pkgs, Path(tmp))
        except (EmulateError, ValueError) as exc:
            raise EmulateError(f"no qemu-aarch64 >= {'.'.join(map(str, MIN_QEMU))} here, and fetching it failed "
                               f"({exc}); install it with: {INSTALL_HINT}") from exc
        _extract_one(deb, "./usr/bin/qemu-aarch64", local)
    version = qemu_version(local)
    if (version or (0, 0)) < MIN_QEMU:
        raise EmulateError(f"{deb.name} runs as qemu {version}, older than {MIN_QEMU}; install: {INSTALL_HINT}")
    return local


def _extract_one(deb: Path, member: str, dest: Path) -> None:
    """One file of a .deb (its data tar, as ``dpkg-deb --fsys-tarfile`` writes it) to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                if info.name == member and info.isfile():
                    src = tar.extractfile(info)
                    assert src is not None
                    tmp.write_bytes(src.read())
                    break
        proc.stdout.read()
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise EmulateError(f"{deb.name} has no {member.lstrip('.')}; install qemu with: {INSTALL_HINT}")
    tmp.chmod(0o755)
    tmp.replace(dest)


def wrapper_text(qemu: Path, root: Path, cpu: str, wrapper: Path, python: str) -> str:
    """The shell script that stands for the emulated Python.

    ``-0 WRAPPER`` makes the emulated Python's ``sys.executable`` the wrapper itself, so a worker it spawns
    runs this script again and re-enters the emulator (there is no binfmt_misc handler, by design).
    """
    q = shlex.quote
    return ("#!/bin/sh\n"
            f"# accel pi_emulate: CPython {python} on an emulated {cpu} (qemu user mode, root {root})\n"
            f"exec {q(str(qemu))} -L {q(str(root))} -cpu {q(cpu)} -0 {q(str(wrapper))} "
            f"{q(str(root / 'usr' / 'bin' / ('python' + python)))} \"$@\"\n")


def write_wrapper(cache: Path, qemu: Path, root: Path, cpu: str, python: str) -> Path:
    """Write (atomically: other runs may be using it) the wrapper for this root and CPU."""
    folder = cache / "bin" / f"{root.name}-{cpu}"
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / f"python{python}"
    text = wrapper_text(qemu, root, cpu, wrapper, python)
    if not wrapper.is_file() or wrapper.read_text(encoding="utf-8") != text:
        tmp = folder / f".python{python}.{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        tmp.replace(wrapper)
    return wrapper


def lavapipe_icd(root: Path) -> Path:
    """The arm64 lavapipe ICD manifest in ``root``."""
    found = sorted((root / "usr/share/vulkan/icd.d").glob("lvp_icd*.json"))
    if not found:
        raise EmulateError(f"no lvp_icd*.json in {root}/usr/share/vulkan/icd.d: delete {root} to rebuild it")
    return found[0]


def emulated_env(base: Mapping[str, str], cpu: str, sites: list[Path], root: Path, vulkan: bool,
                 runtime_dir: Path | None = None) -> dict[str, str]:
    """The environment of the emulated process: the sites on its path, the CPU named, lavapipe if asked."""
    env = {k: v for k, v in base.items() if k not in _HOST_ONLY}
    env["PYTHONPATH"] = os.pathsep.join(str(s) for s in sites)
    env["PYTHONNOUSERSITE"] = "1"
    # Keep the working directory off sys.path, in workers too: run from a checkout, its own accel/ folder (not
    # importable as is: setuptools maps delegates/ and kernels/ into it) would shadow the installed package.
    env["PYTHONSAFEPATH"] = "1"
    env["ACCEL_EMULATED_CPU"] = cpu
    if vulkan:
        env["VK_ICD_FILENAMES"] = str(lavapipe_icd(root))
        if runtime_dir is not None:
            env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return env
