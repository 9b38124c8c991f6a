"""The variants ``accel watch`` can switch among: every configured (delegate variant x kernel set) that can
run here, as ``accel compare`` plans them, each run pipelined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accel.core.errors import ConfigError
from accel.delegates import Variant
from accel.plan.config import Config
from accel.plan.job import check_backends

__all__ = ["Choice", "best", "choices", "find"]

# Without --variant: the first delegate of this order that is configured and available, with its most
# threads; a GPU delegate only after the CPU ones (on llvmpipe or a driver it may be much slower), the
# reference and the harness-only null last.
_PREFERENCE = ("xnnpack", "litert-cpu", "litert-gpu", "gpu-delegate", "external")
_LAST = ("cpu-reference", "null")


@dataclass(frozen=True)
class Choice:
    """One runnable variant: the delegate variant and the kernel set; ``label`` is what the selector shows
    and ``--variant`` takes ("xnnpack threads=4 + opencv"; the variant's own label alone names its first
    kernel set)."""

    variant: Variant
    kernels: str

    @property
    def label(self) -> str:
        return f"{self.variant.label} + {self.kernels}"


def choices(config: Config) -> list[Choice]:
    """Every runnable (variant, kernel set) of ``config``, in plan order; ``ConfigError`` when none can run,
    with what stopped each one."""
    backends = check_backends(config)
    out = list(dict.fromkeys(Choice(v, k) for v, k, _ in backends.runs))
    if not out:
        why = "; ".join(f"{r.variant}: {r.error}" for r in backends.skipped[:4])
        raise ConfigError(f"no configured variant can run here ({why or 'none is enabled'}); see 'accel delegates'")
    return out


def _rank(choice: Choice) -> tuple[int, int]:
    name = choice.variant.delegate
    if name in _PREFERENCE:
        order = _PREFERENCE.index(name)
    elif name in _LAST:
        order = 100 + _LAST.index(name)
    else:
        order = len(_PREFERENCE)  # a third-party delegate: after the built-in fast ones
    threads = choice.variant.option("threads")
    return order, -(threads if isinstance(threads, int) else 0)


def best(options: Sequence[Choice]) -> Choice:
    """The choice run when none is asked for (see ``_PREFERENCE``); ties keep the configured order."""
    return min(options, key=_rank)


def find(options: Sequence[Choice], text: str) -> Choice | None:
    """The choice ``text`` names: its full label, or a variant label (its first kernel set); None if none."""
    wanted = " ".join(text.split())
    for choice in options:
        if choice.label == wanted:
            return choice
    return next((c for c in options if c.variant.label == wanted), None)
