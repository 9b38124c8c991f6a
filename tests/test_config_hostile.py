"""Hostile config files and values (issue 15 parts 7, 9, 10, 11): each is one line that names the file and line,
or the flag or environment variable that set it, and says what is allowed; none runs into a timeout."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from accel.cli.main import main
from accel.compare.instruments import Instruments
from accel.core.errors import ConfigError
from accel.plan.config import Config, load_config
from accel.plan.job import check_backends as backends

CORES = os.cpu_count() or 1


def _write(tmp: Path, data: bytes | str) -> Path:
    path = tmp / "accel.toml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _error(tmp: Path, data: bytes | str, **overrides: object) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp, data), overrides, env={})
    message = str(err.value)
    assert "\n" not in message
    return message


# --- part 7: the file itself -------------------------------------------------------------------------------

def test_a_latin1_byte_is_named_with_its_line_and_column(tmp_path: Path) -> None:
    message = _error(tmp_path, b"[pipeline]\n# caf\xe9 au lait\nframes = 3\n")
    assert message == ("accel.toml: byte 0xe9 at line 2, column 6 is not UTF-8 (TOML files are UTF-8 text); "
                       "save the file as UTF-8")


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "\ufeff[pipeline]\nframes = 3\n"), env={})
    assert config.pipeline.frames == 3


@pytest.mark.parametrize(("text", "says"), [
    pytest.param("a = " + "[" * 2000 + "]" * 2000 + "\n", "nested hundreds of levels deep", id="arrays-2000"),
    pytest.param("a = " + "{b = " * 2000 + "1" + "}" * 2000 + "\n", "nested hundreds of levels deep",
                 id="inline-tables-2000"),
    pytest.param("[pipeline]\nx = " + "{y = " * 12 + "1" + "}" * 12 + "\n",
                 "accel.toml: pipeline.x.y.y.y.y.y.y.y: nested more than 8 levels deep", id="inline-tables-12"),
])
def test_deep_nesting_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    assert says in _error(tmp_path, text)


@pytest.mark.parametrize(("where", "says"), [
    pytest.param("/dev/zero", "config /dev/zero: expected a TOML file, found a character device", id="device"),
    pytest.param("/", "config /: expected a TOML file, found a folder", id="folder"),
])
def test_a_config_that_is_not_a_file(where: str, says: str) -> None:
    if not os.path.exists(where):
        pytest.skip(f"{where} does not exist here")
    with pytest.raises(ConfigError, match=says):
        load_config(where, env={})


def test_a_config_from_a_pipe_is_read_once_and_still_names_lines(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "c.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("[delegates.xnnpack]\nthreads = [0]\n",), daemon=True)
    writer.start()
    config = load_config(fifo, env={})
    writer.join(10)
    with pytest.raises(ConfigError, match=r"^c.fifo: delegates.xnnpack.threads \(line 2\): expected a list of "):
        backends(config)


# --- part 9: square brackets survive in error lines ----------------------------------------------------------

@pytest.mark.parametrize(("text", "args", "says"), [
    pytest.param("", ["--delegates", ""], "set enabled = true in a [delegates.NAME] table", id="no-delegate"),
    pytest.param("pipeline = 3\n", [], "accel.toml: pipeline (line 1): expected a table [pipeline]", id="not-a-table"),
    pytest.param("[power]\nmeter = \"[x]\"\n", [], "power.meter (line 2): expected auto, none or a meter name, "
                 "got '[x]'", id="bracketed-value"),
])
def test_brackets_survive_in_error_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                         args: list[str], says: str) -> None:
    path = _write(tmp_path, text)
    assert main(["compare", "--config", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert says in " ".join(err.split())  # rich may wrap a long line; the text is all there


# --- part 10: every error names its place ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "step", "says"), [
    pytest.param("[delegates.nosuch]\n", backends, "accel.toml: delegates.nosuch (line 1): unknown delegate 'nosuch'",
                 id="unknown-delegate"),
    pytest.param("[pipeline]\nkernels = [\"nosuch\"]\n", backends, "accel.toml: pipeline.kernels (line 2): unknown "
                 "kernel set", id="unknown-kernel-set"),
    pytest.param("[kernels.opencl]\nfoo = 1\n", backends,
                 "accel.toml: kernels.opencl.foo (line 2): unknown option 'foo'", id="kernel-option"),
    pytest.param("[kernels.nosuch]\n", backends,
                 "accel.toml: kernels.nosuch (line 1): no kernel set is called 'nosuch'", id="kernel-table"),
    pytest.param("[delegates.external.tpu]\nlibrary = 3\n", backends,
                 "accel.toml: delegates.external.tpu.library (line 2): expected the path", id="nested-delegate-option"),
    pytest.param("[power.command]\nfoo = 1\n", Instruments, "accel.toml: power.command.foo (line 2): unknown option "
                 "'foo'; known: command, timeout_s", id="unused-meter-option"),
    pytest.param("[power]\nmeter = \"nosuch\"\n", Instruments, "accel.toml: power.meter (line 2): unknown meter "
                 "'nosuch'", id="unknown-meter"),
    pytest.param("[power.nosuch]\nx = 1\n", Instruments, "accel.toml: power.nosuch (line 1): unknown meter 'nosuch'",
                 id="unknown-meter-table"),
    pytest.param("[power.hwmon]\nname = [\"x\"]\n", Instruments, "accel.toml: power.hwmon.name (line 2): expected "
                 "a string, got ['x']", id="meter-option-type"),
    pytest.param("[power]\nmeter = \"command\"\n[power.command]\ntimeout_s = -1\ncommand = \"echo 1\"\n",
                 Instruments, "accel.toml: power.command.timeout_s (line 4): expected seconds > 0", id="meter-value"),
    # part 11: what used to fail only when the variant ran
    pytest.param("[delegates.xnnpack]\nthreads = [100000]\n", backends,
                 "accel.toml: delegates.xnnpack.threads (line 2): "
                 f"expected at most {4 * CORES} threads (4 per core, {CORES} cores here), got 100000", id="threads"),
    pytest.param("[delegates.external]\nlibrary = \"/nonexistent/libx.so\"\n", backends,
                 "accel.toml: delegates.external.library (line 2): /nonexistent/libx.so not found", id="flat-external"),
])
def test_plugin_option_errors_name_file_and_line(tmp_path: Path, text: str, step: Callable[[Config], object],
                                                 says: str) -> None:
    """What the delegates, kernel sets and meters check (in ``backends`` and ``Instruments``) names its place too."""
    config = load_config(_write(tmp_path, text), env={})
    with pytest.raises(ConfigError) as err:
        step(config)
    assert says in str(err.value)


@pytest.mark.parametrize(("args", "says"), [
    pytest.param(["--threshold", "2"], "option --threshold: expected 0..1, got 2.0", id="threshold"),
    pytest.param(["--cool-down", "-5"], "option --cool-down: expected >= 0", id="cool-down"),
    pytest.param(["--sustained", "1000h"], "option --sustained: expected >= 0 and <= 604800", id="sustained"),
    pytest.param(["--power-meter", "nosuch"], "option --power-meter: unknown meter 'nosuch'", id="power-meter"),
    pytest.param(["--delegates", "nosuch"], "option --delegates: unknown delegate 'nosuch'", id="delegates"),
    pytest.param(["--source-size", "0x0"], "option --source-size: expected 'auto', 'native' or WIDTHxHEIGHT",
                 id="source-size"),
    pytest.param(["--threads", "100000"], "option --threads: expected at most", id="threads"),
])
def test_flag_errors_name_the_flag_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         says: str) -> None:
    code = main(["compare", "--config", str(_write(tmp_path, "")), "--json", str(tmp_path / "r.json"), *args])
    assert code == 2
    assert says in " ".join(capsys.readouterr().err.split())


def test_an_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^environment ACCEL_FRAMES: expected 1..10000000"):
        load_config(_write(tmp_path, ""), env={"ACCEL_FRAMES": "9223372036854775807"})


# --- part 11: absurd values are bounded --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "says"), [
    pytest.param("[pipeline]\nframes = 9223372036854775807\n", "pipeline.frames (line 2): expected 1..10000000",
                 id="frames"),
    pytest.param("[pipeline]\nwarmup = 100000000000000000000\n", "pipeline.warmup (line 2): expected 0..1000000",
                 id="warmup"),
    pytest.param("[pipeline]\nwarmup = 1e20\n", "pipeline.warmup (line 2): expected int", id="warmup-float"),
    pytest.param("[pipeline]\nseconds = 1e308\n", "pipeline.seconds (line 2): expected 0..86400", id="seconds"),
    pytest.param("[pipeline]\nseconds = nan\n", "pipeline.seconds (line 2): expected a finite number", id="nan"),
    pytest.param("[pipeline]\nseconds = 900\n", "pipeline.seconds (line 2): 900 s of measuring cannot finish within "
                 "pipeline.timeout_s = 600 s", id="seconds-past-timeout"),
    pytest.param("[thermal]\nsustained_s = 1e9\n", "thermal.sustained_s (line 2): expected >= 0 and <= 604800",
                 id="sustained"),
    pytest.param("[pipeline]\nseed = -1\n", "pipeline.seed (line 2): expected 0..", id="negative-seed"),
    pytest.param("[decode]\nanchor_feature_maps = [100000]\n", "expected up to 16 sizes 1..4096", id="anchors"),
    pytest.param("[model]\npath = \"a\\u0000b\"\n", "model.path (line 2): expected text without NUL", id="nul"),
    pytest.param("[pipeline]\nsource = \"synthetic:100000x100000\"\n", "accel.toml: pipeline.source (line 2): "
                 "100000x100000 is 10,000,000,000 pixels, expected at most pipeline.max_pixels = 50,000,000 pixels; "
                 "raise [pipeline] max_pixels to allow it", id="synthetic-size"),
    pytest.param("[pipeline]\nsource = \" Synthetic:100000x100000\"\n", "accel.toml: pipeline.source (line 2): "
                 "100000x100000 is 10,000,000,000 pixels", id="synthetic-size-as-typed"),  # read as the source is
    pytest.param("[pipeline]\nsource_size = \"20000x20000\"\n", "pipeline.source_size (line 2): 20000x20000 is "
                 "400,000,000 pixels", id="source-size"),
])
def test_absurd_values_are_refused(tmp_path: Path, text: str, says: str) -> None:
    assert says in _error(tmp_path, text)


def test_a_raised_pixel_limit_allows_a_larger_size(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[pipeline]\nsource_size = \"20000x20000\"\nmax_pixels = 400000000\n"),
                         env={})
    assert config.pipeline.source_size == "20000x20000"


def test_a_key_that_does_not_print_is_shown_escaped(tmp_path: Path) -> None:
    """A fixed case beside the property test: the newline in the key is shown as backslash-n, by hand."""
    message = _error(tmp_path, '[pipeline]\n"a\\nb" = 1\n')
    assert message.startswith("accel.toml: pipeline.a\\nb: unknown key; known: source, ")
