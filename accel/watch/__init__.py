"""``accel watch``: one variant running continuously on the pipelined runner, shown live.

The detector runs in a worker process of its own (``accel.watch.process``; inside it ``accel.watch.child``
and ``accel.watch.detector``), so a delegate that crashes takes down only that process: the page and the
terminal say "crashed" and another variant can be picked. The parent keeps the newest annotated frame and
the figures in a ``Hub``, serves them over HTTP with the standard library (``accel.watch.server``: ``/``,
``/stream.mjpg``, ``/stats.json``, ``/snapshot.jpg``) and shows them in a rich panel
(``accel.watch.panel``). ``accel.watch.app.watch`` puts the pieces together (imported from there: the worker process
imports this package too, and needs none of it).

Drawing and JPEG encoding happen in the worker only while somebody watches, at most ``stream_fps`` times a
second whatever the detector's rate, and are timed as a stage of their own (``encode``): by
``accel.watch.render`` from the frames the detector saw, or, with the picamera2 source, by Picamera2's own
encoder from the camera's main stream (``accel.watch.camera_stream``).
"""

from __future__ import annotations

from accel.watch.options import StreamOptions, WatchOptions

__all__ = ["StreamOptions", "WatchOptions"]
