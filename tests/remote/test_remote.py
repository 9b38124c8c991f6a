"""compare --on / --hosts against real OpenSSH servers on 127.0.0.1 (tests/remote/loopback.py), through the
command line as a user runs it: the merged result, and each fault the issue names."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback import Fleet, free_port, keygen

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--delegates", "xnnpack", "--threads", "1", "--frames", "10", "--warmup", "2"]


def accel(fleet: Fleet, out: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACCEL_OUTPUT_DIR": str(out), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return subprocess.run([sys.executable, "-m", "accel", "compare", "--ssh-config", str(fleet.ssh_config), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def start(fleet: Fleet, out: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ACCEL_OUTPUT_DIR": str(out), "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return subprocess.Popen([sys.executable, "-m", "accel", "compare", "--ssh-config", str(fleet.ssh_config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def run_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def run_folders(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if (p / "boards.json").is_file()] if out.is_dir() else []


def state(out: Path) -> dict[str, dict]:
    doc = json.loads((run_folder(out) / "boards.json").read_text())
    return {b["board"]["name"]: b["outcome"] for b in doc["boards"]}


def runs_on(board_cache: Path) -> list[Path]:
    runs = board_cache / "accel" / "remote" / "runs"
    return sorted(runs.iterdir()) if runs.is_dir() else []


def wait_for(check, seconds: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def abandoned_run(fleet: Fleet, out: Path, name: str, *args: str) -> Path:
    """Start a run on board ``name``, SIGKILL the client once the board runs it (the laptop gone: nothing of
    it can say goodbye); the board's run folder."""
    before = runs_on(fleet.boards[name].cache)
    client = start(fleet, out, "--on", name, *args)
    try:
        wait_for(lambda: (run_folders(out) and state(out).get(name, {}).get("status") == "running"))
        client.kill()
        client.wait(timeout=30)
    finally:
        client.kill()
    (run,) = [r for r in runs_on(fleet.boards[name].cache) if r not in before]
    return run


def test_two_boards_one_merged_result(fleet: Fleet, tmp_path: Path) -> None:
    done = accel(fleet, tmp_path, "--on", "board1", "--on", "board2", *FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = run_folder(tmp_path)
    outcomes = state(tmp_path)
    assert {n: o["status"] for n, o in outcomes.items()} == {"board1": "ok", "board2": "ok"}
    for name in ("board1", "board2"):
        pulled = json.loads((folder / "boards" / name / "result.json").read_text())
        assert pulled["remote"]["board"] == name
        (remote_run,) = runs_on(fleet.boards[name].cache)  # the board's own record, as it wrote it
        there = json.loads((remote_run / "out" / "result.json").read_text())
        assert {k: v for k, v in pulled.items() if k != "remote"} == there
        assert [v["status"] for v in there["variants"]] == ["ok"]
    report = (folder / "report.md").read_text()
    assert "| board1 | ok |" in report and "| board2 | ok |" in report
    assert "board1: " in report and "board2: " in report  # the runs compared are named by board
    assert "runs compared" in done.stdout and "board1" in done.stdout and "board2" in done.stdout
    assert (folder / "report.html").is_file() and (folder / "report.csv").is_file()


def test_an_inventory_with_a_limit_a_dead_board_and_the_model_sent_once(fleet: Fleet, tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"[pis]\nboard1\nboard2\ndeadboard ansible_host=127.0.0.1 ansible_port={dead}\n")
    cache = fleet.boards["board1"].cache / "accel" / "remote" / "cache"
    had = cache.is_dir() and any((p / ".done").is_file() for p in cache.iterdir())
    done = accel(fleet, tmp_path / "out", "--hosts", str(inventory), "--limit", "pis:!board2", *FAST)
    assert done.returncode == 1, done.stdout + done.stderr  # a board unreachable: exit 1, the other finished
    outcomes = state(tmp_path / "out")
    assert list(outcomes) == ["board1", "deadboard"]
    assert outcomes["board1"]["status"] == "ok" and outcomes["deadboard"]["status"] == "unreachable"
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("[deadboard] unreachable")]
    assert len(lines) == 1 and "Connect call failed" in lines[0]
    entries = [p for p in cache.iterdir() if (p / ".done").is_file()]  # kept by content: one entry, as sent
    assert len(entries) == 1
    assert (entries[0] / "default_detector.tflite").read_bytes() == (
        ROOT / "accel/data/default_detector.tflite").read_bytes()
    assert ("[board1] sent default_detector.tflite" in done.stdout) is not had  # sent only if it was not there


def test_unknown_host_key_refused_then_accepted_and_a_hostile_model_name(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.add("stranger", trusted=False)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", f"{board.host_key}.pub"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    done = accel(fleet, tmp_path / "a", "--on", "stranger", *FAST)
    assert done.returncode == 1 and f"is not known ({fingerprint})" in done.stdout, done.stdout
    assert runs_on(board.cache) == []
    hostile = tmp_path / "models" / "a b;$(touch x).tflite"
    hostile.parent.mkdir()
    shutil.copy(ROOT / "accel/data/default_detector.tflite", hostile)
    shutil.copy(ROOT / "accel/data/labels.txt", hostile.parent / "labels.txt")
    before = fleet.known_hosts.read_text()
    accepted = accel(fleet, tmp_path / "b", "--on", "stranger", "--accept-new-host-keys", "--model", str(hostile),
                     *FAST)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    added = fleet.known_hosts.read_text()[len(before):].split()
    assert added[0] == f"[127.0.0.1]:{board.port}" and added[2] == Path(f"{board.host_key}.pub").read_text().split()[1]
    pulled = json.loads((run_folder(tmp_path / "b") / "boards" / "stranger" / "result.json").read_text())
    assert Path(pulled["model"]["path"]).name == hostile.name  # the name reached the board as a name
    assert [v["status"] for v in pulled["variants"]] == ["ok"]
    made = list(board.root.rglob("x")) + [p for p in (Path.home() / "x", ROOT / "x") if p.exists()]
    assert made == []


def test_changed_host_key_is_refused_before_anything_runs(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.add("rekeyed")
    board.host_key.unlink()
    Path(f"{board.host_key}.pub").unlink()
    board.kill()
    keygen(board.host_key)  # the board "reinstalled": a new host key, known_hosts still holds the old one
    board.start()
    done = accel(fleet, tmp_path, "--on", "rekeyed", *FAST)
    assert done.returncode == 1
    assert "the host key of 127.0.0.1 has CHANGED" in done.stdout and "SHA256:" in done.stdout
    assert state(tmp_path)["rekeyed"]["status"] == "refused"
    assert runs_on(board.cache) == [] and not (board.cache / "accel" / "remote" / "cache").exists()
    refused_with_flag = accel(fleet, tmp_path / "b", "--on", "rekeyed", "--accept-new-host-keys", *FAST)
    assert refused_with_flag.returncode == 1 and "CHANGED" in refused_with_flag.stdout  # accept-new: new only


def test_authentication_failure_is_one_line(fleet: Fleet, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    keygen(other)
    conf = tmp_path / "ssh_config"
    conf.write_text(fleet.ssh_config.read_text().replace(str(fleet.client_key), str(other)))
    done = subprocess.run([sys.executable, "-m", "accel", "compare", "--ssh-config", str(conf), "--on", "board1",
                           *FAST], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "ACCEL_OUTPUT_DIR": str(tmp_path / "out")})
    assert done.returncode == 1
    assert state(tmp_path / "out")["board1"]["status"] == "refused"
    assert "authentication as" in done.stdout and "failed: no key was accepted" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_board_without_accel_says_so_and_install_fixes_it(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.add("bare", python=None)  # only the python3 its login shell finds, without accel (a venv has it)
    done = accel(fleet, tmp_path / "a", "--on", "bare", *FAST)
    assert done.returncode == 1
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("[bare] refused")]
    assert "accel is not installed for" in line and "--install" in line
    assert not board.venv_python.exists()
    installed = accel(fleet, tmp_path / "b", "--on", "bare", "--install", *FAST, timeout=600)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert "installing this accel there" in installed.stdout
    venv = board.venv_python.parent.parent
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    from accel.remote.board import code_digest

    there = subprocess.run([str(board.venv_python), "-c", "from accel.remote.board import code_digest as d; "
                            "print(d())"], capture_output=True, text=True, cwd=tmp_path)
    assert there.stdout.strip() == code_digest()  # this very accel, from the wheel built here
    assert state(tmp_path / "b")["bare"]["status"] == "ok"

def test_sshd_killed_mid_run_the_client_reconnects_and_the_full_result_arrives(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.add("flaky")
    client = start(fleet, tmp_path, "--on", "flaky", "--delegates", "xnnpack", "--threads", "1,2", "--frames", "1500",
                   "--warmup", "2")
    try:
        wait_for(lambda: (run_folders(tmp_path) and state(tmp_path).get("flaky", {}).get("status") == "running"))
        (run,) = runs_on(board.cache)
        board.kill()  # the link drops; the run was started in its own session and goes on
        time.sleep(2)
        assert not (run / "rc").exists(), "the run finished before the link was cut; measure more frames"
        board.start()
        out, err = client.communicate(timeout=300)
    finally:
        client.kill()
    assert client.returncode == 0, out + err
    assert "connection lost" in out and "reconnected; following" in out
    pulled = json.loads((run_folder(tmp_path) / "boards" / "flaky" / "result.json").read_text())
    assert [v["status"] for v in pulled["variants"]] == ["ok", "ok"] and pulled["complete"] is True


def test_ctrl_c_on_the_client_stops_the_board_and_pulls_its_partial_result(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.boards["board1"]
    before = runs_on(board.cache)
    client = start(fleet, tmp_path, "--on", "board1", "--delegates", "xnnpack", "--threads", "1,2",
                   "--frames", "100000", "--seconds", "120", "--warmup", "2")
    try:
        wait_for(lambda: any((r / "log").is_file() and "[1/2]" in (r / "log").read_text()
                             for r in runs_on(board.cache) if r not in before))
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=120)
    finally:
        client.kill()
    assert client.returncode == 130, out + err
    assert state(tmp_path)["board1"]["status"] == "interrupted"
    pulled = json.loads((run_folder(tmp_path) / "boards" / "board1" / "result.json").read_text())
    assert [v["status"] for v in pulled["variants"]] == ["interrupted"] and pulled["complete"] is False
    (run,) = [r for r in runs_on(board.cache) if r not in before]
    assert (run / "rc").read_text().strip() == "130"  # the board's run stopped as Ctrl-C stops a local one
    there = json.loads((run / "out" / "result.json").read_text())
    assert {k: v for k, v in pulled.items() if k != "remote"} == there  # all it saved came back
    assert "accel: interrupted by SIGINT; saved 1 variant record" in (run / "log").read_text()


def test_watch_on_a_board_forwards_its_page_and_ctrl_c_leaves_nothing_running(fleet: Fleet, tmp_path: Path) -> None:
    import urllib.request

    from loopback import free_port
    from PIL import Image

    board = fleet.boards["board2"]
    port = free_port()
    picture = tmp_path / "scene.png"  # a picture here, sent to the board: its stats name the board's copy
    Image.new("RGB", (320, 240), (90, 140, 60)).save(picture)
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    client = subprocess.Popen([sys.executable, "-m", "accel", "watch", "--ssh-config", str(fleet.ssh_config),
                               "--on", "board2", "--port", str(port), "--delegates", "xnnpack", "--threads", "1",
                               "--source", f"image:{picture}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        url = None
        for line in client.stdout:  # type: ignore[union-attr]
            if "serving http://127.0.0.1:" in line:
                url = line.split("serving ", 1)[1].split()[0]
                break
        assert url == f"http://127.0.0.1:{port}/", url
        (run,) = [r for r in runs_on(board.cache) if r.name.startswith("watch-")]
        remote_port = int((run / "log").read_text().split("serving http://127.0.0.1:")[1].split("/")[0])
        assert remote_port != port  # the board's own server, reached through the forward

        def stats() -> dict:
            with urllib.request.urlopen(url + "stats.json", timeout=10) as r:
                return json.loads(r.read())

        wait_for(lambda: stats().get("status") == "running" and stats().get("fps"), 120)
        there = Path(stats()["ready"]["source"]["target"])
        assert there.name == picture.name and there.parent.parent == board.cache / "accel" / "remote" / "cache"
        with urllib.request.urlopen(url + "snapshot.jpg", timeout=10) as r:
            assert r.read(3) == b"\xff\xd8\xff"  # a JPEG from the board's stream
        with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as r:  # the stream itself, through the forward
            assert r.headers.get_content_type() == "multipart/x-mixed-replace"
            assert b"\xff\xd8\xff" in r.read(64 * 1024)
        group = (run / "pid").read_text().strip()  # the board's watch: its process group
        assert subprocess.run(["pgrep", "-g", group], capture_output=True).returncode == 0
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=60)
    finally:
        client.kill()
    assert client.returncode == 0, out + err
    assert not run.exists()  # its run folder went with it
    left = subprocess.run(["pgrep", "-g", group], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # nothing of it still running there


def test_collect_fetches_a_run_the_laptop_left(fleet: Fleet, tmp_path: Path) -> None:
    run = abandoned_run(fleet, tmp_path, "board2", "--delegates", "xnnpack", "--threads", "1", "--frames", "1500",
                        "--warmup", "2")
    folder = run_folder(tmp_path)
    assert not (folder / "boards" / "board2" / "result.json").exists()
    done = subprocess.run([sys.executable, "-m", "accel", "collect", str(folder)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"})
    assert done.returncode == 0, done.stdout + done.stderr
    pulled = json.loads((folder / "boards" / "board2" / "result.json").read_text())
    there = json.loads((run / "out" / "result.json").read_text())
    assert {k: v for k, v in pulled.items() if k != "remote"} == there and there["complete"] is True
    assert state(tmp_path)["board2"]["status"] == "ok" and (folder / "report.md").is_file()


def test_a_full_board_disk_is_one_line_and_leaves_no_half_entry(fleet: Fleet, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"a small filesystem cannot be mounted here ({mounted.stderr.decode().strip()})")
    try:
        inventory = tmp_path / "hosts"
        python = fleet.boards["board1"].venv_python  # its accel, elsewhere than the (full) accel folder
        inventory.write_text(f"board1 accel_dir={small}/accel ansible_python_interpreter={python}\n")
        done = accel(fleet, tmp_path / "out", "--hosts", str(inventory), *FAST)  # 256 KiB: the 0.5 MB model
        assert done.returncode == 1, done.stdout + done.stderr
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("[board1] failed")]
        assert len(lines) == 1, done.stdout
        line = lines[0]
        assert "cannot write default_detector.tflite into its cache" in line and "free some space" in line
        assert "Traceback" not in done.stdout + done.stderr
        cache = small / "accel" / "cache"
        assert not cache.exists() or list(cache.iterdir()) == []  # the half-sent entry was removed
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_dry_run_one_board_at_a_time_prints_each_boards_plan_and_leaves_no_run(fleet: Fleet, tmp_path: Path) -> None:
    before = {n: runs_on(fleet.boards[n].cache) for n in ("board1", "board2")}
    done = accel(fleet, tmp_path, "--on", "board1", "--on", "board2", "--one-at-a-time", "--dry-run", *FAST[2:],
                 "--delegates", "xnnpack,cpu-reference")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    jobs = [ln for ln in lines if ln.startswith("[board1] ") and " threads=1" in ln]
    assert "xnnpack" in jobs[0] and "cpu-reference" in jobs[-1], jobs  # the order asked for, there too
    for name in ("board1", "board2"):
        assert any(ln.startswith(f"[{name}] ") and "xnnpack threads=1" in ln for ln in lines), done.stdout
        assert runs_on(fleet.boards[name].cache) == before[name]  # a dry run leaves no run folder
    # one at a time: the second board is contacted only once the first has its outcome
    assert lines.index("[board1] ok") < lines.index("[board2] connecting")


def test_a_dataset_goes_to_the_board_and_each_variant_is_scored_there(fleet: Fleet, tmp_path: Path) -> None:
    data = tmp_path / "scenes"
    subprocess.run([sys.executable, "-m", "accel", "dataset", "synth", "--out", str(data), "--frames", "4",
                    "--size", "320x240"], check=True, capture_output=True, cwd=ROOT)
    local = subprocess.run([sys.executable, "-m", "accel", "compare", "--dataset", str(data), *FAST,
                            "--json", str(tmp_path / "here" / "result.json")], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert local.returncode == 0, local.stdout + local.stderr
    done = accel(fleet, tmp_path / "out", "--on", "board1", "--dataset", str(data), *FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    pulled = json.loads((run_folder(tmp_path / "out") / "boards" / "board1" / "result.json").read_text())
    root = Path(pulled["dataset"]["root"])
    assert root.name == data.name and root.parent.parent == fleet.boards["board1"].cache / "accel/remote/cache"
    here = json.loads((tmp_path / "here" / "result.json").read_text())
    # the same images and the same model: the board's AP is the one a run here gives
    assert pulled["variants"][0]["accuracy"]["AP"] == pytest.approx(here["variants"][0]["accuracy"]["AP"], abs=1e-9)
    assert pulled["variants"][0]["accuracy"]["recall"] == here["variants"][0]["accuracy"]["recall"]


def test_a_changed_key_in_the_default_known_hosts_is_refused_even_with_accept_new(fleet: Fleet, tmp_path: Path) -> None:
    board = fleet.boards["board1"]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    other = tmp_path / "other_host_key"
    keygen(other)  # what an impostor would present is not what ~/.ssh/known_hosts holds for the board
    old = Path(f"{other}.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{board.port} {old[0]} {old[1]}\n")
    conf = tmp_path / "ssh_config"  # no UserKnownHostsFile: OpenSSH's defaults apply, as in most set-ups
    conf.write_text("\n".join(ln for ln in fleet.ssh_config.read_text().splitlines()
                              if "UserKnownHostsFile" not in ln) + "\n")
    done = subprocess.run([sys.executable, "-m", "accel", "compare", "--ssh-config", str(conf), "--on", "board1",
                           "--accept-new-host-keys", *FAST], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "HOME": str(home), "ACCEL_OUTPUT_DIR": str(tmp_path / "out")})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "has CHANGED" in done.stdout and f"ssh-keygen -R '[127.0.0.1]:{board.port}'" in done.stdout
    assert (home / ".ssh" / "known_hosts").read_text().count("\n") == 1  # nothing appended


def test_ctrl_c_in_collect_stops_following_and_leaves_the_boards_run_going(fleet: Fleet, tmp_path: Path) -> None:
    run = abandoned_run(fleet, tmp_path, "board1", "--delegates", "xnnpack", "--threads", "1", "--frames", "100000",
                        "--seconds", "60", "--warmup", "2")
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    collect = subprocess.Popen([sys.executable, "-m", "accel", "collect", str(run_folder(tmp_path))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        for line in collect.stdout:  # type: ignore[union-attr]
            if "following (Ctrl-C: stop following" in line:  # its signal handlers are in place
                break
        collect.send_signal(signal.SIGINT)
        out, err = collect.communicate(timeout=60)
    finally:
        collect.kill()
    assert collect.returncode == 130, out + err
    assert not (run / "rc").exists()  # the board's run goes on
    assert "still running there" in state(tmp_path)["board1"]["why"]
    group = (run / "pid").read_text().strip()
    subprocess.run(["kill", "-INT", "--", f"-{group}"], check=False)  # done with it: stop it as Ctrl-C would
    wait_for(lambda: (run / "rc").exists(), 60)
