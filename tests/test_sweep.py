"""Several models in one comparison (a sweep): the models come from repeated --model (each with its own
--labels) or [[models]] tables, every one is checked before anything is captured, the plan is the product of
models and backends, and the result holds every model, each variant naming its own and agreeing with its own
model's reference."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from accel.cli.args import parser
from accel.cli.main import main
from accel.compare.comparison import compare
from accel.core.errors import ConfigError
from accel.model import default_model_path
from accel.plan.config import load_config
from accel.plan.flags import FLAG_OF, overrides
from accel.plan.job import build_plan
from accel.results.agreement import agreement
from accel.results.document import load_result, per_model

FLOAT = default_model_path()
INT8 = FLOAT.with_name("default_detector_int8.tflite")
LABELS = FLOAT.with_name("labels.txt")


def _config(argv: list[str], tmp_path: Path, text: str = "") -> object:
    path = tmp_path / "accel.toml"
    path.write_text(text)
    return load_config(path, overrides(parser().parse_args(["compare", *argv])), env={}, flags=FLAG_OF)


def test_models_from_repeated_flags_each_with_its_labels(tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text(LABELS.read_text())
    cfg = _config(["--model", str(FLOAT), "--labels", str(mine), "--model", str(INT8), "--labels", str(LABELS)],
                  tmp_path)
    assert [(m.path, m.labels) for m in cfg.models] == [(str(FLOAT), str(mine)), (str(INT8), str(LABELS))]
    assert cfg.model == cfg.models[0]
    with pytest.raises(ConfigError, match="option --labels: 1 labels files for 2 --model options; give one"):
        _config(["--model", str(FLOAT), "--model", str(INT8), "--labels", str(mine)], tmp_path)


def test_a_folder_a_glob_and_the_shells_expansion_name_several_models(tmp_path: Path) -> None:
    room = tmp_path / "zoo"
    room.mkdir()
    for model in (INT8, FLOAT):
        (room / model.name).write_bytes(model.read_bytes())
    (room / "notes.txt").write_text("not a model")
    (room / "inner").mkdir()  # a folder is not read recursively
    (room / "inner" / "deep.tflite").write_bytes(FLOAT.read_bytes())
    both = [str(room / FLOAT.name), str(room / INT8.name)]  # sorted by name
    assert [m.path for m in _config(["--model", str(room)], tmp_path).models] == both
    assert [m.path for m in _config(["--model", str(room / "*int8*")], tmp_path).models] == both[1:]
    assert [m.path for m in _config(["--model", str(room / "**" / "*.tflite")], tmp_path).models] == [
        *both, str(room / "inner" / "deep.tflite")]  # ** descends, as glob's recursive rule does; sorted as paths
    mine = tmp_path / "mine.txt"
    mine.write_text(LABELS.read_text())
    shell = _config(["--model", *both, "--labels", str(LABELS), "--model", str(FLOAT), "--labels", str(mine)],
                    tmp_path)  # `--model zoo/*.tflite` unquoted: the shell gave one --model two files
    assert [(m.path, m.labels) for m in shell.models] == [(both[0], str(LABELS)), (both[1], str(LABELS)),
                                                           (str(FLOAT), str(mine))]
    text = f'[[models]]\npath = "{room}/*.tflite"\nfamily = "ssd"\n[[models]]\npath = "{FLOAT}"\n'
    assert [(m.path, m.family) for m in _config([], tmp_path, text).models] == [
        (both[0], "ssd"), (both[1], "ssd"), (str(FLOAT), "auto")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"option --model: the folder '.*empty' holds no \.tflite file"):
        _config(["--model", str(empty)], tmp_path)
    with pytest.raises(ConfigError, match=r"the glob '.*\*\.onnx' matches no \.tflite file"):
        _config(["--model", str(room / "*.onnx")], tmp_path)


def test_models_from_tables_and_what_wins(tmp_path: Path) -> None:
    text = (f'[model]\nfamily = "ssd"\n[[models]]\npath = "{FLOAT}"\n[[models]]\npath = "{INT8}"\n'
            f'labels = "{LABELS}"\ninput_range = "0,1"\n')
    cfg = _config([], tmp_path, text)
    assert [(m.path, m.labels, m.family, m.input_range) for m in cfg.models] == [
        (str(FLOAT), "", "ssd", "auto"), (str(INT8), str(LABELS), "ssd", "0,1")]  # [model]'s keys fill in
    assert cfg.to_json()["models"][1]["input_range"] == "0,1"
    assert [m.path for m in _config(["--model", str(INT8)], tmp_path, text).models] == [str(INT8)]  # a flag wins
    with pytest.raises(ConfigError, match=r"accel.toml: models.labelz \(line 3\): unknown key of model 1"):
        _config([], tmp_path, f'[[models]]\npath = "{FLOAT}"\nlabelz = "x"\n')
    with pytest.raises(ConfigError, match="model 1 has no path"):
        _config([], tmp_path, '[[models]]\nlabels = "x"\n')


def test_the_plan_is_every_model_times_every_backend(tmp_path: Path) -> None:
    cfg = _config(["--model", str(FLOAT), "--model", str(INT8), "--delegates", "cpu-reference,xnnpack", "--threads",
                   "1", "--kernels", "numpy"], tmp_path)
    plan = build_plan(cfg)
    assert [m.name for m in plan.models] == [FLOAT.name, INT8.name]
    assert [(j.model.path.name, j.variant.label) for j in plan.jobs] == [
        (FLOAT.name, "cpu-reference threads=1"), (FLOAT.name, "xnnpack threads=1"),
        (INT8.name, "cpu-reference threads=1"), (INT8.name, "xnnpack threads=1")]
    assert {j.model.sha256 for j in plan.jobs} == {plan.models[0].model.sha256, plan.models[1].model.sha256}


def test_a_bad_model_among_several_is_one_line_and_nothing_is_captured(tmp_path: Path) -> None:
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(INT8.read_bytes()[:2000])
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(["compare", "--model", str(FLOAT), "--model", str(cut), "--json", str(tmp_path / "out" / "r.json")])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "cut.tflite" in lines[0], err.getvalue()
    assert not (tmp_path / "out").exists()
    twice = tmp_path / "again"
    twice.mkdir()
    (twice / FLOAT.name).write_bytes(FLOAT.read_bytes())
    with pytest.raises(ConfigError, match=f"two models are called {FLOAT.name}"):
        build_plan(_config(["--model", str(FLOAT), "--model", str(twice / FLOAT.name)], tmp_path))


def test_a_sweep_records_every_model_against_its_own_reference(tmp_path: Path) -> None:
    cfg = _config(["--model", str(FLOAT), "--model", str(INT8), "--delegates", "cpu-reference,xnnpack", "--threads",
                   "1", "--kernels", "numpy", "--frames", "4", "--seconds", "0", "--warmup", "0",
                   "--power-meter", "none"], tmp_path)
    starts: list[dict] = []
    doc, path = compare(cfg, isolate=False, result_path=tmp_path / "r.json",
                        on_event=lambda kind, data: starts.append(data) if kind == "start" else None)
    assert [(e["model_index"], e["models"], e["variant_index"], e["variants"]) for e in starts] == [
        (0, 2, 0, 2), (0, 2, 1, 2), (1, 2, 0, 2), (1, 2, 1, 2)]  # model i of N, variant j of M
    assert starts[0]["left_s"] is None and all(e["left_s"] > 0 for e in starts[1:])  # nothing to estimate from yet
    on_disk = load_result(path)  # this accel reads what it wrote (version 3)
    assert on_disk["schema_version"] == 3 and on_disk["model"] == on_disk["models"][0]
    assert [m["name"] for m in on_disk["models"]] == [FLOAT.name, INT8.name]
    assert [(v["model"], v["variant"], v["status"]) for v in on_disk["variants"]] == [
        (FLOAT.name, "cpu-reference threads=1", "ok"), (FLOAT.name, "xnnpack threads=1", "ok"),
        (INT8.name, "cpu-reference threads=1", "ok"), (INT8.name, "xnnpack threads=1", "ok")]
    by = {(v["model"], v["delegate"]): v for v in on_disk["variants"]}
    for name in (FLOAT.name, INT8.name):  # each xnnpack run is judged against its own model's reference
        ref, run = by[name, "cpu-reference"], by[name, "xnnpack"]
        expected = agreement(ref["detections"], run["detections"], iou=cfg.accuracy.iou,
                             threshold=cfg.pipeline.score_threshold, limit=100, margin=cfg.accuracy.tie_margin)
        assert expected is not None
        assert run["agreement"]["score"] == pytest.approx(expected["score"])
    parts = per_model(on_disk)
    assert [(p["model"]["name"], len(p["variants"])) for p in parts] == [(FLOAT.name, 2), (INT8.name, 2)]
    report = (tmp_path / "r.md").read_text()
    assert report.startswith("## Models\n") and "## Runs compared" in report
    table = [ln for ln in report.split("## Runs compared")[0].splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    assert head[:4] == ["model", "size MB", "params M", "GFLOPs"]
    assert head[4:6] == ["cpu-reference threads=1 + numpy ms", "xnnpack threads=1 + numpy ms"]
    for line, model in zip(table[1:], (FLOAT, INT8), strict=True):  # one row per model, in order
        cells, name = [c.strip() for c in line.strip("|").split("|")], model.name
        assert cells[:2] == [name, f"{model.stat().st_size / 1e6:.2f}"]  # the file's own size
        assert cells[4:6] == [f"{by[name, d]['stages']['inference']['p50']:.2f}" for d in ("cpu-reference", "xnnpack")]
        assert cells[-1] == "ran"
    assert json.loads(json.dumps(doc)) == on_disk


def test_one_model_is_a_document_as_before() -> None:
    doc = {"schema_version": 3, "model": {"name": "a"}, "models": [{"name": "a"}], "variants": [{"model": "a"}]}
    assert per_model(doc) == [doc]
    old = {"schema_version": 2, "model": {"path": "a.tflite"}, "variants": [{}]}
    assert per_model(old) == [old]


def test_a_models_accuracy_in_a_sweep_is_its_accuracy_alone(tmp_path: Path) -> None:
    """With a dataset every model of a sweep gets AP/AP50/precision/recall, and they are the figures a
    single-model compare of that model gives on the same images (the same frames, each model's own
    pre-processing and class mapping), not something the sweep shares between models."""
    from accel.dataset.coco import write_synthetic

    root = write_synthetic(tmp_path / "ds", 3, seed=7, size=(160, 120))
    common = ["--delegates", "xnnpack", "--threads", "1", "--kernels", "numpy", "--dataset", str(root),
              "--seconds", "0", "--warmup", "0", "--power-meter", "none"]
    sweep = _config(["--model", str(FLOAT), "--model", str(INT8), *common], tmp_path)
    doc, _ = compare(sweep, isolate=False, result_path=tmp_path / "sweep" / "r.json")
    together = {v["model"]: v["accuracy"] for v in doc["variants"]}
    assert set(together) == {FLOAT.name, INT8.name}
    for model in (FLOAT, INT8):
        alone_doc, _ = compare(_config(["--model", str(model), *common], tmp_path), isolate=False,
                               result_path=tmp_path / model.stem / "r.json")
        (alone,) = [v["accuracy"] for v in alone_doc["variants"]]
        for key in ("AP", "AP50", "precision", "recall"):
            assert isinstance(together[model.name][key], float)
            assert together[model.name][key] == pytest.approx(alone[key], abs=1e-12), (model.name, key)
    report = (tmp_path / "sweep" / "r.md").read_text()
    lines = report.split("## Runs compared")[0].splitlines()
    head, *rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if ln.startswith("| ")]
    for row in rows:  # the models table shows each model's own figures
        acc = together[row[0]]
        for key in ("AP", "AP50", "precision", "recall"):
            assert row[head.index(key)] == f"{100 * acc[key]:.1f}", (row[0], key)


def test_time_left_is_the_finished_jobs_mean_times_the_jobs_left() -> None:
    from accel.compare.runs import time_left

    assert time_left([], 4) is None
    assert time_left([10.0, 20.0], 3) == pytest.approx(45.0)  # (10 + 20) / 2 x 3
    assert time_left([7.5], 1) == pytest.approx(7.5)


def test_the_progress_line_says_model_i_of_n_variant_j_of_m_and_time_left() -> None:
    from accel.cli.main import progress_line

    one = {"variant": "xnnpack threads=2", "kernels": "numpy", "execution": "serial", "index": 1, "total": 3,
           "model": "a.tflite", "model_index": 0, "models": 1, "variant_index": 1, "variants": 3, "left_s": None}
    assert progress_line("start", one) == "[2/3] xnnpack threads=2 + numpy, serial"
    sweep = {**one, "index": 4, "total": 6, "model": "b.tflite", "model_index": 1, "models": 2,
             "variant_index": 1, "variants": 3, "left_s": 185.4}
    assert progress_line("start", sweep) == ("[5/6] model 2 of 2 b.tflite, variant 2 of 3: xnnpack threads=2 + "
                                             "numpy, serial (3 min 05 s left)")
    assert progress_line("start", {**sweep, "left_s": 3725.0}).endswith("(1 h 02 min left)")
    assert progress_line("start", {**sweep, "left_s": 44.6}).endswith("(45 s left)")



def test_a_classifier_in_a_detection_dataset_sweep_says_why_it_has_no_accuracy(
        tmp_path: Path, tiny_classifier: tuple[Path, object, object]) -> None:
    from accel.dataset.coco import write_synthetic

    root = write_synthetic(tmp_path / "ds", 2, seed=3, size=(96, 72))
    cfg = _config(["--model", str(tiny_classifier[0]), "--model", str(FLOAT), "--delegates", "xnnpack", "--threads",
                   "1", "--kernels", "numpy", "--dataset", str(root), "--seconds", "0", "--warmup", "0",
                   "--power-meter", "none"], tmp_path)
    doc, _ = compare(cfg, isolate=False, result_path=tmp_path / "r.json")
    by = {v["model"]: v for v in doc["variants"]}
    assert [v["status"] for v in doc["variants"]] == ["ok", "ok"]  # the classifier ran; the sweep went on
    assert "accuracy" not in by[tiny_classifier[0].name] and isinstance(by[FLOAT.name]["accuracy"]["AP"], float)
    classifier, detector = doc["models"]
    assert "a classifier gives classes without boxes" in classifier["accuracy_na"] and "accuracy_na" not in detector
    rows = {ln.split("|")[1].strip(): ln for ln in (tmp_path / "r.md").read_text().split("## Runs compared")[0]
            .splitlines() if ln.startswith("| ")}
    assert "accuracy n/a: a classifier gives classes without boxes" in rows[tiny_classifier[0].name]
    assert "| n/a | n/a | n/a | n/a |" in rows[tiny_classifier[0].name]
    cells = [c.strip() for c in rows[FLOAT.name].strip("|").split("|")]
    assert cells[4:8] == [f"{100 * by[FLOAT.name]['accuracy'][k]:.1f}" for k in ("AP", "AP50", "precision", "recall")]


def test_each_model_is_resized_and_ranged_by_its_own_table(tmp_path: Path,
                                                          tiny_classifier: tuple[Path, object, object]) -> None:
    """[[models]] keys reach that model's jobs: its input_range and resize_filter, not the first model's; a
    kernel set that cannot compute a model's filter is that model's record, with why, and the rest run."""
    cls = tiny_classifier[0]  # float32 input: the range applies (the detectors take raw uint8 pixels)
    text = (f'[[models]]\npath = "{INT8}"\nresize_filter = "area"\n'
            f'[[models]]\npath = "{cls}"\nresize_filter = "antialias"\ninput_range = "0,1"\n')
    cfg = _config(["--delegates", "xnnpack", "--threads", "1", "--kernels", "numpy,opencv", "--frames", "2",
                   "--seconds", "0", "--warmup", "0", "--power-meter", "none"], tmp_path, text)
    plan = build_plan(cfg)
    assert [(m.settings.resize_filter, m.settings.input_range) for m in plan.models] == [
        ("area", "auto"), ("antialias", "0,1")]
    assert [(j.model.path.name, j.kernels) for j in plan.jobs] == [
        (INT8.name, "numpy"), (INT8.name, "opencv"), (cls.name, "numpy")]  # opencv has no antialias
    (refused,) = [r for r in plan.skipped if r.model]
    assert (refused.model, refused.kernels, refused.status.value) == (cls.name, "opencv", "unavailable")
    assert refused.error == (f"{cls.name}: [model] resize_filter = antialias, and kernel set 'opencv' resizes "
                             "with bilinear or area only; numpy, opencl computes antialias")
    doc, _ = compare(cfg, isolate=False, result_path=tmp_path / "r.json")
    ran = {(v["model"], v["kernels"]): v for v in doc["variants"] if v["status"] == "ok"}
    assert {k: v["input"]["resize_filter"] for k, v in ran.items()} == {
        (INT8.name, "numpy"): "area", (INT8.name, "opencv"): "area", (cls.name, "numpy"): "antialias"}
    assert ran[cls.name, "numpy"]["input"]["norm_range"] == [0.0, 1.0]  # the second model's own range
    assert ran[cls.name, "numpy"]["input"]["norm_range_from"] == "[model] input_range = 0,1"
    assert any(v["status"] == "unavailable" and v.get("model") == cls.name for v in doc["variants"])
