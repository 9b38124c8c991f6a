from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accel.core.errors import ModelError
from accel.model import Family, default_model_path, load_model


def test_tiny_classifier_is_described_exactly(tiny_classifier: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, weights, bias = tiny_classifier
    info = load_model(path)
    assert info.family is Family.CLASSIFIER
    assert info.params == weights.size + bias.size  # 5*48 + 5, the int32 shape constant is not a parameter
    assert info.ops == {"RESHAPE": 1, "FULLY_CONNECTED": 1}
    assert info.inputs[0].shape == (1, 4, 4, 3) and info.inputs[0].dtype == "float32"
    assert info.outputs[0].shape == (1, 5)
    assert info.size_bytes == path.stat().st_size
    assert info.description == "test classifier"


def test_default_model_has_effdet_lite0_interface() -> None:
    info = load_model(default_model_path())
    assert info.family is Family.SSD
    assert info.image_input.dtype == "uint8" and info.image_input.shape == (1, 320, 320, 3)
    assert set(info.roles) == {"boxes", "classes", "scores", "count"}
    assert info.outputs[info.roles["boxes"]].shape[-1] == 4
    assert info.outputs[info.roles["count"]].shape == (1,)
    assert info.size_bytes < 2_000_000


def test_ssd_roles_follow_the_op_not_the_output_order(shared_dir: Path) -> None:
    info = load_model(shared_dir / "models" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite")
    # TF1 export: the graph outputs are the op's outputs in slot order (README of shared/models).
    assert info.roles == {"boxes": 0, "classes": 1, "scores": 2, "count": 3}
    assert info.image_input.scale == pytest.approx(1 / 128) and info.image_input.zero_point == 128


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda d: d / "missing.tflite", "model file not found", id="missing"),
        pytest.param(lambda d: _write(d / "text.tflite", b"this is not a model\n"), "is not a TFLite model", id="text"),
        pytest.param(lambda d: _write(d / "short.tflite", b"\x00\x00"), "is not a TFLite model", id="tiny"),
        pytest.param(lambda d: _write(d / "cut.tflite", default_model_path().read_bytes()[:4096]), "truncated",
                     id="truncated-head"),
        pytest.param(lambda d: _write(d / "cut2.tflite", _cut_half()), "truncated", id="truncated-half"),
        pytest.param(lambda d: d, "is a folder", id="folder"),
    ],
)
def test_bad_model_files(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match=message) as err:
        load_model(make(tmp_path))
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _cut_half() -> bytes:
    data = default_model_path().read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(("scale", "dtype"), [
    pytest.param(float("nan"), "uint8", id="nan"),
    pytest.param(0.0, "uint8", id="zero-on-uint8"),
    pytest.param(float("inf"), "int8", id="infinite"),
    pytest.param(-0.01, "int8", id="negative"),
])
def test_an_output_scale_that_cannot_dequantize_is_refused(tmp_path: Path, scale: float, dtype: str) -> None:
    """A NaN or zero scale would make every score NaN (or nonsense) while the run looks fine."""
    from tflite_build import Out, detector

    values = np.zeros((12, 8))
    path = detector(tmp_path / "y.tflite", [Out("Identity", (1, 12, 8), values, dtype, (scale, 0))], (8, 8))
    with pytest.raises(ModelError, match=rf"output 'Identity' \({dtype}\) has quantization scale .*expected a "
                                         "finite number > 0"):
        load_model(path)


def test_a_sane_output_scale_loads(tmp_path: Path) -> None:
    from tflite_build import Out, detector

    path = detector(tmp_path / "y.tflite", [Out("Identity", (1, 12, 8), np.zeros((12, 8)), "uint8", (1 / 200, 10))],
                    (8, 8))
    assert load_model(path).outputs[0].scale == pytest.approx(1 / 200)
