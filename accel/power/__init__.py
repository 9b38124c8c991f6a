"""Power meters: the contract, its registry, and how one is opened or found.

A ``PowerMeter`` reads board power (``kind = "power"``: watts now), a cumulative energy counter
(``kind = "energy"``: joules, already unwrapped) or is an external meter's log aligned afterwards
(``kind = "log"``: see ``accel.power.csvlog``). Built-in meters register under the entry-point group
``accel.power`` like a third party would; a meter module is imported only when it is selected.

``open_meter(name, options)`` opens one by name (``accel.toml``'s ``meter = "hwmon"``);
``find_meter(options)`` is ``meter = "auto"``: the first real meter present, else the reason none is.
Sampling, energy integration and per-variant attribution live in ``accel.power.sampler``; temperatures
and throttling in ``accel.power.thermal``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from accel.core.errors import OptionError, PowerError
from accel.core.plugins import Availability, Registry, check_options

__all__ = ["AUTO_ORDER", "REGISTRY", "MeterBase", "MeterKind", "PowerMeter", "Reading", "check_meter_options",
           "find_meter", "meter_options", "open_meter", "short_reason"]

MeterKind = Literal["power", "energy", "log"]

# meter = "auto" tries real meters only, best first: a command, a log or an estimate must be asked for.
AUTO_ORDER = ("pi5-pmic", "hwmon", "rapl", "battery")


@dataclass(frozen=True)
class Reading:
    """One meter reading at monotonic time ``t`` (seconds): ``watts`` now and/or ``energy_j``, a cumulative
    counter already unwrapped (only differences mean anything). A meter fills what it measures."""

    t: float
    watts: float | None = None
    energy_j: float | None = None


@runtime_checkable
class PowerMeter(Protocol):
    """A source of power readings. ``min_interval_s`` is the meter's own read cost (or update period): a
    sampler never reads it more often. ``probe()`` says in one line whether it works here and, if not, what
    to do. ``close()`` is idempotent; meters are context managers."""

    name: str
    estimated: bool
    kind: MeterKind
    min_interval_s: float

    def probe(self) -> Availability: ...

    def read(self) -> Reading: ...

    def close(self) -> None: ...

    def __enter__(self) -> PowerMeter: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class MeterBase:
    """Defaults shared by the built-in meters: not estimated, kind "power", a context manager whose
    ``close()`` is idempotent (subclasses release resources in ``_close``)."""

    name = "meter"
    estimated = False
    kind: MeterKind = "power"
    min_interval_s = 0.001

    _closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def _close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


REGISTRY = Registry("accel.power")


def short_reason(reason: str) -> str:
    """The "what is wrong" half of a probe reason (meters write "what is wrong; what to do")."""
    return reason.split(";", 1)[0].strip()


def _factory(name: str, where: str = "power.meter") -> Any:
    try:
        return REGISTRY.load(name)
    except LookupError:
        raise OptionError(where, f"unknown meter {name!r}; known: auto, none, {', '.join(REGISTRY.names())}",
                          where.rsplit(".", 1)[-1] if where == "power.meter" else None) from None
    except ImportError as exc:
        raise PowerError(f"{exc}; reinstall accel (or the package that provides the meter)") from exc


def meter_options(name: str) -> list[str]:
    """The option names meter ``name`` accepts (its constructor's keyword arguments)."""
    params = inspect.signature(_factory(name)).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_meter_options(name: str, options: Mapping[str, Any]) -> None:
    """``OptionError`` for a ``[power.NAME]`` table naming no meter, or holding an option the meter does not
    take or a value of the wrong type; checked for every table, the meter in use or not."""
    check_options(f"power.{name}", _factory(name, f"power.{name}"), options)


def _construct(name: str, options: Mapping[str, Any]) -> PowerMeter:
    factory = _factory(name)
    check_options(f"power.{name}", factory, options)
    meter: PowerMeter = factory(**dict(options))
    return meter


def open_meter(name: str, options: Mapping[str, Any] | None = None) -> PowerMeter:
    """Open meter ``name`` with ``options`` (its constructor's keyword arguments) and check it works.

    Raises ``OptionError`` (a ``ConfigError``) for an unknown meter or option (listing the valid ones) or a bad
    value, and ``PowerError`` with the probe's reason when the meter cannot run here."""
    meter = _construct(name, options or {})
    avail = meter.probe()
    if not avail.ok:
        meter.close()
        raise PowerError(f"power meter {name!r} unavailable: {avail.reason}")
    return meter


def find_meter(options: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[PowerMeter | None, str]:
    """``meter = "auto"``: the first real meter present, in the order of ``AUTO_ORDER`` (never command,
    csv or estimate). ``options`` maps a meter name to its options (e.g. ``{"hwmon": {"name": "ina219"}}``).

    Returns ``(meter, probe detail)`` for the meter found, opened (the caller closes it), or
    ``(None, "no meter: pi5-pmic: ...; hwmon: ...; ...")`` with each one's short reason."""
    options = options or {}
    reasons: list[str] = []
    for name in AUTO_ORDER:
        try:
            meter = _construct(name, options.get(name, {}))
        except PowerError as exc:  # a broken plugin is one more reason, not the end of the search
            reasons.append(f"{name}: {short_reason(str(exc))}")
            continue
        avail = meter.probe()
        if avail.ok:
            return meter, avail.reason or name
        meter.close()
        reasons.append(f"{name}: {short_reason(avail.reason)}")
    return None, "no meter: " + "; ".join(reasons)
