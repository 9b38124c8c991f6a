"""accel: run a .tflite detector every configured way on the same camera frames and compare them.

Importing accel touches no device, environment variable or warning filter; runtimes, cameras and
OpenCV are imported inside their adapters when selected.
"""

from __future__ import annotations

from accel.compare.comparison import compare
from accel.core.errors import (
    AccelError,
    ConfigError,
    DelegateError,
    KernelError,
    ModelError,
    OutputError,
    PowerError,
    SourceError,
)
from accel.model import ModelInfo, load_model
from accel.plan.config import Config, load_config
from accel.plan.job import Job, Plan, build_plan

__all__ = [
    "AccelError",
    "Config",
    "ConfigError",
    "DelegateError",
    "Job",
    "KernelError",
    "ModelError",
    "ModelInfo",
    "OutputError",
    "Plan",
    "PowerError",
    "SourceError",
    "build_plan",
    "compare",
    "load_config",
    "load_model",
]
