"""Stopping a run on a signal without losing what it measured.

SIGINT (Ctrl-C), SIGTERM (``kill``, a service manager) and SIGHUP (an SSH session dropping) all become one
exception, ``Interrupted``, raised in the main thread. On its way out it picks up what was saved: the worker
adds the interrupted variant's streamed frames (``outcome``), the comparison writes them to the result and
says where (``result``). The CLI prints that and exits with 128 + the signal's number, as a shell does.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accel.results.record import Outcome

__all__ = ["SIGNALS", "Interrupted", "stop_on_signals"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum``. A ``KeyboardInterrupt`` (what Ctrl-C raises without
    ``stop_on_signals``), so code that cleans up on Ctrl-C cleans up on SIGTERM and SIGHUP too."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.outcome: Outcome | None = None  # the variant in progress: its streamed frames, or None
        self.result: Path | None = None  # the result JSON holding what was saved (None: none written)
        self.variants = 0  # variant records in it
        self.partial: tuple[str, int] | None = None  # (variant, frames measured) of the interrupted one
        self.complete = False  # every variant had run: only the reports (or printing them) were cut short

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def saved_line(self) -> str:
        """What the interrupted comparison saved, in one line: where the result is, and the frames the
        interrupted variant measured; or that nothing was written."""
        head = f"accel: interrupted by {self.name}"
        if self.result is None:
            return f"{head} before any frame was measured; no result was written"
        partial = ""
        if self.partial is not None:
            label, n = self.partial
            partial = f", with the {n} frames {label} measured before it was stopped (status interrupted)" if n \
                else f", with {label} stopped before it kept a measured frame (status interrupted)"
        records = f"{self.variants} variant record{'' if self.variants == 1 else 's'}"
        if self.complete:
            return (f"{head} after every variant had run; the result is complete in {self.result} (complete: "
                    f"true), the reports may be missing: accel report {self.result} --out report.html")
        return f"{head}; saved {records}{partial} in {self.result} (complete: false)"

    @classmethod
    def of(cls, exc: BaseException) -> Interrupted:
        """``exc`` itself, or a plain ``KeyboardInterrupt`` as the SIGINT it was."""
        return exc if isinstance(exc, Interrupted) else cls(signal.SIGINT)


@contextmanager
def stop_on_signals(*, linger: bool = False) -> Iterator[None]:
    """In the main thread: SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` while the block runs. Only the
    first does: the ones after it are ignored until the block ends, so a second Ctrl-C cannot cut short
    the saving of what the first one stopped. ``linger``: once one was received, they stay ignored after the
    block (the command line, about to exit: a late signal must not become a traceback during shutdown);
    otherwise the previous handlers come back. Outside the main thread this does nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        if raised:
            return
        raised.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, signal.SIG_IGN if linger and raised else old)
