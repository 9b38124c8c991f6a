"""Pre- and post-processing stages per kernel set (numpy, opencv, opencl) at the Pi camera's sizes.

Pre-processing: the lores stream (640x480 YUV420) and the main stream (1280x720 YUV420 and XRGB8888) into
uint8 320x320 and 640x640 inputs. Post-processing: YOLOv8 [1, 84, 8400] and ssd-raw (1917 anchors x 91
classes) decode + NMS. Frames and outputs are made in fixtures; a kernel set that cannot run here is skipped
with its reason. ``extra_info`` has frames/s and input GB/s, and for opencl the device's own split (kernel
time vs upload and download, mean of ``last_timings()`` over extra untimed calls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from accel.core.frames import Frame, PixelFormat
from accel.kernels import REGISTRY, DecodeSpec, Geometry, InputSpec, KernelSet
from accel.kernels.numpy_ref import rgb_to_i420

KERNEL_SETS = ["numpy", "opencv", "opencl"]
STREAMS = {
    "lores-yuv420": (PixelFormat.YUV420, 480, 640),
    "main-yuv420": (PixelFormat.YUV420, 720, 1280),
    "main-xrgb8888": (PixelFormat.XRGB8888, 720, 1280),
}
ROUNDS = 40


@pytest.fixture(scope="module", params=KERNEL_SETS)
def kernel_set(request: pytest.FixtureRequest) -> Iterator[KernelSet]:
    """Each kernel set by name, or a skip with the reason it cannot run here."""
    try:
        kernels: KernelSet = REGISTRY.load(request.param)()
    except (ImportError, LookupError) as exc:
        pytest.skip(str(exc))
    available = kernels.probe()
    if not available.ok:
        pytest.skip(f"{request.param}: {available.reason}")
    yield kernels
    kernels.close()


def camera_like(h: int, w: int) -> np.ndarray:
    """Gradients, texture and sensor noise: an RGB frame with detail at every scale the resize sees."""
    rng = np.random.default_rng(h * w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 90 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    g = 40 + 170 * yy / h
    b = 128 + 60 * np.sin((xx + yy) / 9.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=list(STREAMS))
def frame(request: pytest.FixtureRequest) -> Frame:
    fmt, h, w = STREAMS[request.param]
    rgb = camera_like(h, w)
    if fmt is PixelFormat.YUV420:
        return Frame(rgb_to_i420(rgb, w), w, h, fmt, w)
    xrgb = np.concatenate([rgb[..., ::-1], np.full((h, w, 1), 255, np.uint8)], axis=2)  # B, G, R, A in memory
    return Frame(xrgb.reshape(h, w * 4), w, h, fmt, w * 4)


def _device_split(kernels: KernelSet, call: Callable[[], object], calls: int = 5) -> dict[str, float]:
    """Mean opencl timings (upload, kernel, download ms) over a few untimed calls after the benchmark."""
    timings = []
    for _ in range(calls):
        call()
        timings.append(kernels.last_timings())  # type: ignore[attr-defined]
    mean = {key: float(np.mean([t[key] for t in timings])) for key in timings[0]}
    mean["with_transfer_ms"] = mean["upload_ms"] + mean["kernel_ms"] + mean["download_ms"]
    return mean


@pytest.mark.parametrize("size", [320, 640])
def test_preprocess(benchmark: Any, kernel_set: KernelSet, frame: Frame, size: int) -> None:
    spec = InputSpec(size, size)
    benchmark.group = f"preprocess {frame.format.value} {frame.width}x{frame.height} -> {size}x{size}"
    benchmark.pedantic(kernel_set.preprocess, args=(frame, spec), rounds=ROUNDS, warmup_rounds=2, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update({"kernels": kernel_set.name, "format": frame.format.value,
                                 "from": [frame.width, frame.height], "to": [size, size], "fps": 1.0 / mean,
                                 "input_gbps": frame.data.nbytes / mean / 1e9})
    if kernel_set.name == "opencl":
        benchmark.extra_info.update(_device_split(kernel_set, lambda: kernel_set.preprocess(frame, spec)))


def yolov8_outputs() -> tuple[dict[str, np.ndarray], DecodeSpec]:
    """[1, 84, 8400] in pixels: low class scores everywhere, ~300 confident candidates in ~60 clusters."""
    rng = np.random.default_rng(8)
    n = 8400
    p = np.empty((84, n), np.float32)
    p[0:2] = rng.uniform(0, 640, (2, n))
    p[2:4] = rng.uniform(8, 200, (2, n))
    p[4:] = rng.uniform(0, 0.05, (80, n))
    hot = rng.choice(n, 300, replace=False)
    objects = rng.integers(0, 60, hot.size)
    p[0:2, hot] = rng.uniform(0, 640, (2, 60))[:, objects] + rng.normal(0, 4, (2, hot.size))
    p[2:4, hot] = rng.uniform(20, 200, (2, 60))[:, objects]
    p[4 + objects % 80, hot] = rng.uniform(0.3, 0.95, hot.size)
    return {"predictions": p[np.newaxis]}, DecodeSpec("yolov8", (640, 640), score_threshold=0.25, iou_threshold=0.45)


def ssd_raw_outputs() -> tuple[dict[str, np.ndarray], DecodeSpec]:
    """1917 anchors x 91 classes (background first), logits mostly low: ~800 candidates at 0.3."""
    rng = np.random.default_rng(91)
    n = 1917
    anchors = np.stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0.05, 0.9, n),
                        rng.uniform(0.05, 0.9, n)], axis=1)
    outputs = {"encodings": rng.normal(0, 1, (1, n, 4)).astype(np.float32),
               "scores": rng.normal(-6, 2, (1, n, 91)).astype(np.float32)}
    return outputs, DecodeSpec("ssd-raw", (300, 300), score_threshold=0.3, anchors=anchors)


POST = {"yolov8-84x8400": yolov8_outputs, "ssd-raw-1917x91": ssd_raw_outputs}


@pytest.fixture(scope="module", params=list(POST))
def raw_outputs(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray], DecodeSpec]:
    outputs, spec = POST[request.param]()
    return request.param, outputs, spec


def test_postprocess(benchmark: Any, kernel_set: KernelSet,
                     raw_outputs: tuple[str, dict[str, np.ndarray], DecodeSpec]) -> None:
    name, outputs, spec = raw_outputs
    geometry = Geometry()
    benchmark.group = f"postprocess {name}"
    result = benchmark.pedantic(kernel_set.postprocess, args=(outputs, spec, geometry), rounds=ROUNDS * 2,
                                warmup_rounds=2, iterations=1)
    mean = benchmark.stats.stats.mean
    nbytes = sum(v.nbytes for v in outputs.values())
    benchmark.extra_info.update({"kernels": kernel_set.name, "family": spec.family, "detections": len(result),
                                 "fps": 1.0 / mean, "input_gbps": nbytes / mean / 1e9})
    if kernel_set.name == "opencl":
        benchmark.extra_info.update(_device_split(kernel_set, lambda: kernel_set.postprocess(outputs, spec, geometry)))
