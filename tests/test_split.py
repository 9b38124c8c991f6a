"""A detector split at TFLite_Detection_PostProcess (what GPU users run) decodes, as ssd-raw, to the
in-graph op's detections on the same frames, also when further ops follow the op (QUANTIZE + DEQUANTIZE,
QUANTIZE, CAST + RESHAPE: ``tflite_build.behind_postprocess``), which the split removes with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tflite_build import behind_postprocess

from accel.delegates import Variant
from accel.kernels import DetectionPostProcess
from accel.model import Family, default_model_path, load_model, strip_postprocess
from accel.plan.job import Job
from accel.plan.settings import Settings
from accel.results.agreement import agreement
from accel.run.pipeline import decode_spec, run_job
from accel.sources import SourceSpec, capture, open_source


@pytest.mark.parametrize(("chain", "dtype"), [("", ""), ("qdq", "uint8"), ("quantize", "int8"), ("cast-reshape", "")])
def test_split_model_runs_on_its_own_and_agrees_with_the_op(chain: str, dtype: str, tmp_path: Path) -> None:
    data = default_model_path().read_bytes()
    whole_path = tmp_path / "whole.tflite"
    whole_path.write_bytes(behind_postprocess(data, chain, dtype or "uint8") if chain else data)
    split_path = tmp_path / "split.tflite"
    split_path.write_bytes(strip_postprocess(whole_path.read_bytes()).model)
    split = load_model(split_path)
    network = {op: n for op, n in load_model(default_model_path()).ops.items() if op != "TFLite_Detection_PostProcess"}
    assert split.ops == network  # the ops after the op went with it
    assert split.family is Family.SSD_RAW
    assert split.decode_hints["anchors"].shape == (3000, 4)
    assert split.decode_hints["box_scales"] == (10.0, 10.0, 5.0, 5.0)  # the op's options, from the metadata
    with open_source(SourceSpec(kind="synthetic", width=640, height=480)) as src:
        frames = capture(src, 8)
    settings = Settings(frames=8, seconds=0.0, warmup=0, save_detections=8, max_detections=25)
    variant = Variant("xnnpack", (("threads", 1),))
    whole = run_job(Job(load_model(whole_path), variant, "numpy", settings), frames)
    alone = run_job(Job(split, variant, "numpy", settings), frames)
    found = agreement(whole.run.detections, alone.run.detections, threshold=0.3)
    assert found is not None and found["frames"] == 8
    assert found["score"] >= 0.99 and found["mean_iou"] >= 0.99


def test_split_model_decodes_with_the_ops_options_not_the_decode_table(tmp_path: Path) -> None:
    original = load_model(default_model_path())
    split_path = tmp_path / "split.tflite"
    split_path.write_bytes(strip_postprocess(default_model_path().read_bytes()).model)
    settings = Settings(iou_threshold=0.9, max_detections=3, score_threshold=0.4)
    spec = decode_spec(load_model(split_path), settings)
    assert spec.postprocess == DetectionPostProcess.from_options(original.postprocess_options)
    assert (spec.postprocess.max_detections, spec.postprocess.iou_threshold) == (25, 0.5)  # the op's, not 3 and 0.9
    assert spec.score_threshold == 0.4  # still filters what is reported, as for the op's own outputs
