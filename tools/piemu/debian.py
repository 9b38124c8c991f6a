"""Debian's packages without touching this machine's dpkg: an arm64 root folder, and qemu itself.

apt runs with its own sources, lists and cache under the cache folder (``-o Dir::...``), an empty dpkg status
(so it resolves the whole dependency closure) and, for the root, arm64 as its only architecture. Packages are
fetched with ``apt-get download`` and unpacked with ``dpkg-deb``/``dpkg -x``: no maintainer script runs, so
nothing is configured or registered on this machine (qemu's binfmt_misc entries above all: kernel-wide).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from piemu import EmulateError

MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"

BASE_PACKAGES = ("libstdc++6", "libgomp1")
"""Beside python3.X: the C++ runtime and OpenMP, which the aarch64 wheels link against but do not bundle."""

VULKAN_PACKAGES = ("mesa-vulkan-drivers", "libvulkan1")
"""lavapipe (Mesa >= 24 from backports: Debian 12's own 22.3 lacks a feature Dawn needs) and the loader."""

_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[[^\]]*\] )?\((?P<version>\S+) (?P<origin>.*) \[(?P<arch>[^\]]+)\]\)")


@dataclass(frozen=True)
class Package:
    """One package of a resolved closure."""

    name: str
    version: str
    arch: str

    @property
    def pin(self) -> str:
        return f"{self.name}:{self.arch}={self.version}" if self.arch != "all" else f"{self.name}={self.version}"


def sources_list(suite: str) -> str:
    """The sources the private apt reads: the suite, its updates, security and backports."""
    return (f"deb {MIRROR} {suite} main\n"
            f"deb {MIRROR} {suite}-updates main\n"
            f"deb {SECURITY} {suite}-security main\n"
            f"deb {MIRROR} {suite}-backports main\n")


def parse_closure(simulation: str) -> list[Package]:
    """The packages of ``apt-get -s install`` output (its ``Inst`` lines), in apt's order."""
    found = []
    for line in simulation.splitlines():
        m = _INST.match(line)
        if m:
            found.append(Package(m["name"], m["version"], m["arch"]))
    return found


class Apt:
    """apt-get with private state for one architecture and one suite, rooted in ``state``."""

    def __init__(self, state: Path, suite: str, arch: str) -> None:
        self.state = state
        self.arch = arch
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise EmulateError("apt-get and dpkg-deb not found: the arm64 root is built from Debian's packages, "
                               "so this needs a Debian or Ubuntu machine")
        for sub in ("lists/partial", "cache/archives/partial"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "sources.list").write_text(sources_list(suite), encoding="utf-8")

    def _options(self) -> list[str]:
        s = self.state
        opts = {"APT::Architecture": self.arch, "APT::Architectures": self.arch, "Dir::State::Lists": s / "lists",
                "Dir::State::Status": "/dev/null", "Dir::Etc::SourceList": s / "sources.list",
                "Dir::Etc::SourceParts": s / "sources.list.d", "Dir::Cache": s / "cache",
                "Debug::NoLocking": "1", "APT::Sandbox::User": "root" if _is_root() else "",
                "Acquire::Retries": "2"}
        return [arg for k, v in opts.items() if v != "" for arg in ("-o", f"{k}={v}")]

    def _run(self, args: Sequence[str], what: str, cwd: Path | None = None) -> str:
        cmd = ["apt-get", *self._options(), *args]
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        # apt-get update exits 0 when it could fetch nothing, saying so only in warnings.
        failed = [ln[3:] for ln in done.stderr.splitlines() if ln.startswith("W: Failed to fetch")]
        if done.returncode != 0 or failed:
            raise EmulateError(f"{what} failed: {failed[0] if failed else _last_error(done.stderr + done.stdout)}")
        return done.stdout

    def update(self) -> None:
        """Fetch the package lists (needs the network: Debian's mirror)."""
        self._run(["-q", "update"], f"apt-get update of Debian's {self.arch} package lists (is its mirror reachable?)")

    def closure(self, packages: Sequence[str], release: str | None = None) -> list[Package]:
        """Everything ``packages`` need, resolved by apt itself on an empty system (no recommends)."""
        target = ["-t", release] if release else []
        out = self._run(["-s", "-q", "install", "--no-install-recommends", *target, *packages],
                        f"resolving {' '.join(packages)} for {self.arch}")
        found = parse_closure(out)
        if not found:
            raise EmulateError(f"apt resolved nothing for {' '.join(packages)} ({self.arch})")
        return found

    def download(self, packages: Sequence[Package], into: Path) -> list[Path]:
        """The .deb files of ``packages`` in ``into``, fetching only those not there yet."""
        into.mkdir(parents=True, exist_ok=True)
        missing = [p for p in packages if not _deb(into, p)]
        if missing:
            self._run(["-q", "download", *(p.pin for p in missing)], "apt-get download", cwd=into)
        paths = [_deb(into, p) for p in packages]
        lost = [p.name for p, path in zip(packages, paths, strict=True) if path is None]
        if lost:
            raise EmulateError(f"apt-get download left out {', '.join(lost)}")
        return [p for p in paths if p is not None]


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _deb(folder: Path, pkg: Package) -> Path | None:
    # apt-get download names files NAME_VERSION_ARCH.deb with the epoch's colon written %3a.
    path = folder / f"{pkg.name}_{pkg.version.replace(':', '%3a')}_{pkg.arch}.deb"
    return path if path.is_file() else None


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("E:", "Err:"))]
    return (errors or lines or ["no output"])[-1]


def unpack(debs: Sequence[Path], root: Path) -> None:
    """``dpkg -x`` every package into a fresh ``root`` (built beside it, then moved into place)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    for deb in debs:
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(work)], capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise EmulateError(f"dpkg-deb -x {deb.name} failed: {_last_error(done.stderr)}")
    if root.exists():
        shutil.rmtree(root)
    work.rename(root)


def host_arch() -> str:
    """This machine's dpkg architecture (amd64 on a usual x86 PC)."""
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmulateError(f"dpkg --print-architecture failed ({exc}): this needs a Debian or Ubuntu machine") \
            from exc


def root_packages(python: str, vulkan: bool) -> tuple[list[str], str | None]:
    """What the root is resolved from, and the release apt prefers (backports for Mesa >= 24)."""
    wanted = [f"python{python}", *BASE_PACKAGES]
    return (wanted + list(VULKAN_PACKAGES), "backports") if vulkan else (wanted, None)


def build_root(cache: Path, suite: str, python: str, vulkan: bool) -> Path:
    """The arm64 userland for ``python`` (and lavapipe), built once under ``cache``."""
    root = cache / f"root-{suite}-py{python}{'-vulkan' if vulkan else ''}"
    marker = root / ".accel-packages"
    if marker.is_file():
        return root
    apt = Apt(cache / "apt" / f"{suite}-arm64", suite, "arm64")
    apt.update()
    wanted, release = root_packages(python, vulkan)
    closure = apt.closure(wanted, release=f"{suite}-{release}" if release else None)
    print(f"pi_emulate: unpacking {len(closure)} arm64 packages into {root}", flush=True)
    unpack(apt.download(closure, cache / "debs"), root)
    # qemu -L looks a path up in the root first and falls back to this machine's: empty dist-packages folders
    # keep the host's x86-64 Python packages out of the emulated interpreter.
    for sub in ("usr/lib/python3/dist-packages", f"usr/local/lib/python{python}/dist-packages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    marker.write_text("".join(p.pin + "\n" for p in closure), encoding="utf-8")
    return root
