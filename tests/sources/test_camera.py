"""Camera sources: Picamera2 driven through a stand-in with its documented API, and V4L2 error handling."""
# The stand-in's requests carry metadata in the form Picamera2's CompletedRequest.get_metadata() returns
# it on a Pi (a flat dict of libcamera control names; SensorTimestamp in nanoseconds at the microsecond
# resolution of a V4L2 buffer timestamp, ExposureTime and FrameDuration in microseconds).

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from accel.core.errors import SourceError
from accel.core.frames import PixelFormat
from accel.sources import SourceSpec, open_source
from accel.sources.camera import Picamera2Source, V4l2Source, sensor_time

PAD = 255


def _luma(height: int, width: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return ((rows * 3 + cols * 5) % 200).astype(np.uint8)  # never 255, so padding cannot pass for it


#: The monotonic time (ns) of the stand-in's first frame; later frames follow every FrameDuration.
FIRST_FRAME_NS = 8_123_456_789_000
FRAME_DURATION_US = 33_333


def _metadata(n: int, first_ns: int = FIRST_FRAME_NS) -> dict[str, Any]:
    """Metadata of request ``n`` in the recorded format (an imx708 on a Pi 5, 30 fps)."""
    return {"SensorTimestamp": first_ns + n * FRAME_DURATION_US * 1000, "ScalerCrop": (768, 432, 3072, 1728),
            "ExposureTime": 29_994, "FrameDuration": FRAME_DURATION_US, "AnalogueGain": 2.2857, "DigitalGain": 1.0112,
            "ColourGains": (1.9871, 1.6502), "ColourTemperature": 4312, "Lux": 198.4, "AeLocked": True,
            "SensorBlackLevels": (4096, 4096, 4096, 4096), "FocusFoM": 1268, "AfState": 0, "AfPauseState": 0,
            "LensPosition": 1.0, "SensorTemperature": 41.0,
            "ColourCorrectionMatrix": (1.71, -0.52, -0.19, -0.31, 1.62, -0.31, -0.06, -0.58, 1.64)}


class FakeRequest:
    """Stands in for ``picamera2.request.CompletedRequest``: ``make_buffer(name)`` (a 1-D uint8 copy of the
    stream), ``get_metadata()``, ``release()`` (counted)."""

    def __init__(self, buffers: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
        self.buffers, self.metadata = buffers, metadata
        self.released = 0

    def make_buffer(self, name: str) -> np.ndarray:
        if self.released:
            raise RuntimeError("request used after release")
        return self.buffers[name].copy()

    def get_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)

    def release(self) -> None:
        self.released += 1


class FakePicamera2:
    """Stands in for ``picamera2.Picamera2``: the calls accel makes, recorded; lores buffers laid out as
    FACTS.md describes (I420: Y rows of ``stride`` bytes, then U and V rows of ``stride / 2``; padding 255),
    handed out in completed requests whose metadata is ``metadata(n)`` for the n-th request.
    """

    def __init__(self, camera_num: int = 0, *, stride: int | None = None, fail: str = "",
                 metadata: Any = _metadata) -> None:
        self.camera_num = camera_num
        self.stride = stride
        self.fail = fail
        self.metadata = metadata
        self.requests: list[FakeRequest] = []
        self.calls: list[tuple[str, Any]] = []
        self.camera_properties = {"Model": "imx708", "PixelArraySize": (4608, 2592)}
        self.config: dict[str, Any] = {}

    def create_preview_configuration(self, main: dict | None = None, lores: dict | None = None,
                                     **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_preview_configuration", {"main": main, "lores": lores, **kwargs}))
        return {"main": dict(main or {}), "lores": dict(lores) if lores else None, "buffer_count": 4}

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append(("configure", config))
        if self.fail == "configure":
            raise RuntimeError("Failed to configure camera")
        lores = dict(config["lores"])
        width, _ = lores["size"]
        bpp = {"YUV420": 1, "RGB888": 3, "XRGB8888": 4}[lores["format"]]
        lores["stride"] = self.stride or -(-width * bpp // 64) * 64
        self.config = {"main": config["main"], "lores": lores}

    def stream_configuration(self, name: str) -> dict[str, Any]:
        self.calls.append(("stream_configuration", name))
        return self.config[name]

    def start(self) -> None:
        self.calls.append(("start", None))

    def capture_request(self) -> FakeRequest:
        self.calls.append(("capture_request", None))
        if self.fail == "capture":
            raise RuntimeError("Camera frontend has timed out!")
        request = FakeRequest({"lores": self.lores_buffer()}, self.metadata(len(self.requests)))
        self.requests.append(request)
        return request

    def lores_buffer(self, name: str = "lores") -> np.ndarray:
        lores = self.config[name]
        (width, height), stride = lores["size"], lores["stride"]
        if lores["format"] == "YUV420":
            y = np.full((height, stride), PAD, np.uint8)
            y[:, :width] = _luma(height, width)
            u = np.full((height // 2, stride // 2), PAD, np.uint8)
            u[:, : width // 2] = 100
            v = np.full((height // 2, stride // 2), PAD, np.uint8)
            v[:, : width // 2] = 200
            return np.concatenate([y.ravel(), u.ravel(), v.ravel()])
        bpp = 3 if lores["format"] == "RGB888" else 4
        packed = np.full((height, stride), PAD, np.uint8)
        packed[:, : width * bpp] = 7
        return packed.ravel()

    def stop(self) -> None:
        self.calls.append(("stop", None))

    def close(self) -> None:
        self.calls.append(("close", None))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _monotonic_clocks() -> tuple[int, int]:
    """The clock pair of a board that never slept: both clocks 5 ms after the stand-in's first frame."""
    now = FIRST_FRAME_NS + 5_000_000
    return now, now


def _open(width: int = 320, height: int = 240, clocks: Any = _monotonic_clocks,
          **fake_options: Any) -> tuple[Picamera2Source, FakePicamera2]:
    fake = FakePicamera2(**fake_options)
    return Picamera2Source(0, (width, height), factory=lambda num: fake, clocks=clocks), fake


def test_lores_yuv420_is_configured_at_the_requested_size_and_started() -> None:
    source, fake = _open(320, 240)
    (name, args), *_ = fake.calls
    assert name == "create_preview_configuration"
    assert args["lores"] == {"size": (320, 240), "format": "YUV420"}
    main_w, main_h = args["main"]["size"]
    assert main_w >= 320 and main_h >= 240
    assert fake.names()[1:] == ["configure", "stream_configuration", "start"]
    assert (source.width, source.height, source.format) == (320, 240, PixelFormat.YUV420)


def test_odd_sizes_are_rounded_up_to_even() -> None:
    _, fake = _open(301, 223)
    assert fake.calls[0][1]["lores"]["size"] == (302, 224)


def test_the_buffer_is_reshaped_with_the_stream_stride_padding_kept() -> None:
    source, _ = _open(320, 240, stride=384)
    frame = source.read()
    assert frame.stride == 384 and frame.data.shape == (240 * 3 // 2, 384)
    np.testing.assert_array_equal(frame.data[:240, :320], _luma(240, 320))  # Y where FACTS.md puts it
    assert (frame.data[:240, 320:] == PAD).all()
    chroma = frame.data[240:].reshape(2, 120, 192)  # U then V planes, rows of stride / 2
    assert (chroma[0, :, :160] == 100).all() and (chroma[1, :, :160] == 200).all()
    assert (chroma[:, :, 160:] == PAD).all()
    assert frame.format is PixelFormat.YUV420 and frame.index == 0 and frame.capture_s > 0
    assert source.read().index == 1


def test_unpadded_stream() -> None:
    frame = _open(320, 240, stride=320)[0].read()
    assert frame.stride == 320 and frame.data.shape == (360, 320)
    np.testing.assert_array_equal(frame.data[:240], _luma(240, 320))


@pytest.mark.parametrize(("fmt", "bpp"), [(PixelFormat.RGB888, 3), (PixelFormat.XRGB8888, 4)],
                         ids=["RGB888", "XRGB8888"])
def test_rgb_lores_formats_on_a_pi5_are_rows_of_stride_bytes(fmt: PixelFormat, bpp: int) -> None:
    fake = FakePicamera2(stride=320 * bpp + 64)
    source = Picamera2Source(0, (320, 240), format=fmt, factory=lambda num: fake)
    assert fake.calls[0][1]["lores"] == {"size": (320, 240), "format": fmt.value}
    frame = source.read()
    assert frame.format is fmt and frame.data.shape == (240, 320 * bpp + 64)
    assert (frame.data[:, : 320 * bpp] == 7).all() and (frame.data[:, 320 * bpp :] == PAD).all()


def test_a_format_the_lores_stream_cannot_give_is_refused() -> None:
    with pytest.raises(SourceError, match="YUV420, RGB888, XRGB8888"):
        Picamera2Source(0, format=PixelFormat.NV12, factory=FakePicamera2)


def test_close_stops_and_closes_once() -> None:
    with _open()[0] as source:
        fake = source._cam
        source.read()
    source.close()
    assert fake.names().count("stop") == 1 and fake.names().count("close") == 1
    assert fake.names()[-2:] == ["stop", "close"]
    with pytest.raises(SourceError, match="closed"):
        source.read()


def test_describe_records_the_camera_model_and_stride() -> None:
    described = _open(320, 240, stride=384)[0].describe()
    assert described["camera_model"] == "imx708"
    assert (described["stride"], described["width"], described["format"]) == (384, 320, "YUV420")


def test_no_camera_is_one_clear_source_error() -> None:
    def no_camera(num: int) -> FakePicamera2:
        raise RuntimeError("Camera __init__ sequence did not complete.")

    with pytest.raises(SourceError) as caught:
        Picamera2Source(0, factory=no_camera)
    message = str(caught.value)
    assert message.startswith("no Raspberry Pi camera found")
    assert "Camera __init__ sequence did not complete." in message and "rpicam-hello --list-cameras" in message
    assert "\n" not in message


def test_a_configure_failure_closes_the_camera() -> None:
    fake = FakePicamera2(fail="configure")
    with pytest.raises(SourceError, match="cannot configure a 320x240 YUV420 lores stream"):
        Picamera2Source(0, (320, 240), factory=lambda num: fake)
    assert fake.names()[-1] == "close" and "stop" not in fake.names()


def test_a_capture_failure_is_a_source_error() -> None:
    source, _ = _open(fail="capture")
    with pytest.raises(SourceError, match="capture failed: Camera frontend has timed out"):
        source.read()


def test_a_short_buffer_is_reported() -> None:
    source, fake = _open(320, 240)
    fake.lores_buffer = lambda name="lores": np.zeros(1000, np.uint8)  # type: ignore[method-assign]
    with pytest.raises(SourceError, match="1000 bytes, expected 115200"):
        source.read()
    assert fake.requests[0].released == 1


def test_each_read_is_one_request_copied_then_released() -> None:
    source, fake = _open(320, 240)
    frames = [source.read() for _ in range(3)]  # the stand-in refuses make_buffer after release
    assert fake.names()[-3:] == ["capture_request"] * 3
    assert [r.released for r in fake.requests] == [1, 1, 1]  # back to the camera, once each
    assert [f.index for f in frames] == [0, 1, 2]


def test_a_request_that_cannot_be_read_is_still_released() -> None:
    source, fake = _open(320, 240)
    fake.lores_buffer = lambda name="lores": None  # type: ignore[method-assign,assignment,return-value]
    with pytest.raises(SourceError, match="reading a completed request failed"):
        source.read()
    assert fake.requests[0].released == 1


def test_the_timestamp_is_the_sensor_timestamp_on_the_monotonic_clock() -> None:
    source, _ = _open(320, 240)
    stamps = [source.read().timestamp for _ in range(3)]
    # The stamps are CLOCK_MONOTONIC already (as libcamera fills them on a Pi): nanoseconds / 1e9, one
    # FrameDuration apart.
    assert stamps == [8123.456789, 8123.490122, 8123.523455]


@pytest.mark.parametrize(
    ("sensor_ns", "monotonic_ns", "boottime_ns", "seconds"),
    [
        # a board that never slept: the two clocks agree, the stamp is taken as it is
        pytest.param(7_000_000_000, 7_020_000_000, 7_020_000_000, 7.0, id="never-suspended"),
        # suspended for an hour, stamp on CLOCK_MONOTONIC (before monotonic now): as it is
        pytest.param(7_000_000_000, 7_020_000_000, 3_607_020_000_000, 7.0, id="suspended-monotonic-stamp"),
        # suspended for an hour, stamp on CLOCK_BOOTTIME (20 ms before boottime now): an hour taken off
        pytest.param(3_607_000_000_000, 7_020_000_000, 3_607_020_000_000, 7.0, id="suspended-boottime-stamp"),
        # suspended for 10 ms, a boottime stamp 20 ms old looks monotonic: off by at most the 10 ms slept
        pytest.param(7_010_000_000, 7_020_000_000, 7_030_000_000, 7.01, id="short-suspend-ambiguous"),
    ],
)
def test_sensor_time_converts_to_this_process_monotonic_seconds(sensor_ns: int, monotonic_ns: int,
                                                                boottime_ns: int, seconds: float) -> None:
    assert sensor_time(sensor_ns, monotonic_ns, boottime_ns) == pytest.approx(seconds, abs=1e-9)


def test_a_boottime_stamp_after_a_suspend_is_converted_at_read_time() -> None:
    suspended_ns = 3_600 * 10**9

    def clocks() -> tuple[int, int]:  # the board slept an hour before the camera started
        now = FIRST_FRAME_NS + 5_000_000
        return now, now + suspended_ns

    boottime = FakePicamera2(metadata=lambda n: _metadata(n, FIRST_FRAME_NS + suspended_ns))
    source = Picamera2Source(0, (320, 240), factory=lambda num: boottime, clocks=clocks)
    assert source.read().timestamp == pytest.approx(8123.456789, abs=1e-9)


def test_without_a_sensor_timestamp_the_read_time_is_used() -> None:
    source, _ = _open(320, 240, metadata=lambda n: {"ExposureTime": 10_000, "FrameDuration": 33_333})
    assert source.read().timestamp == (FIRST_FRAME_NS + 5_000_000) / 1e9


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here")
def test_without_picamera2_the_error_says_how_to_install_it() -> None:
    with pytest.raises(SourceError, match="sudo apt install python3-picamera2.*--system-site-packages"):
        open_source(SourceSpec("picamera2"))


def test_v4l2_without_such_a_device() -> None:
    pytest.importorskip("cv2", reason="V4L2 cameras are read through OpenCV ('accel[video]')")
    with pytest.raises(SourceError, match="no camera at /dev/video99"):
        V4l2Source(99)
    with pytest.raises(SourceError, match="no camera at /dev/video98"):
        open_source(SourceSpec.from_text("v4l2:98"))
