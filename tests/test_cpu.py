"""The CPU facts of the machine record, from recorded /proc/cpuinfo texts and AT_HWCAP values."""

from __future__ import annotations

import pytest

from accel.host import cpu
from accel.host.cpu import CpuInfo, hwcap_features, missing_dot_product

# /proc/cpuinfo of a Raspberry Pi 4 (one core shown) and of a Pi 5, as the kernel prints them.
PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""
PI5 = PI4.replace("0xd08", "0xd0b").replace("crc32 cpuid", "aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                                            "asimdrdm lrcpc dcpop asimddp")
X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"


@pytest.mark.parametrize(("hwcap", "names"), [
    (0b11, ("fp", "asimd")),
    (1 << 20, ("asimddp",)),  # HWCAP_ASIMDDP is bit 20
    ((1 << 7) | (1 << 11), ("crc32", "cpuid")),
    (0, ()),
])
def test_hwcap_bits_are_named_as_the_kernel_names_them(hwcap: int, names: tuple[str, ...]) -> None:
    assert hwcap_features(hwcap) == names


def _info(monkeypatch: pytest.MonkeyPatch, text: str, hwcap: int, env: str = "") -> CpuInfo:
    monkeypatch.setattr(cpu.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(cpu.Path, "read_text", lambda self, **kw: text)
    monkeypatch.setattr(cpu, "_getauxval", lambda kind: hwcap)
    monkeypatch.setenv("ACCEL_EMULATED_CPU", env)
    cpu.cpu_info.cache_clear()
    try:
        return cpu.cpu_info()
    finally:
        cpu.cpu_info.cache_clear()


def test_a_pi4_is_a_cortex_a72_without_dot_product(monkeypatch: pytest.MonkeyPatch) -> None:
    info = _info(monkeypatch, PI4, (1 << 0) | (1 << 1) | (1 << 2) | (1 << 7) | (1 << 11))
    assert (info.part, info.core, info.board_class) == (0xD08, "Cortex-A72", "Raspberry Pi 4 / 400 / CM4 class")
    assert info.emulated is None and "asimddp" not in info.features
    why = missing_dot_product(info)
    assert why is not None and "dot-product" in why and "Cortex-A72 (Raspberry Pi 4 / 400 / CM4 class)" in why
    assert "gpu-delegate" in why


def test_a_pi5_is_a_cortex_a76_that_can_run_the_gpu_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    info = _info(monkeypatch, PI5, (1 << 20) | 0b11)
    assert (info.core, info.board_class) == ("Cortex-A76", "Raspberry Pi 5 / 500 / CM5 class")
    assert missing_dot_product(info) is None


def test_qemu_user_mode_on_x86_is_labelled_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    # qemu passes the host's /proc/cpuinfo through; the tool names the CPU it emulates.
    info = _info(monkeypatch, X86, 0b11, env="cortex-a72")
    assert info.emulated == "cortex-a72" and info.core == "Cortex-A72"
    assert _info(monkeypatch, X86, 0b11).emulated == "qemu"  # without the tool: still seen as emulated


def test_off_aarch64_nothing_is_missing() -> None:
    assert missing_dot_product(CpuInfo("x86_64")) is None


def _gpu_probe(monkeypatch: pytest.MonkeyPatch, run: object, missing: str | None = None) -> str:
    from accel.delegates import gpu

    monkeypatch.setattr(gpu, "compiled_model_available", lambda: gpu.Availability.yes("importable"))
    monkeypatch.setattr(gpu, "missing_dot_product", lambda: missing)
    monkeypatch.setattr(gpu.subprocess, "run", run)
    available = gpu.LiteRtGpuDelegate().probe()
    assert not available.ok
    return available.reason


def test_the_gpu_probe_names_missing_dot_product_before_it_would_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kw: object) -> None:
        raise AssertionError("the probe must not run where it would die of SIGILL")

    why = _gpu_probe(monkeypatch, never, missing="LiteRT's prebuilt GPU accelerator needs Armv8.2 dot-product ...")
    assert why.startswith("LiteRT's prebuilt GPU accelerator needs Armv8.2 dot-product")


def test_a_crashed_gpu_probe_says_crashed_without_guessing_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def crashed(*args: object, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, -4, stdout="", stderr="INFO: loading\n")

    why = _gpu_probe(monkeypatch, crashed)
    assert why.startswith("the GPU probe crashed (signal 4, SIGILL)")
    assert "driver" not in why and "Vulkan" not in why


def test_a_gpu_probe_that_cannot_start_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot(*args: object, **kw: object) -> None:
        raise OSError(8, "Exec format error")

    why = _gpu_probe(monkeypatch, cannot)
    assert "could not start" in why and "Exec format error" in why and "\n" not in why
