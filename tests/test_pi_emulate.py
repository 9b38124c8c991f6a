"""tools/pi_emulate.py's pure parts: its command line, apt's closure output, the cache keys, the wrapper.

Nothing here runs apt, pip or qemu: the apt output is a recorded ``apt-get -s install`` of Debian 12's
python3.11 for arm64, and the wrapper is checked as text and, with a stand-in "qemu", as a script.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from piemu import EmulateError, debian, emulator, main, options, site, wheels  # noqa: E402

# Recorded from `apt-get -o APT::Architecture=arm64 ... -o Dir::State::Status=/dev/null -s install
# --no-install-recommends -t bookworm-backports python3.11 ... mesa-vulkan-drivers` (excerpt, apt 2.6).
APT_SIMULATION = """\
Reading package lists...
Building dependency tree...
Reading state information...
The following NEW packages will be installed:
  gcc-12-base libc6 media-types mesa-vulkan-drivers python3.11 zlib1g
0 upgraded, 6 newly installed, 0 to remove and 0 not upgraded.
Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [arm64])
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [arm64]) []
Inst zlib1g (1:1.2.13.dfsg-1 Debian:12.15/oldstable [arm64])
Inst libkrb5-3 (1.20.1-2+deb12u5 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [arm64])
Inst media-types (10.0.0 Debian:12.15/oldstable [all])
Inst mesa-vulkan-drivers (25.0.7-2~bpo12+1 Debian Backports:oldstable-backports [arm64])
Inst libssl3 [3.0.15-1~deb12u1] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [arm64])
Conf gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [arm64])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [arm64])
"""


@pytest.mark.parametrize(("argv", "cpu", "vulkan", "pytest_mode", "args"), [
    (["--cpu", "cortex-a72", "--", "delegates", "--json"], "cortex-a72", False, False, ("delegates", "--json")),
    (["--cpu", "cortex-a76", "--vulkan", "--", "compare", "--frames", "10", "--cpu", "x"], "cortex-a76", True,
     False, ("compare", "--frames", "10", "--cpu", "x")),
    (["--cpu", "cortex-a76", "--pytest", "--", "tests/kernels", "-q"], "cortex-a76", False, True,
     ("tests/kernels", "-q")),
    (["--cpu", "max", "--pytest"], "max", False, True, ()),
], ids=["a72-delegates", "a76-vulkan-args-after-dashes-untouched", "pytest", "pytest-no-args"])
def test_options(argv: list[str], cpu: str, vulkan: bool, pytest_mode: bool, args: tuple[str, ...]) -> None:
    opts = options.parse(argv)
    assert (opts.cpu, opts.vulkan, opts.pytest, opts.args, opts.python) == (cpu, vulkan, pytest_mode, args, "3.11")


def test_options_root_and_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert options.parse(["--cpu", "max", "--root", str(tmp_path), "--", "x"]).cache == tmp_path.resolve()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert options.parse(["--cpu", "max", "--", "x"]).cache == (tmp_path / "c" / "accel" / "pi-emulate").resolve()


@pytest.mark.parametrize("argv", [["--cpu", "cortex-a53", "--", "x"], ["--", "x"], ["--cpu", "max",
                                  "--python", "3.9", "--", "x"]], ids=["unknown-cpu", "no-cpu", "unknown-python"])
def test_options_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        options.parse(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_options_nothing_to_run() -> None:
    with pytest.raises(EmulateError, match="nothing to run"):
        options.parse(["--cpu", "cortex-a72"])


def test_parse_closure() -> None:
    found = debian.parse_closure(APT_SIMULATION)
    assert [(p.name, p.version, p.arch) for p in found] == [
        ("gcc-12-base", "12.2.0-14+deb12u1", "arm64"), ("libc6", "2.36-9+deb12u14", "arm64"),
        ("zlib1g", "1:1.2.13.dfsg-1", "arm64"), ("libkrb5-3", "1.20.1-2+deb12u5", "arm64"),
        ("media-types", "10.0.0", "all"), ("mesa-vulkan-drivers", "25.0.7-2~bpo12+1", "arm64"),
        ("libssl3", "3.0.22-1~deb12u2", "arm64")]
    # apt-get download takes NAME:ARCH=VERSION; an arch-all package has no :ARCH.
    assert [p.pin for p in found[2:5]] == ["zlib1g:arm64=1:1.2.13.dfsg-1", "libkrb5-3:arm64=1.20.1-2+deb12u5",
                                           "media-types=10.0.0"]


def test_deb_file_name_writes_the_epoch_colon_as_apt_download_does(tmp_path: Path) -> None:
    pkg = debian.Package("zlib1g", "1:1.2.13.dfsg-1", "arm64")
    (tmp_path / "zlib1g_1%3a1.2.13.dfsg-1_arm64.deb").write_bytes(b"")
    assert debian._deb(tmp_path, pkg) == tmp_path / "zlib1g_1%3a1.2.13.dfsg-1_arm64.deb"
    assert debian._deb(tmp_path, debian.Package("zlib1g", "1:1.3", "arm64")) is None


def test_sources_and_root_packages() -> None:
    text = debian.sources_list("bookworm")
    assert text.splitlines() == ["deb http://deb.debian.org/debian bookworm main",
                                 "deb http://deb.debian.org/debian bookworm-updates main",
                                 "deb http://deb.debian.org/debian-security bookworm-security main",
                                 "deb http://deb.debian.org/debian bookworm-backports main"]
    assert debian.root_packages("3.11", vulkan=False) == (["python3.11", "libstdc++6", "libgomp1"], None)
    wanted, release = debian.root_packages("3.11", vulkan=True)
    assert {"mesa-vulkan-drivers", "libvulkan1", "python3.11"} <= set(wanted) and release == "backports"


@pytest.mark.parametrize(("text", "version"), [
    ("qemu-aarch64 version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright (c) 2003-2025", (10, 0)),
    ("qemu-aarch64 version 7.2.17 (Debian 1:7.2+dfsg-7+deb12u18)", (7, 2)),
    ("bash: qemu-aarch64: command not found", None),
], ids=["backports-10", "bookworm-7.2", "garbage"])
def test_qemu_version(text: str, version: tuple[int, int] | None) -> None:
    assert emulator.parse_version(text) == version


def test_qemu_minimum_is_the_backports_release() -> None:
    assert (10, 0) >= emulator.MIN_QEMU > (7, 2)


def test_wrapper_text_reenters_the_emulator_with_itself_as_argv0() -> None:
    text = emulator.wrapper_text(Path("/c/qemu/qemu-aarch64"), Path("/c/root x"), "cortex-a72",
                                 Path("/c/bin/python3.11"), "3.11")
    assert text.startswith("#!/bin/sh\n")
    assert text.splitlines()[-1] == ("exec /c/qemu/qemu-aarch64 -L '/c/root x' -cpu cortex-a72 -0 "
                                     "/c/bin/python3.11 '/c/root x/usr/bin/python3.11' \"$@\"")


def test_wrapper_script_passes_arguments_through(tmp_path: Path) -> None:
    # A stand-in "qemu" that prints its arguments: the wrapper must hand it every argument intact.
    fake = tmp_path / "qemu-aarch64"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    wrapper = emulator.write_wrapper(tmp_path, fake, tmp_path / "root", "cortex-a76", "3.11")
    out = subprocess.run([str(wrapper), "-c", "print('a b')", ""], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["-L", str(tmp_path / "root"), "-cpu", "cortex-a76", "-0", str(wrapper),
                   str(tmp_path / "root/usr/bin/python3.11"), "-c", "print('a b')", ""]


def test_emulated_env(tmp_path: Path) -> None:
    icd = tmp_path / "usr/share/vulkan/icd.d/lvp_icd.json"
    icd.parent.mkdir(parents=True)
    icd.write_text("{}")
    base = {"PATH": "/bin", "OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": "/host", "VIRTUAL_ENV": "/v"}
    env = emulator.emulated_env(base, "cortex-a76", [Path("/s1"), Path("/s2")], tmp_path, vulkan=True,
                                runtime_dir=Path("/run/x"))
    assert env == {"PATH": "/bin", "PYTHONPATH": "/s1:/s2", "PYTHONNOUSERSITE": "1", "PYTHONSAFEPATH": "1",
                   "ACCEL_EMULATED_CPU": "cortex-a76", "VK_ICD_FILENAMES": str(icd), "XDG_RUNTIME_DIR": "/run/x"}
    assert "VK_ICD_FILENAMES" not in emulator.emulated_env(base, "cortex-a72", [], tmp_path, vulkan=False)
    with pytest.raises(EmulateError, match="lvp_icd"):
        emulator.emulated_env(base, "cortex-a76", [], tmp_path / "nowhere", vulkan=True)


def _git_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "a.py").write_text("x = 1\n")
    (path / ".gitignore").write_text("ignored/\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    return path


def test_checkout_key_follows_the_files_a_commit_would_hold(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "r")

    def key() -> str:
        return site.checkout_key(repo, site.checkout_files(repo))

    first = key()
    assert site.checkout_files(repo) == [".gitignore", "a.py"]
    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_bytes(b"\0" * 10)
    assert key() == first, "an ignored file is not installed: the key must not move"
    (repo / "a.py").write_text("x = 2\n")
    edited = key()
    assert edited != first, "an uncommitted edit must reinstall"
    (repo / "new.py").write_text("")
    assert key() not in (first, edited), "a new untracked file counts too"


def test_checkout_files_outside_git_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmulateError, match="not a git checkout"):
        site.checkout_files(tmp_path)


def test_runtime_requirements(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "p"\ndependencies = ["numpy>=1.26", "rich>=13"]\n'
                         '[project.optional-dependencies]\ndev = ["pytest>=8", "ruff>=0.4", "pytest-benchmark>=4",'
                         ' "mypy"]\n')
    assert site.runtime_requirements(pyproject, test=False) == ["numpy>=1.26", "rich>=13"]
    assert site.runtime_requirements(pyproject, test=True) == ["numpy>=1.26", "rich>=13", "pytest>=8", "ruff>=0.4",
                                                               "pytest-benchmark>=4", "mypy"]
    assert site.requirements_key(["a", "b"], "3.11") == site.requirements_key(["b", "a"], "3.11")
    assert site.requirements_key(["a"], "3.11") != site.requirements_key(["a"], "3.12")


def test_wheel_args_never_build_from_source() -> None:
    assert site.wheel_args("3.12") == ["--only-binary=:all:", "--platform", "manylinux_2_27_aarch64", "--platform",
                                       "manylinux2014_aarch64", "--python-version", "3.12", "--implementation", "cp"]


def test_command() -> None:
    opts = options.parse(["--cpu", "cortex-a76", "--", "compare", "--json", "r.json"])
    assert main.command(Path("/w/python3.11"), opts) == ["/w/python3.11", "-m", "accel", "compare", "--json",
                                                         "r.json"]
    opts = options.parse(["--cpu", "cortex-a76", "--pytest", "--", "tests/model"])
    assert main.command(Path("/w/python3.11"), opts)[1:] == ["-m", "pytest", "tests/model"]


@pytest.mark.parametrize("failure", [EmulateError("apt-get update failed: E: no network"),
                                     PermissionError(13, "Permission denied", "/c")], ids=["tool", "os"])
def test_main_reports_one_line_and_exit_2(failure: Exception, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def fail(*_: object) -> None:
        raise failure

    monkeypatch.setattr(emulator, "find_qemu", fail)
    assert main.main(["--cpu", "cortex-a72", "--root", str(tmp_path), "--", "delegates"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pi_emulate: error: ") and "Traceback" not in err


def test_no_apt_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(EmulateError, match="apt-get and dpkg-deb not found"):
        debian.Apt(tmp_path, "bookworm", "arm64")


def test_wheels_of_a_pip_report() -> None:
    # The shape of `pip install --dry-run --report` (pip 24): the local project is a file: URL, not a wheel.
    report = {"install": [
        {"metadata": {"name": "accel", "version": "0.1.0"}, "download_info": {"url": "file:///work/accel"}},
        {"metadata": {"name": "numpy", "version": "2.2.0"}, "download_info": {
            "url": "https://files.example/numpy-2.2.0-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"}},
        {"metadata": {"name": "pycocotools", "version": "2.0.8"},
         "download_info": {"url": "https://files.example/pycocotools-2.0.8.tar.gz"}},
    ]}
    found, other = wheels.wheels_of(report)
    assert found == ["numpy-2.2.0-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"]
    assert other == ["pycocotools 2.0.8"]
    assert wheels.Resolution("3.13", "dev", tuple(found)).line() == (
        "CPython 3.13 aarch64 .[dev]: 1 wheels, nothing built from source")
    assert wheels.Resolution("3.13", "dev", (), "ERROR: No matching distribution for x").line() == (
        "CPython 3.13 aarch64 .[dev]: FAILS: ERROR: No matching distribution for x")


def test_apt_update_that_fetched_nothing_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # apt-get update exits 0 offline (recorded, apt 2.6): only its warnings say nothing was fetched.
    stderr = ("W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Could not connect to "
              "127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n"
              "W: Some index files failed to download. They have been ignored, or old ones used instead.\n")
    monkeypatch.setattr(debian.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, "Reading package lists...\n", stderr))
    apt = debian.Apt(tmp_path, "bookworm", "arm64")
    with pytest.raises(EmulateError, match=r"update .* failed: Failed to fetch http://deb.debian.org/debian/dists/"
                                           r"bookworm/InRelease  Could not connect"):
        apt.update()
