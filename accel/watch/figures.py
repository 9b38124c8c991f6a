"""The live figures as (name, text) rows: what the page's panel and the terminal panel both show, made from
``/stats.json``'s document in this one place. A figure that was not measured says "n/a" and why."""

from __future__ import annotations

from typing import Any

__all__ = ["rows"]

_STAGES = (("capture", "capture"), ("preprocess", "pre"), ("inference", "infer"), ("postprocess", "post"),
           ("encode", "draw+encode"))


def _num(value: Any, fmt: str = ".1f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _spread(ms: dict[str, Any] | None, why: str) -> str:
    if not ms:
        return f"n/a ({why})"
    return f"p50 {ms['p50']:.1f} · p90 {ms['p90']:.1f} · mean {ms['mean']:.1f}"


def _status(s: dict[str, Any]) -> str:
    text = f"{s.get('variant') or 'none'}: {s.get('status')} for {_num(s.get('for_s'))} s"
    return text + (f": {s['error']}" if s.get("error") else "")


def _stages(s: dict[str, Any]) -> str:
    stage_ms = s.get("stage_ms") or {}
    parts = [f"{short} {stage_ms[name]:.2f}" for name, short in _STAGES if name in stage_ms]
    if "encode" not in stage_ms:
        parts.append("draw+encode n/a (nobody watching)")
    return " · ".join(parts) if stage_ms else "n/a (no frame finished yet)"


def _drops(s: dict[str, Any]) -> str:
    drops = s.get("drops")
    if not drops:
        return "n/a (this source does not count the frames it delivers)"
    return (f"{drops['dropped']} dropped (the detector was busy), {drops['skipped']} skipped (the source was late), "
            f"of {drops['delivered']} delivered")


def _cpu(system: dict[str, Any]) -> tuple[str, str]:
    cores = system.get("cpu_cores")
    per_core = " · ".join(f"{c:.0f}" for c in cores) if cores else "n/a (not exposed)"
    worker, server = (_num(system.get(f"{who}_cpu"), ".0f") for who in ("worker", "server"))
    worker_mb, server_mb = (_num(system.get(f"{who}_rss_mb"), ".0f") for who in ("worker", "server"))
    return per_core, (f"detector {worker} · this server {server} (100 = one core); RSS detector {worker_mb} MB, "
                      f"server {server_mb} MB")


def _power(power: dict[str, Any]) -> str:
    if power.get("watts") is None:
        return f"n/a ({power.get('why') or 'no meter'})"
    label = f"{power['meter']}{', an estimate' if power.get('estimated') else ''}"
    per_frame = f" · {power['j_per_frame']:.3f} J/frame" if power.get("j_per_frame") is not None else ""
    return f"{power['watts']:.2f} W{per_frame} ({label})"


def _thermal(system: dict[str, Any]) -> str:
    temp = system.get("temp_c")
    flags = system.get("throttled_flags")
    text = f"{temp:.1f} °C" if temp is not None else "n/a (no sensor)"
    if system.get("throttled") is None:
        return text + " · throttling n/a (vcgencmd: Raspberry Pi OS only)"
    return text + " · " + (", ".join(flags) if flags else "not throttled")


def _detections(s: dict[str, Any]) -> str:
    d = s.get("detections") or {}
    if d.get("last") is None:
        return "n/a (no frame finished yet)"
    top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in d.get("top") or [])
    return f"{d['last']} in the newest frame · {_num(d.get('mean'), '.2f')} per frame" + (f" · {top}" if top else "")


def _stream(s: dict[str, Any]) -> str:
    st = s.get("stream") or {}
    clients = f"{st.get('clients', 0)}/{st.get('max_clients', '?')} clients"
    if not st.get("encoder"):
        return f"n/a (no worker running) · {clients}"
    size = "x".join(str(v) for v in st.get("size") or [])
    sent = (f"{_num(st.get('fps'))} of at most {st.get('fps_limit', 0):g} FPS · {_num(st.get('kb'))} KB a frame"
            if st.get("fps") else "nobody watching: no frame encoded")
    how = " · drawn on the CPU, encoded in hardware (draw+encode: the drawing and the encoder's latency)" \
        if st.get("encode_timed") == "hardware latency" else ""
    note = f" · {st['note']}" if st.get("note") else ""
    return f"{st['encoder']} {size} · {sent} · {clients}{how}{note}"


def rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures of a ``Hub.stats()`` document, in display order."""
    system = s.get("system") or {}
    per_core, cpu = _cpu(system)
    running = s.get("status") == "running"
    return [
        ("variant", _status(s)),
        ("FPS", f"{_num(s.get('fps'))} · {s.get('frames', 0)} frames" if running else "n/a (not running)"),
        ("stage ms", _stages(s)),
        ("end-to-end ms", _spread(s.get("e2e_ms"), "no frame finished yet")),
        ("frame age ms", _spread(s.get("age_ms"), "no frame finished yet")),
        ("drops", _drops(s)),
        ("CPU per core %", per_core),
        ("CPU %", cpu),
        ("power", _power(s.get("power") or {})),
        ("temperature", _thermal(system)),
        ("detections", _detections(s)),
        ("stream", _stream(s)),
    ]
