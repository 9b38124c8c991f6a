"""``accel watch`` on the command line: ``compare``'s options for what runs (model, source, kernels,
delegates, power, config file; the same precedence) and its own for what is served and how."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from accel.watch.options import STREAM_ENCODERS, StreamOptions, WatchOptions

if TYPE_CHECKING:
    from accel.plan.config import Config

__all__ = ["EPILOG", "add_arguments", "run"]

EPILOG = """examples:
  accel watch                                    default model, synthetic camera, best available variant
  accel watch --model effdet0.tflite --source picamera2 --variant "xnnpack threads=4"
  ssh -L 8000:localhost:8000 pi@raspberrypi.local    (on the laptop) then open http://localhost:8000
  accel watch --host 0.0.0.0 --token SECRET      on the LAN: open http://raspberrypi.local:8000/?token=SECRET
  accel watch --on pi@raspberrypi.local --source picamera2    (on the laptop) runs it there, forwards it to
                                                 http://127.0.0.1:8000/ here; Ctrl-C stops both ends

precedence: command-line flags > ACCEL_* environment > accel.toml (or --config) > defaults.
exit codes: 0 stopped (Ctrl-C), 1 the variant failed (--no-server), 2 bad input, 3 backend unavailable."""


def add_arguments(w: argparse.ArgumentParser) -> None:
    """Add watch's own options (what is served and how) to its parser, beside the run flags it shares with
    compare (``accel.plan.flags``, those marked ``watch``)."""
    w.add_argument("--variant", help="the variant to start with, as the selector lists it (\"xnnpack threads=4 + "
                   "opencv\") or the variant alone (its first kernel set); default: xnnpack with the most threads, "
                   "else litert-cpu, litert-gpu, gpu-delegate, external, then cpu-reference")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, reached through "
                   "an SSH tunnel); any other address needs a token")
    w.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free port)")
    w.add_argument("--token", help="every request must carry it (?token=TOKEN or 'Authorization: Bearer TOKEN'); "
                   "generated and printed when --host is not loopback and none is given")
    w.add_argument("--stream-fps", type=float, default=15.0,
                   help="frames a second the stream sends at most, whatever the detector's rate (default 15)")
    w.add_argument("--stream-size", default="auto", help="stream size: auto (the source's, at most 640 wide; "
                   "with Picamera2's encoder the camera's main stream, at least 640x480), native or WIDTHxHEIGHT "
                   "(default auto)")
    w.add_argument("--jpeg-quality", type=int, default=80, help="JPEG quality of the stream, 1..100 (default 80)")
    w.add_argument("--stream-encoder", default="auto", choices=STREAM_ENCODERS,
                   help="who encodes the stream: auto (default: with --source picamera2, Picamera2's own encoder "
                   "over the camera's main stream, the hardware one on a Pi 4; else the fastest installed of "
                   "simplejpeg, opencv, pillow, drawing the frames the detector saw), or one of them by name")
    w.add_argument("--max-clients", type=int, default=8, help="streams served at once, at most (default 8)")
    w.add_argument("--no-server", action="store_true", help="no HTTP server: only the terminal panel")


def run(args: argparse.Namespace, config: Config) -> int:
    """``accel watch`` with the parsed ``args`` and the ``config`` they select."""
    from accel.watch.app import watch

    options = WatchOptions(host=args.host, port=args.port, token=args.token,
                           stream=StreamOptions(args.stream_fps, args.stream_size, args.jpeg_quality,
                                                args.stream_encoder),
                           max_clients=args.max_clients, server=not args.no_server, variant=args.variant)
    return watch(config, options)
