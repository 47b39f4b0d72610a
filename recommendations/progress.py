"""Progress lines for long operator commands: counts, rate and ETA, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressReporter:
    """Call with ``(phase, done, total)``; prints at most every ``interval`` seconds per phase.

    On a terminal the line is redrawn in place; otherwise (logs, CI) one line per update.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.phase: str | None = None
        self.started = self.last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.finish()
            self.phase, self.started, self.last = phase, now, 0.0
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        self._write(self.line(phase, done, total, now - self.started))

    @staticmethod
    def line(phase: str, done: int, total: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        share = f" ({100.0 * done / total:5.1f}%)" if total else ""
        eta = (total - done) / rate if rate > 0 and total >= done else 0.0
        return f"{phase}: {done:,}/{total:,}{share} {rate:,.0f}/s, elapsed {elapsed:.1f}s, ETA {eta:.1f}s"

    def _write(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.phase is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self.phase = None
