"""Family detection, output roles and decoder hints (accel.model.families), anchors (accel.model.anchors),
decode_spec."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tflite_build import Out, detector

from accel.core.errors import ConfigError, ModelError
from accel.model import AnchorOptions, Family, corners_to_centers, derive_feature_maps, load_model, ssd_anchors
from accel.plan.sections import DecodeSection
from accel.plan.settings import Settings
from accel.run.pipeline import decode_spec

R2 = math.sqrt(2.0)


# --- anchor generator ------------------------------------------------------------------------------------------
def test_one_layer_2x2_anchors_by_hand() -> None:
    # One layer takes min_scale 0.3; aspect ratios 1 and 4: h = s / sqrt(a), w = s * sqrt(a) -> (0.3, 0.3) and
    # (0.15, 0.6); interpolated anchor: scale sqrt(0.3 * 1.0) (the next scale of the last layer is 1).
    s = math.sqrt(0.3)
    cell = [(0.3, 0.3), (0.15, 0.6), (s, s)]
    centres = [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)]  # (i + 0.5) / 2, rows then columns
    expected = [(y, x, h, w) for y, x in centres for h, w in cell]
    got = ssd_anchors([(2, 2)], (100, 100), AnchorOptions(min_scale=0.3, max_scale=0.9, aspect_ratios=(1.0, 4.0),
                                                             reduce_lowest=False, interpolated=1.0))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_two_layer_anchors_by_hand() -> None:
    # Scales 0.2, 0.8 (then 1.0). Layer 0 reduced: (0.1, 1), (0.2, 2), (0.2, 0.5) on a 2x2 grid;
    # layer 1 on 1x1: (0.8, 1), (0.8, 2), interpolated sqrt(0.8 * 1.0) = 0.894427.
    low = [(0.1, 0.1), (0.2 / R2, 0.2 * R2), (0.2 * R2, 0.2 / R2)]
    expected = [(y, x, h, w) for y in (0.25, 0.75) for x in (0.25, 0.75) for h, w in low]
    expected += [(0.5, 0.5, 0.8, 0.8), (0.5, 0.5, 0.8 / R2, 0.8 * R2), (0.5, 0.5, 0.894427, 0.894427)]
    got = ssd_anchors([(2, 2), (1, 1)], (64, 64), AnchorOptions(min_scale=0.2, max_scale=0.8, aspect_ratios=(1.0, 2.0)))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_non_square_input_keeps_square_anchors_square() -> None:
    # 100 high, 200 wide: base size (1, 100/200): scale 0.4, ratio 1 -> h 0.4, w 0.2 (0.4 of the height either way)
    got = ssd_anchors([(1, 2)], (100, 200), AnchorOptions(min_scale=0.4, aspect_ratios=(1.0,), reduce_lowest=False,
                                                             interpolated=0))
    np.testing.assert_allclose(got, [(0.5, 0.25, 0.4, 0.2), (0.5, 0.75, 0.4, 0.2)], atol=1e-6)


def test_generator_matches_ssd_mobilenet_v1_anchor_tensor(shared_dir: Path) -> None:
    # Independent source: the anchors TF exported into the model (uint8, scale 0.006453: half a step = 0.0033).
    model = load_model(shared_dir / "models" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite")
    stored = model.decode_hints["anchors"]
    maps = derive_feature_maps(stored.shape[0], (300, 300), [3, 6, 6, 6, 6, 6])
    assert [m[0] for m in maps] == [19, 10, 5, 3, 2, 1]
    np.testing.assert_allclose(ssd_anchors(maps, (300, 300)), stored, atol=0.0033)
    assert model.decode_hints["box_scales"] == (10.0, 10.0, 5.0, 5.0) and model.num_classes == 90


@pytest.mark.parametrize(
    ("n", "size", "maps"),
    [pytest.param(1917, (300, 300), [19, 10, 5, 3, 2, 1], id="ssd300"),
     pytest.param(2034, (320, 320), [20, 10, 5, 3, 2, 1], id="ssd320-strides"),  # 1200 + 6 * (100+25+9+4+1)
     pytest.param(42, (32, 32), [2, 1, 1, 1, 1, 1], id="tiny")],  # 3 * 4 + 6 * 5
)
def test_feature_maps_derived_from_anchor_count(n: int, size: tuple[int, int], maps: list[int]) -> None:
    assert [m[0] for m in derive_feature_maps(n, size, [3, 6, 6, 6, 6, 6])] == maps


def test_feature_map_errors() -> None:
    with pytest.raises(ModelError, match="anchor_feature_maps"):
        derive_feature_maps(1000, (300, 300), [3, 6, 6, 6, 6, 6])
    with pytest.raises(ConfigError, match="gives 1917 anchors, the model has 42"):
        derive_feature_maps(42, (300, 300), [3, 6, 6, 6, 6, 6], [19, 10, 5, 3, 2, 1])


@pytest.mark.parametrize(
    ("anchors", "centres", "coding"),
    [
        # (x1, y1, x2, y2), x moving fastest: centres (0.25, 0.25), (0.25, 0.75), (0.75, 0.25)
        pytest.param([[0, 0, .5, .5], [.5, 0, 1, .5], [0, .5, .5, 1]],
                     [[.25, .25, .5, .5], [.25, .75, .5, .5], [.75, .25, .5, .5]], "xyxy", id="corners-x-first"),
        pytest.param([[0, 0, .5, .5], [0, .5, .5, 1], [.5, 0, 1, .5]],
                     [[.25, .25, .5, .5], [.25, .75, .5, .5], [.75, .25, .5, .5]], "yxyx", id="corners-y-first"),
        # a centre/size set: the bottom anchor has h 0.1 < ycenter 0.75, so these cannot be corners
        pytest.param([[.25, .25, .5, .5], [.75, .75, .1, .1]], [[.25, .25, .5, .5], [.75, .75, .1, .1]], "yxhw",
                     id="centres"),
    ],
)
def test_model_anchor_layouts(anchors, centres, coding: str) -> None:  # type: ignore[no-untyped-def]
    got, how = corners_to_centers(np.array(anchors, float))
    np.testing.assert_allclose(got, centres, atol=1e-6)
    assert how == coding


# --- family detection ------------------------------------------------------------------------------------------
def _z(*shape: int) -> np.ndarray:
    return np.zeros(int(np.prod(shape)))


ST_CORNERS = np.array([[0, 0, .5, .5], [.5, 0, 1, .5], [0, .5, .5, 1]])
MODELS = {
    "yolov5-rows": [Out("Identity", (1, 12, 8), _z(12, 8), "uint8", (1 / 200, 10))],
    "yolov8-columns": [Out("PartitionedCall:0", (1, 7, 12), _z(7, 12), "int8", (0.01, -20))],
    # 16x16 input: grids 2x2 + 1 + 1 = 6 cells: N = 6 is anchor-free (v8) even in rows, N = 18 = 3 * 6 is v5
    "yolov8-rows-by-count": [Out("out", (1, 6, 5), _z(6, 5))],
    "yolov5-columns-by-count": [Out("out", (1, 8, 18), _z(8, 18))],
    # STM32 layout: names say nothing, anchors are a constant, scores behind a softmax
    "st-ssd": [Out("StatefulPartitionedCall:2", (1, 3, 2), _z(3, 2), activation="softmax"),
               Out("StatefulPartitionedCall:1", (1, 3, 4), _z(3, 4)),
               Out("StatefulPartitionedCall:0", (1, 3, 4), ST_CORNERS, quant=(1 / 200, -100), const=True)],
    "st-ssd-anchors-first": [Out("a", (1, 3, 4), ST_CORNERS, const=True), Out("b", (1, 3, 4), _z(3, 4)),
                             Out("c", (1, 3, 2), _z(3, 2), activation="softmax")],
    "tf-ssd-raw": [Out("raw_outputs/box_encodings", (1, 42, 4), _z(42, 4)),
                   Out("raw_outputs/class_predictions", (1, 42, 3), _z(42, 3))],
    # 3 classes + background = 4 columns, like the encodings: told apart by the in-graph sigmoid
    "ssd-raw-4-columns": [Out("x", (1, 42, 4), _z(42, 4), activation="logistic"), Out("y", (1, 42, 4), _z(42, 4))],
    "ssd-raw-uint8-probabilities": [Out("y", (1, 42, 4), _z(42, 4)),
                                    Out("x", (1, 42, 7), _z(42, 7), "uint8", (1 / 256, 0))],
}
SIZES = {"yolov8-rows-by-count": (16, 16), "yolov5-columns-by-count": (16, 16), "tf-ssd-raw": (32, 32),
         "ssd-raw-4-columns": (32, 32), "ssd-raw-uint8-probabilities": (32, 32)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("families")
    return {name: detector(folder / f"{name}.tflite", outs, SIZES.get(name, (8, 8)), "uint8")
            for name, outs in MODELS.items()}


@pytest.mark.parametrize(
    ("name", "family", "roles", "classes", "hints"),
    [
        pytest.param("yolov5-rows", Family.YOLOV5, {"predictions": 0}, 3, {}, id="yolov5-rows"),
        pytest.param("yolov8-columns", Family.YOLOV8, {"predictions": 0}, 3, {}, id="yolov8-columns"),
        pytest.param("yolov8-rows-by-count", Family.YOLOV8, {"predictions": 0}, 1, {}, id="yolov8-rows-by-count"),
        pytest.param("yolov5-columns-by-count", Family.YOLOV5, {"predictions": 0}, 3, {},
                     id="yolov5-columns-by-count"),
        pytest.param("st-ssd", Family.SSD_RAW, {"scores": 0, "encodings": 1, "anchors": 2}, 1,
                     {"box_order": "xyxy", "box_scales": (1.0, 1.0, 1.0, 1.0), "score_activation": "none",
                      "background_class": True}, id="st-ssd"),
        pytest.param("st-ssd-anchors-first", Family.SSD_RAW, {"anchors": 0, "encodings": 1, "scores": 2}, 1,
                     {"box_order": "xyxy", "score_activation": "none"}, id="st-ssd-anchors-first"),
        pytest.param("tf-ssd-raw", Family.SSD_RAW, {"encodings": 0, "scores": 1}, 2,
                     {"score_activation": "sigmoid", "background_class": True}, id="tf-ssd-raw"),
        pytest.param("ssd-raw-4-columns", Family.SSD_RAW, {"scores": 0, "encodings": 1}, 3,
                     {"score_activation": "none"}, id="ssd-raw-4-columns"),
        pytest.param("ssd-raw-uint8-probabilities", Family.SSD_RAW, {"encodings": 0, "scores": 1}, 6,
                     {"score_activation": "none"}, id="ssd-raw-uint8-probabilities"),
    ],
)
def test_family_detection(built: dict[str, Path], name: str, family: Family, roles: dict[str, int], classes: int,
                          hints: dict[str, object]) -> None:
    info = load_model(built[name])
    assert info.family is family
    assert info.roles == roles
    assert info.num_classes == classes
    for key, value in hints.items():
        assert info.decode_hints[key] == value, key
    assert ("anchors" in info.decode_hints) == ("anchors" in roles)


def test_st_anchor_constant_read_and_dequantized(built: dict[str, Path]) -> None:
    # int8, scale 1/200, zero point -100: 0 -> -100, 0.5 -> 0, 1 -> 100, all exact. Corners -> centres.
    anchors = load_model(built["st-ssd"]).decode_hints["anchors"]
    np.testing.assert_allclose(anchors, [[.25, .25, .5, .5], [.25, .75, .5, .5], [.75, .25, .5, .5]], atol=1e-6)


def test_classifier_and_ssd_class_counts(tiny_classifier: tuple[Path, np.ndarray, np.ndarray]) -> None:
    from accel.model import default_model_path

    assert load_model(tiny_classifier[0]).num_classes == 5
    default = load_model(default_model_path())
    assert default.family is Family.SSD and default.num_classes == 1
    assert default.decode_hints["anchors"].shape[1] == 4


def test_unrecognised_model_lists_families(tmp_path: Path) -> None:
    path = detector(tmp_path / "odd.tflite", [Out("a", (1, 5), _z(5)), Out("b", (1, 7), _z(7))])
    with pytest.raises(ModelError) as err:
        load_model(path)
    message = str(err.value)
    assert "supported: ssd, ssd-raw, yolov5, yolov8, classifier" in message and "[model] family" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "family", "expected"),
    [pytest.param("yolov5-rows", "yolov8", (Family.YOLOV8, 4), id="force-yolov8"),
     pytest.param("tf-ssd-raw", "ssd-raw", (Family.SSD_RAW, 2), id="force-same"),
     pytest.param("yolov5-rows", "ssd-raw", "ssd-raw needs", id="force-impossible"),
     pytest.param("yolov5-rows", "retinanet", "valid: ssd, ssd-raw", id="unknown-family")],
)
def test_forced_family(built: dict[str, Path], name: str, family: str, expected: object) -> None:
    if isinstance(expected, str):
        with pytest.raises(ModelError, match=expected):
            load_model(built[name], family)
        return
    info = load_model(built[name], family)
    assert (info.family, info.num_classes) == expected


# --- decode_spec -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("decode", "expected"),
    [
        pytest.param({}, {"box_order": "xyxy", "box_scales": (1.0, 1.0, 1.0, 1.0), "score_activation": "none",
                          "background_class": True}, id="model-hints"),
        pytest.param({"box_order": "auto", "box_scales": (), "background_class": "auto"},
                     {"box_order": "xyxy", "background_class": True}, id="auto-keeps-hints"),
        pytest.param({"box_order": "yxhw", "box_scales": (10.0, 10.0, 5.0, 5.0), "score_activation": "sigmoid",
                      "background_class": "no"},
                     {"box_order": "yxhw", "box_scales": (10.0, 10.0, 5.0, 5.0), "score_activation": "sigmoid",
                      "background_class": False}, id="config-overrides"),
    ],
)
def test_decode_spec_hints_and_overrides(built: dict[str, Path], decode: dict[str, object],
                                         expected: dict[str, object]) -> None:
    spec = decode_spec(load_model(built["st-ssd"]), Settings(decode=DecodeSection(**decode)))  # type: ignore[arg-type]
    for key, value in expected.items():
        assert getattr(spec, key) == value, key
    np.testing.assert_allclose(spec.anchors, [[.25, .25, .5, .5], [.25, .75, .5, .5], [.75, .25, .5, .5]], atol=1e-6)


def test_decode_spec_anchor_modes(built: dict[str, Path]) -> None:
    tf = load_model(built["tf-ssd-raw"])
    generated = ssd_anchors([(2, 2)] + [(1, 1)] * 5, (32, 32))  # 42 anchors on a 32x32 input, defaults
    for mode in ("auto", "generate"):
        np.testing.assert_allclose(decode_spec(tf, Settings(decode=DecodeSection(anchors=mode))).anchors, generated)
    with pytest.raises(ModelError, match='anchors = "model" but the model has no anchor tensor'):
        decode_spec(tf, Settings(decode=DecodeSection(anchors="model")))
    st = load_model(built["st-ssd"])
    assert decode_spec(st, Settings(decode=DecodeSection(anchors="model"))).anchors.shape == (3, 4)
    with pytest.raises(ModelError, match="cannot derive anchor feature maps for 3 anchors"):
        decode_spec(st, Settings(decode=DecodeSection(anchors="generate")))
    custom = decode_spec(tf, Settings(decode=DecodeSection(
        anchors="generate", anchor_feature_maps=(4, 2, 1), anchor_aspect_ratios=(1.0,), anchor_reduce_lowest=False)))
    # (16 + 4 + 1) cells x (1 ratio + 1 interpolated) = 42. Scales 0.2, 0.575, 0.95: the first cell (centre
    # 0.5 / 4) has (0.2, 1) and the interpolated sqrt(0.2 * 0.575) = 0.339116.
    assert custom.anchors.shape == (42, 4)
    np.testing.assert_allclose(custom.anchors[:2], [[.125, .125, .2, .2], [.125, .125, .339116, .339116]], atol=1e-6)
    with pytest.raises(ConfigError, match="anchor_feature_maps"):
        decode_spec(tf, Settings(decode=DecodeSection(anchors="generate", anchor_feature_maps=(3,))))
