"""How inference runs: the delegate contract, its registry and the built-in backends.

A ``Delegate`` is a backend family (``cpu-reference``, ``xnnpack``, later GPU and external delegates).
``variants(options)`` expands its accel.toml table into concrete ``Variant``s (e.g. one per thread count);
``open(model, variant)`` returns a ``Runner`` that runs the model and says where its ops ran
(``Placement``). Third-party delegates register under the entry-point group ``accel.delegates``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from accel.core.errors import DelegateError, UnknownPluginError
from accel.core.plugins import Availability, Registry

if TYPE_CHECKING:
    import numpy as np

    from accel.model import ModelInfo

__all__ = ["REGISTRY", "Delegate", "DelegateBase", "Placement", "Runner", "RunnerBase", "Variant", "get_delegate"]


@dataclass(frozen=True)
class Variant:
    """A delegate with concrete options, e.g. ``xnnpack`` with ``threads=2``."""

    delegate: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        opts = " ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.delegate} {opts}".strip()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class Placement:
    """Where a runner's ops ran: ``delegated_ops`` of ``total_ops`` on ``accelerator``; the rest fell back
    to the CPU's builtin kernels (``fallback_ops``: op name -> count)."""

    accelerator: str
    delegated_ops: int
    total_ops: int
    fallback_ops: dict[str, int] = field(default_factory=dict)
    detail: str = ""

    @property
    def fully_delegated(self) -> bool:
        return self.delegated_ops == self.total_ops

    def to_json(self) -> dict[str, Any]:
        return {
            "accelerator": self.accelerator,
            "delegated_ops": self.delegated_ops,
            "total_ops": self.total_ops,
            "fallback_ops": dict(self.fallback_ops),
            "detail": self.detail,
        }


class Runner(Protocol):
    """An opened model on one variant. ``run`` takes the input tensors in graph order and returns the
    outputs in graph order (copies the caller may keep). ``last_invoke_s``: seconds the runtime call itself
    took in the last run (no input/output copies), recorded as the "invoke" stage; None when a runner cannot
    tell. ``close()`` is idempotent; runners are context managers. Subclass ``RunnerBase``."""

    placement: Placement
    runtime: str  # e.g. "ai-edge-litert 2.3.0"
    last_invoke_s: float | None

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Runner: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class RunnerBase:
    """The defaults of the ``Runner`` contract: no invoke timing, a context manager whose ``close()`` runs
    the subclass's ``_close()`` once. Delegates' ``open`` must return one (``accel.run.pipeline`` checks)."""

    placement: Placement
    runtime = "unknown"
    last_invoke_s: float | None = None
    _closed = False

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def _close(self) -> None:
        """Release the runtime's resources (called once)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Delegate(Protocol):
    """A backend family. Subclass ``DelegateBase``.

    ``prepare_model(model, variant)`` returns the model the variant runs (``accel compare`` calls it in the
    parent before the variant runs and records what ran when it differs: litert-gpu runs a detector's
    network without TFLite_Detection_PostProcess, decoded as ssd-raw). ``cache_path(model, variant)`` is a
    file or folder the variant's start-up fills (serialized GPU kernels, packed weights), or None: ``accel
    compare`` then times a second start in a fresh process, so the table shows what the cache saves."""

    name: str
    summary: str

    def probe(self) -> Availability: ...

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        """Expand the delegate's accel.toml options into variants. Raises ``OptionError`` naming the key."""
        ...

    def open(self, model: ModelInfo, variant: Variant) -> Runner: ...

    def prepare_model(self, model: ModelInfo, variant: Variant) -> ModelInfo: ...

    def cache_path(self, model: ModelInfo, variant: Variant) -> Path | None: ...


class DelegateBase:
    """The defaults of the ``Delegate`` contract: the variant runs the model as given, with no cache."""

    name = ""
    summary = ""

    def probe(self) -> Availability:
        raise NotImplementedError

    def variants(self, options: Mapping[str, Any]) -> list[Variant]:
        raise NotImplementedError

    def open(self, model: ModelInfo, variant: Variant) -> Runner:
        raise NotImplementedError

    def prepare_model(self, model: ModelInfo, variant: Variant) -> ModelInfo:
        return model

    def cache_path(self, model: ModelInfo, variant: Variant) -> Path | None:
        return None


REGISTRY = Registry("accel.delegates")


def get_delegate(name: str) -> Delegate:
    """The delegate registered as ``name``. An unknown name raises ``UnknownPluginError``; a plugin that
    fails to import, or does not derive from ``DelegateBase`` (the contract's defaults), ``DelegateError``."""
    try:
        factory = REGISTRY.load(name)
    except LookupError:
        raise UnknownPluginError(f"unknown delegate {name!r}; known: {', '.join(REGISTRY.names())} "
                            "(see 'accel delegates')") from None
    except ImportError as exc:
        raise DelegateError(f"{exc}; reinstall the package that provides it") from exc
    delegate = factory()
    if not isinstance(delegate, DelegateBase):
        raise DelegateError(f"delegate plugin {name!r} ({type(delegate).__module__}.{type(delegate).__qualname__}) "
                            "does not derive from accel.delegates.DelegateBase; update the package that provides it")
    return delegate
