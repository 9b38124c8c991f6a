"""``accel watch`` as a user runs it, in a subprocess: it serves on loopback only, the stream yields JPEG
frames, the figures move, a LAN bind needs its token, Ctrl-C leaves no process and no shared memory behind,
and bad input is one line with exit code 2."""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image
from shm_helpers import leaked_shm, shm_entries
from watch_helpers import MjpegReader, WatchProcess, wait_until

# The null delegate (no inference) on small synthetic scenes: the whole watch, cheap enough for a test.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHEAP = ("--port", "0", "--delegates", "null", "--source", "synthetic:320x240", "--source-fps", "15",
         "--power-meter", "none")


def _get(url: str, timeout: float = 20) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stats(url: str) -> dict[str, Any]:
    return dict(json.loads(_get(url + "stats.json")[1]))


def _listening(port: int) -> list[str]:
    """Local addresses listening on ``port``: ``ss -ltn`` as the issue asks, psutil where ss is missing."""
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
        return [line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()]
    return [c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]


def test_watch_serves_on_loopback_only_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    shm_before = shm_entries()
    watch = WatchProcess(*CHEAP, cwd=tmp_path)
    try:
        url = watch.url()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert _listening(port) == ["127.0.0.1"]
        first = wait_until(lambda: (s := _stats(url))["status"] == "running" and s["fps"] > 0 and s, timeout=60,
                           what="stats.json to show a running variant")
        assert first["variant"] == "null + opencv"
        reader = MjpegReader(port)
        try:
            for _ in range(3):
                with Image.open(io.BytesIO(reader.part())) as im:
                    assert im.format == "JPEG" and im.size == (320, 240)
        finally:
            reader.close()
        wait_until(lambda: _stats(url)["frames"] > first["frames"], what="the figures to move")
        processes = watch.processes()
        assert len(processes) == 2, processes  # accel watch and its worker
    finally:
        code, out, err = watch.interrupt() if watch.proc.poll() is None else (watch.proc.returncode, "", "")
        watch.kill()
    assert code == 0, err
    assert "Traceback" not in err and "stopping" in out
    wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes),
               what="every process of the watch to end")
    assert leaked_shm(shm_before) == set()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_terminated_or_killed_watch_leaves_no_worker(tmp_path: Path, how: str) -> None:
    """SIGTERM and an SSH hang-up stop it as Ctrl-C does; killed outright, its worker sees the connection
    close and stops by itself."""
    watch = WatchProcess(*CHEAP, cwd=tmp_path)
    try:
        url = watch.url()
        wait_until(lambda: _stats(url)["status"] == "running", timeout=60, what="the variant to run")
        processes = watch.processes()
        assert len(processes) == 2, processes
        watch.proc.send_signal(getattr(signal, how))
        code = watch.proc.wait(60)
    finally:
        watch.kill()
    assert code == (-signal.SIGKILL if how == "SIGKILL" else 0)
    wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes),
               what="the worker to end")


def test_a_lan_bind_prints_a_token_and_answers_401_without_it(tmp_path: Path) -> None:
    watch = WatchProcess(*CHEAP, "--host", "0.0.0.0", cwd=tmp_path)
    try:
        url = watch.url()
        assert "?token=" in url
        token = url.split("?token=")[1]
        port = int(url.split(":")[2].split("/")[0])
        assert any(line.startswith(f"token: {token} (generated") for line in watch.lines)
        base = f"http://127.0.0.1:{port}/"
        for path in ("", "stats.json", "snapshot.jpg", "stream.mjpg"):
            assert _get(base + path)[0] == 401, path
        assert _get(f"{base}stats.json?token={token}")[0] == 200
    finally:
        watch.interrupt()
        watch.kill()


def test_no_server_shows_the_live_panel_only(tmp_path: Path) -> None:
    """Given a terminal (rich told so by TTY_COMPATIBLE and TTY_INTERACTIVE), the panel is redrawn with the
    figures as they move; nothing is served."""
    tty = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "160", "NO_COLOR": "1"}
    watch = WatchProcess(*CHEAP, "--no-server", cwd=tmp_path, env=tty)
    try:
        def fps_shown() -> float | None:
            shown = [float(m) for m in re.findall(r"FPS\s+([0-9.]+) · \d+ frames", ANSI.sub("", "".join(watch.lines)))]
            return shown[-1] if shown and shown[-1] > 0 else None

        assert wait_until(fps_shown, timeout=60, what="the panel to show an FPS")
        assert not any(line.startswith("serving ") for line in watch.lines)
        assert "draw+encode n/a (nobody watching)" in ANSI.sub("", "".join(watch.lines))
    finally:
        code, _, err = watch.interrupt()
        watch.kill()
    assert code == 0 and "Traceback" not in err


def test_no_server_ends_when_the_variant_fails(tmp_path: Path) -> None:
    """A folder whose first picture opens (the check before starting passes) and whose second is cut short:
    the worker fails on it."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "a.png")
    whole = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 200, 30)).save(whole, "PNG")
    (folder / "b.png").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    done = subprocess.run([sys.executable, "-m", "accel", "watch", *CHEAP, "--no-server", "--source",
                           f"image:{folder}"], cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert done.returncode == 1, done
    said = " ".join(done.stdout.split())  # as one line: rich wraps it at 80 columns in a pipe
    assert re.search(r"accel watch: null \+ opencv: failed: .*/b\.png: cannot decode the picture", said), said
    assert "Traceback" not in done.stderr


def test_two_signals_in_a_row_still_stop_cleanly(tmp_path: Path) -> None:
    """SIGTERM, then SIGHUP at once, then Ctrl-C while it stops: the first stops the watch, the others are
    ignored (one handler, the command line's), and the clean-up runs to the end: exit code 0."""
    watch = WatchProcess(*CHEAP, cwd=tmp_path)
    try:
        url = watch.url()
        wait_until(lambda: _stats(url)["status"] == "running", timeout=60, what="the variant to run")
        processes = watch.processes()
        watch.proc.send_signal(signal.SIGTERM)
        watch.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: watch.proc.poll() is not None or any("stopping" in line for line in watch.lines),
                   what="the watch to say it stops")
        watch.proc.send_signal(signal.SIGINT)  # a no-op once it has exited
        code = watch.proc.wait(60)
        err = watch.proc.stderr.read()  # type: ignore[union-attr]
    finally:
        watch.kill()
    assert code == 0, err
    assert err == "", err
    wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes),
               what="every process of the watch to end")


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("args,message", [
    (("--variant", "nosuch"), "option --variant: 'nosuch' is not a configured variant that can run here; choose "
                              "one of: 'null + opencv'"),
    (("--stream-fps", "0"), "option --stream-fps: expected frames per second"),
    (("--stream-size", "big"), "option --stream-size: expected auto, native or WIDTHxHEIGHT"),
    (("--source", "webcam"), "unknown source kind 'webcam'"),
    (("--source", "image:/nonexistent"), "image source /nonexistent: no such file or folder"),
    (("--port", "BUSY"), "cannot listen on 127.0.0.1:"),
    (("--stream-encoder", "picamera2"), "option --stream-encoder: picamera2 encodes the Raspberry Pi camera's main "
                                        "stream and needs --source picamera2 (the source is synthetic)"),
], ids=["unknown-variant", "stream-fps", "stream-size", "source", "missing-picture", "port-in-use",
        "picamera2-encoder"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    busy = _busy_port()
    try:
        args = tuple(str(busy.getsockname()[1]) if a == "BUSY" else a for a in args)
        base = [a for a in CHEAP if a not in ("--port", "0")] if "--port" in args else list(CHEAP)
        done = subprocess.run([sys.executable, "-m", "accel", "watch", *base, *args], cwd=tmp_path, text=True,
                              capture_output=True, timeout=120)
    finally:
        busy.close()
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accel: error: ") and message in lines[0], done.stderr


@pytest.mark.parametrize("args,toml", [
    (("--power-meter", "nosuch"), ""),
    ((), '[power]\nmeter = "none"\n\n[power.hwmon]\nnme = "ina219"\n'),  # a typo in a table not in use
    (("--source", "image:/nonexistent"), ""),
    (("--source", "image:."), ""),  # a folder without a picture
], ids=["unknown-meter", "meter-table-typo", "missing-picture", "no-picture"])
def test_bad_input_is_refused_as_compare_refuses_it(tmp_path: Path, args: tuple[str, ...], toml: str) -> None:
    """The same line as ``accel compare`` gives for it (naming the flag, or accel.toml's line), exit code 2."""
    if toml:
        (tmp_path / "accel.toml").write_text(toml)
    base = [a for a in CHEAP if a not in ("--port", "0") and not (toml and a in ("--power-meter", "none"))]
    said = {}
    for command, own in (("compare", ["--frames", "2"]), ("watch", ["--port", "0"])):
        done = subprocess.run([sys.executable, "-m", "accel", command, *base, *own, *args], cwd=tmp_path, text=True,
                              capture_output=True, timeout=120)
        assert done.returncode == 2, done
        said[command] = done.stderr.strip().splitlines()
    assert len(said["watch"]) == 1 and said["watch"] == said["compare"], said
    if toml:
        assert said["watch"][0].startswith("accel: error: accel.toml: power.hwmon.nme (line 5): unknown option")
