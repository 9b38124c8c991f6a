"""Pixel -> model input tensor: normalization and quantization, against hand-computed values.

Pixel p maps to r = lo + p * (hi - lo) / 255; a quantized input holds round(r / scale) + zero_point, clipped,
rounded half away from zero as TFLite's quantize does.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accel.core.errors import KernelError
from accel.kernels import InputSpec
from accel.kernels.numpy_ref import to_input_tensor

PIXELS = [0, 1, 127, 128, 254, 255]


def _tensor_for(pixels: list[int], spec: InputSpec) -> np.ndarray:
    rgb = np.array(pixels, np.uint8).reshape(1, len(pixels), 1).repeat(3, axis=2)
    out = to_input_tensor(rgb, dataclasses.replace(spec, height=1, width=len(pixels)))
    assert out.shape == (1, 1, len(pixels), 3)
    assert (out[..., 0] == out[..., 2]).all()
    return out[0, 0, :, 0]


QUANT_CASES = [
    ("uint8_raw_identity", InputSpec(1, 1), PIXELS),
    # r = p / 255; r / (1/255) = p; q = p - 128
    (
        "int8_0to1_scale1_255_zp-128",
        InputSpec(1, 1, "int8", 1 / 255, -128, (0.0, 1.0)),
        [-128, -127, -1, 0, 126, 127],
    ),
    # SSD MobileNet v1: r = -1 + 2p/255; r / (1/128) = -128 + 256p/255; q = round(256p/255):
    # 0 -> 0, 1.0039 -> 1, 127.498 -> 127, 128.502 -> 129, 254.996 -> 255, 256 -> clipped 255
    (
        "uint8_-1to1_scale1_128_zp128",
        InputSpec(1, 1, "uint8", 1 / 128, 128, (-1.0, 1.0)),
        [0, 1, 127, 129, 255, 255],
    ),
    # the same without zero point in int8: -128 + 256p/255 -> -128, -127, -0.502 -> -1 (away from zero),
    # 0.502 -> 1, 126.996 -> 127, 128 -> clipped 127
    (
        "int8_-1to1_scale1_128_zp0",
        InputSpec(1, 1, "int8", 1 / 128, 0, (-1.0, 1.0)),
        [-128, -127, -1, 1, 127, 127],
    ),
    # tiny scale saturates: r / 1e-6 is huge for every p > 0
    (
        "uint8_tiny_scale_saturates",
        InputSpec(1, 1, "uint8", 1e-6, 0, (0.0, 1.0)),
        [0, 255, 255, 255, 255, 255],
    ),
    # (-1, 1) with a tiny scale: p = 0 -> -1e6 -> -128; p >= 128 -> r > 0 -> 127; p = 127 -> r < 0 -> -128
    (
        "int8_tiny_scale_saturates",
        InputSpec(1, 1, "int8", 1e-6, 0, (-1.0, 1.0)),
        [-128, -128, -128, 127, 127, 127],
    ),
    # huge scale: every r / scale rounds to 0, leaving the zero point
    ("uint8_huge_scale_is_zero_point", InputSpec(1, 1, "uint8", 1e6, 7, (0.0, 255.0)), [7, 7, 7, 7, 7, 7]),
]


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in QUANT_CASES], ids=[c[0] for c in QUANT_CASES])
def test_quantized_inputs(spec: InputSpec, expected: list[int]) -> None:
    out = _tensor_for(PIXELS, spec)
    assert out.dtype == np.dtype(spec.dtype)
    assert out.tolist() == expected


@pytest.mark.parametrize(
    ("norm_range", "zero_point", "pixels", "expected"),
    [
        # r = p, r / 2 = p / 2: 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (not 2 as half-to-even would give), 127.5 -> 128
        ((0.0, 255.0), 0, [1, 3, 5, 255], [1, 2, 3, 128]),
        # r = p - 255, r / 2: -0.5 -> -1, -1.5 -> -2, -127.5 -> -128 in int8 (zero point 0)
        ((-255.0, 0.0), 0, [254, 252, 0], [-1, -2, -128]),
    ],
    ids=["positive-ties", "negative-ties"],
)
def test_ties_round_half_away_from_zero(
    norm_range: tuple[float, float], zero_point: int, pixels: list[int], expected: list[int]
) -> None:
    dtype = "uint8" if norm_range[0] >= 0 else "int8"
    assert _tensor_for(pixels, InputSpec(1, 1, dtype, 2.0, zero_point, norm_range)).tolist() == expected


@pytest.mark.parametrize(
    ("norm_range", "pixels", "expected"),
    [
        ((0.0, 1.0), [0, 51, 102, 204, 255], [0.0, 0.2, 0.4, 0.8, 1.0]),
        ((-1.0, 1.0), [0, 51, 204, 255], [-1.0, -0.6, 0.6, 1.0]),  # -1 + 2 * 51/255 = -0.6
        ((0.0, 255.0), [0, 1, 128, 255], [0.0, 1.0, 128.0, 255.0]),
    ],
    ids=["0to1", "-1to1", "raw"],
)
def test_float32_inputs(norm_range: tuple[float, float], pixels: list[int], expected: list[float]) -> None:
    out = _tensor_for(pixels, InputSpec(1, 1, "float32", 0.0, 0, norm_range))
    assert out.dtype == np.float32
    assert out.tolist() == pytest.approx(expected, abs=1e-6)


def test_raw_uint8_is_a_view_not_a_copy() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    out = to_input_tensor(rgb, InputSpec(4, 5))
    assert out.shape == (1, 4, 5, 3) and np.shares_memory(out, rgb)


def test_every_pixel_value_through_the_table() -> None:
    # All 256 values, checked against the formula evaluated here with Python floats.
    rgb = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    spec = InputSpec(16, 16, "int8", 0.0078125, -3, (-1.0, 1.0))
    out = to_input_tensor(rgb, spec)[0, ..., 1].reshape(-1).tolist()
    expected = []
    for p in range(256):
        x = (-1.0 + p * 2.0 / 255.0) / 0.0078125
        q = int(x + 0.5) if x >= 0 else -int(-x + 0.5)
        expected.append(min(127, max(-128, q - 3)))
    assert out == expected


@pytest.mark.parametrize(
    ("rgb", "spec", "message"),
    [
        (np.zeros((2, 2, 3), np.uint8), InputSpec(2, 2, "int16"), "uint8, int8 or float32"),
        (np.zeros((2, 3, 3), np.uint8), InputSpec(2, 2), r"expected a \(2, 2, 3\) uint8 image"),
        (np.zeros((2, 2, 3), np.float32), InputSpec(2, 2), "uint8 image"),
        (np.zeros((2, 2, 3), np.uint8), InputSpec(2, 2, "uint8", -1.0), "scale must be >= 0"),
    ],
    ids=["bad-dtype", "wrong-size", "not-uint8", "negative-scale"],
)
def test_bad_inputs_raise_kernel_error(rgb: np.ndarray, spec: InputSpec, message: str) -> None:
    with pytest.raises(KernelError, match=message):
        to_input_tensor(rgb, spec)
