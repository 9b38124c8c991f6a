"""Where a result goes: a run folder of its own, a --json target that is never a device or a folder, and a
result document that a failed write (a full disk) leaves as it last was."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from accel.core.errors import OutputError
from accel.results.document import ResultWriter, check_result_dir, check_result_file, new_run_folder


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.strftime", lambda fmt: "20250101-120000")
    n = 12
    gate = threading.Barrier(n)
    paths: list[Path] = []

    def one() -> None:
        gate.wait()
        paths.append(new_run_folder(tmp_path / "results"))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folders = sorted(p.parent.name for p in paths)
    assert len(set(folders)) == n
    assert sorted(folders) == sorted(["20250101-120000"] + [f"20250101-120000-{i}" for i in range(2, n + 1)])
    assert all(p.name == "result.json" and p.parent.is_dir() for p in paths)


def test_a_file_in_the_way_of_a_run_folder_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.strftime", lambda fmt: "20250101-120000")
    (tmp_path / "20250101-120000").write_text("not a folder")
    assert new_run_folder(tmp_path).parent.name == "20250101-120000-2"


def _kinds(tmp: Path) -> dict[str, Path]:
    os.mkfifo(tmp / "pipe")
    (tmp / "folder").mkdir()
    (tmp / "file").write_text("x")
    (tmp / "to-pipe").symlink_to(tmp / "pipe")
    (tmp / "loop").symlink_to(tmp / "loop")
    return {"pipe": tmp / "pipe", "folder": tmp / "folder", "under-a-file": tmp / "file" / "r.json",
            "symlink-to-pipe": tmp / "to-pipe", "symlink-loop": tmp / "loop"}


@pytest.mark.parametrize(("kind", "says"), [
    ("pipe", "is a named pipe, not a regular file"),
    ("folder", "is a folder; give a file path such as"),
    ("under-a-file", "which is a file, not a folder"),
    ("symlink-to-pipe", "(a symlink to"),
    ("symlink-loop", "cannot use"),
])
def test_targets_that_are_not_files_are_refused_and_left_as_they_are(tmp_path: Path, kind: str, says: str) -> None:
    target = _kinds(tmp_path)[kind]
    before = os.lstat(target).st_mode if os.path.lexists(target) else None
    with pytest.raises(OutputError, match=r"^option --json: ") as caught:
        check_result_file(target)
    assert says in str(caught.value)
    assert (os.lstat(target).st_mode if os.path.lexists(target) else None) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_node_is_refused_not_replaced(tmp_path: Path) -> None:
    node = tmp_path / "null"
    os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))  # S_IFCHR: the node of /dev/null
    with pytest.raises(OutputError, match="is a character device, not a regular file"):
        check_result_file(node)


def test_a_symlink_is_written_through_to_its_target(tmp_path: Path) -> None:
    (tmp_path / "latest.json").symlink_to(tmp_path / "runs" / "one.json")
    real = check_result_file(tmp_path / "latest.json")
    assert real == tmp_path / "runs" / "one.json"
    ResultWriter(real, {"x": 1})
    assert (tmp_path / "latest.json").is_symlink()
    assert json.loads((tmp_path / "latest.json").read_text())["x"] == 1


def test_a_new_file_in_a_folder_still_to_make_is_fine(tmp_path: Path) -> None:
    assert check_result_file(tmp_path / "a" / "b" / "r.json") == tmp_path / "a" / "b" / "r.json"
    check_result_dir(tmp_path / "results")
    assert not (tmp_path / "a").exists() and not (tmp_path / "results").exists()  # checked, not made


def test_a_full_disk_keeps_the_last_document_and_no_temp_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    writer = ResultWriter(path, {"header": True})
    writer.update({"first": 1})
    real_write = Path.write_text

    def full(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real_write(self, text[: len(text) // 2])  # part of it lands, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError) as caught:
        writer.update({"second": 2})
    message = str(caught.value)
    assert message.startswith(f"cannot write the result {path}: No space left on device; {path} keeps the result "
                              "as last written (0 variants)")
    assert "\n" not in message
    assert json.loads(path.read_text()) == {"schema": "accel.result", "schema_version": 3, "header": True,
                                            "first": 1, "variants": [], "complete": False}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_the_first_write_failing_says_nothing_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, text: str, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match="No space left on device; nothing was written"):
        ResultWriter(tmp_path / "r.json", {})
    assert list(tmp_path.iterdir()) == []
