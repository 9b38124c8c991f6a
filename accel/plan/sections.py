"""The typed sections of accel.toml: one frozen dataclass per section, each field a key with its default, the
check its value must pass and what the check wants (said when it fails). The loader (``accel.plan.config``)
reads its schema from these fields, so a key is declared once: its type is its annotation (``tuple[str, ...]``
is a TOML list of strings), its default and check are the field's.

``Table`` is the frozen form of the free-form tables (``[delegates.NAME]``, ``[kernels.NAME]``,
``[power.NAME]``): a read-only, hashable mapping whose nested tables and lists are frozen too; ``thaw()``
gives the plain dicts and lists a plugin checks its options in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from accel.model import AnchorOptions, Family
from accel.sources import MAX_PIXELS

__all__ = ["SECTIONS", "AccuracySection", "DecodeSection", "ModelSection", "OutputSection", "PipelineSection",
           "PowerSection", "Key", "ReportSection", "Table", "ThermalSection", "schema"]

_DAY_S, _WEEK_S = 86_400, 604_800


def _key(default: Any, check: Any = None, wants: str = "") -> Any:
    """A section's key: its default, and its check (a tuple of the allowed values, or a predicate with what it
    wants in words)."""
    return field(default=default, metadata={"check": check, "wants": wants})


def _in(lo: float, hi: float, note: str = "", default: Any = None) -> Any:
    """A number key that must lie in lo..hi."""
    return _key(default, lambda v: lo <= v <= hi, f"{lo}..{hi}" + (f" ({note})" if note else ""))


# Numbers have an upper bound too: a value past it is a typo or an attack, not a plan, and would otherwise
# run silently until the variant's timeout (or allocate until the machine gives up).

@dataclass(frozen=True)
class ModelSection:
    path: str = _key("")
    labels: str = _key("")
    family: str = _key("auto", ("auto", *(f.value for f in Family)))
    input_range: str = _key("auto", ("auto", "0,1", "-1,1", "0,255"))
    resize_filter: str = _key("auto", ("auto", "antialias", "bilinear", "area"))


@dataclass(frozen=True)
class PipelineSection:
    source: str = _key("synthetic")
    source_format: str = _key("auto", ("auto", "RGB", "RGB888", "BGR888", "XRGB8888", "XBGR8888", "YUV420", "NV12"))
    source_size: str = _key("auto", lambda v: v in ("auto", "native") or re.fullmatch(r"[1-9]\d*x[1-9]\d*", v),
                            "'auto', 'native' or WIDTHxHEIGHT (each at least 1)")
    source_fps: float = _key(0.0, lambda v: 0 <= v <= 10_000, "frames per second >= 0, at most 10000 (0: the "
                             "source's own rate)")
    buffer_count: int = _in(1, 256, default=4)
    max_pixels: int = _in(1, 1 << 40, "pixels a frame or picture may have", default=MAX_PIXELS)
    frames: int = _in(1, 10_000_000, "for longer runs set thermal.sustained_s", default=100)
    seconds: float = _in(0, _DAY_S, "for longer runs set thermal.sustained_s", default=2.0)
    warmup: int = _in(0, 1_000_000, default=10)
    live: bool = _key(False)
    resize: str = _key("auto", ("auto", "stretch", "letterbox"))
    fill: int = _key(114, lambda v: 0 <= v <= 255, "0..255")
    score_threshold: float = _key(0.3, lambda v: 0 <= v <= 1, "0..1")
    top_k: int = _in(1, 10_000, default=5)
    kernels: tuple[str, ...] = _key(("opencv",), lambda v: len(v) >= 1, "a non-empty list")
    execution: tuple[str, ...] = _key(("serial",), lambda v: len(v) >= 1 and len(set(v)) == len(v)
                                      and all(x in ("serial", "pipelined") for x in v),
                                      "serial, pipelined or both (a list)")
    queue_depth: int = _key(2, lambda v: 1 <= v <= 64, "1..64")
    inference_streams: int = _key(1, lambda v: 1 <= v <= 16, "1..16")
    seed: int = _in(0, 2**63 - 1, default=0)
    timeout_s: float = _key(600.0, lambda v: 0 < v <= _WEEK_S, f"0 < value <= {_WEEK_S} (a week)")


@dataclass(frozen=True)
class DecodeSection:
    iou_threshold: float = _key(0.5, lambda v: 0 < v <= 1, "0 < value <= 1")
    max_detections: int = _in(1, 100_000, default=100)
    box_scales: tuple[float, ...] = _key((), lambda v: len(v) == 0 or (len(v) == 4 and min(v) > 0),
                                         "[] (auto) or four positive numbers [y, x, h, w]")
    box_order: str = _key("auto", ("auto", "yxhw", "xywh", "xyxy", "yxyx"))
    score_activation: str = _key("auto", ("auto", "sigmoid", "softmax", "none"))
    background_class: str = _key("auto", ("auto", "yes", "no"))
    anchors: str = _key("auto", ("auto", "model", "generate"))
    anchor_min_scale: float = _key(0.2, lambda v: 0 < v <= 1, "0 < value <= 1")
    anchor_max_scale: float = _key(0.95, lambda v: 0 < v <= 1, "0 < value <= 1")
    anchor_aspect_ratios: tuple[float, ...] = _key((1.0, 2.0, 0.5, 3.0, 0.3333),
                                                   lambda v: 1 <= len(v) <= 64 and min(v) > 0,
                                                   "1 to 64 positive numbers")
    anchor_feature_maps: tuple[int, ...] = _key((), lambda v: len(v) <= 16 and all(1 <= x <= 4096 for x in v),
                                                "up to 16 sizes 1..4096")
    anchor_reduce_lowest: bool = _key(True)
    anchor_interpolated_scale: float = _in(0, 100, default=1.0)

    def anchor_options(self) -> AnchorOptions:
        """The ``anchors`` and ``anchor_*`` keys, as the anchor generator takes them."""
        return AnchorOptions(mode=self.anchors, min_scale=self.anchor_min_scale, max_scale=self.anchor_max_scale,
                             aspect_ratios=self.anchor_aspect_ratios, feature_maps=self.anchor_feature_maps,
                             reduce_lowest=self.anchor_reduce_lowest, interpolated=self.anchor_interpolated_scale)


@dataclass(frozen=True)
class AccuracySection:
    dataset: str = _key("")
    split: str = _key("val", lambda v: bool(v.strip()), "a split of the dataset's data.yaml: val, train, test")
    eval_score_threshold: float = _key(0.01, lambda v: 0 <= v <= 1, "0..1")
    iou: float = _key(0.5, lambda v: 0 < v <= 1, "0 < value <= 1")
    tie_margin: float = _key(0.01, lambda v: 0 <= v <= 1, "0..1")
    min_agreement: float = _key(0.8, lambda v: 0 <= v <= 1, "0..1")


@dataclass(frozen=True)
class OutputSection:
    dir: str = _key("results")
    json: str = _key("")
    save_detections: int = _in(0, 10_000_000, default=20)
    formats: tuple[str, ...] = _key(("md", "csv", "html"), lambda v: all(f in ("md", "csv", "html") for f in v),
                                    "a list of md, csv, html")
    preview_frames: int = _in(0, 1000, default=4)


@dataclass(frozen=True)
class PowerSection:
    meter: str = _key("auto", lambda v: bool(re.fullmatch(r"[\w.-]+", v)), "auto, none or a meter name")
    rate_hz: float = _key(10.0, lambda v: 0 < v <= 1000, "0 < value <= 1000")
    idle_s: float = _in(0, _DAY_S, default=3.0)


@dataclass(frozen=True)
class ThermalSection:
    cool_down_c: float = _key(0.0, lambda v: 0 <= v <= 150, ">= 0 and <= 150 (0: do not wait for a temperature)")
    pause_s: float = _in(0, _DAY_S, default=0.0)
    max_wait_s: float = _in(0, _DAY_S, default=300.0)
    sustained_s: float = _key(0.0, lambda v: 0 <= v <= _WEEK_S, f">= 0 and <= {_WEEK_S} (a week; 0: off)")


@dataclass(frozen=True)
class ReportSection:
    target_fps: float = _key(0.0, lambda v: 0 <= v <= 10_000, ">= 0 and <= 10000 (0: no target)")


#: accel.toml's typed sections, in the order the file documents them.
SECTIONS: dict[str, type] = {"model": ModelSection, "pipeline": PipelineSection, "decode": DecodeSection,
                             "accuracy": AccuracySection, "output": OutputSection, "power": PowerSection,
                             "thermal": ThermalSection, "report": ReportSection}

_KINDS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "tuple[str, ...]": "list[str]",
          "tuple[int, ...]": "list[int]", "tuple[float, ...]": "list[float]"}


@dataclass(frozen=True)
class Key:
    """One key of a section's schema: its kind (int, float, bool, str, list[str], list[int], list[float]),
    default, check and what the check wants."""

    kind: str
    default: Any
    check: tuple[Any, ...] | Callable[[Any], Any] | None
    wants: str


def _schema_key(f: Field[Any]) -> Key:
    return Key(_KINDS[str(f.type)], f.default, f.metadata.get("check"), f.metadata.get("wants", ""))


def schema(section: str) -> dict[str, Key]:
    """The keys of ``section`` (one of ``SECTIONS``) as its dataclass declares them."""
    return {f.name: _schema_key(f) for f in fields(SECTIONS[section])}


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Table(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Table):
        return value.thaw()
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class Table(Mapping[str, Any]):
    """A read-only table (``[delegates.xnnpack]``'s options): nested tables and lists frozen too, hashable,
    picklable; equal to a dict with the same items."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = {str(k): _freeze(v) for k, v in (items or {}).items()}

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"Table({self._items!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return Table, (self.thaw(),)

    def thaw(self) -> dict[str, Any]:
        """A plain, mutable copy: dicts and lists, as TOML gave them."""
        return {k: _thaw(v) for k, v in self._items.items()}
