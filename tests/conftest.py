"""Shared fixtures: tiny hand-made models, the third-party models in ../shared (skipped when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tflite_build import classifier  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared next to the repo: third-party models and photos (CI always has it; a user's clone may not)."""
    if not (SHARED / "models").is_dir():
        pytest.skip(f"{SHARED} is absent: third-party models live there, not in the repo")
    return SHARED


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A float32 [1,4,4,3] -> [1,5] classifier with known weights: logits = W @ x.ravel() + b."""
    rng = np.random.default_rng(7)
    weights = rng.normal(size=(5, 48)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    path = classifier(tmp_path_factory.mktemp("models") / "tiny_classifier.tflite", weights, bias)
    return path, weights, bias
