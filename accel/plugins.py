"""The plugin shape shared by delegates and kernel sets: availability and an entry-point registry."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any


@dataclass(frozen=True)
class Availability:
    """Whether a plugin can run here; if not, ``reason`` says why in one sentence a user can act on."""

    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls, detail: str = "") -> Availability:
        return cls(True, detail)

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)


class Registry:
    """Plugins of one entry-point group, by name. Entry points load only when a plugin is selected."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._extra: dict[str, Any] = {}

    def register(self, name: str, factory: Any) -> None:
        """Add a plugin by hand (tests, embedding); it shadows an entry point of the same name."""
        self._extra[name] = factory

    def by_hand(self) -> dict[str, str]:
        """Plugins registered by hand that a spawned worker can import again: name -> 'module:QualName'."""
        return {name: f"{f.__module__}:{f.__qualname__}" for name, f in self._extra.items()
                if isinstance(f, type) and "<locals>" not in f.__qualname__ and f.__module__ != "__main__"}

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        return {ep.name: ep for ep in metadata.entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every known plugin name, sorted."""
        return sorted(set(self._entry_points()) | set(self._extra))

    def load(self, name: str) -> Any:
        """The plugin's factory (usually its class). Raises ``LookupError`` for an unknown name and
        ``ImportError`` (with the entry point named) for one that fails to import."""
        if name in self._extra:
            return self._extra[name]
        eps = self._entry_points()
        if name not in eps:
            raise LookupError(f"unknown {self.group} plugin {name!r}; known: {', '.join(self.names())}")
        try:
            return eps[name].load()
        except Exception as exc:  # any failure inside a third-party import is reported by name
            raise ImportError(f"{self.group} plugin {name!r} ({eps[name].value}) failed to import: {exc}") from exc
