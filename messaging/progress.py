"""Progress lines for every long operator command (import, rebuild, relay, consumer).

One helper, so that every command reports the same way: counts, rate and ETA when the
total is known, counts and the rate since the last line for an open-ended stream.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Call with ``(phase, done, total)``; a phase with ``total`` 0 is a step without counts.

    ``detail`` adds the caller's own figures to the line (``new 12, updated 3``).

    Counted phases print at most every ``interval`` seconds (counts, rate, ETA); every
    phase ends with the time it took. On a terminal the line is redrawn in place;
    otherwise (logs, CI) one line per update.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.phase: str | None = None
        self.started = self.last = 0.0

    def __call__(self, phase: str, done: int, total: int, detail: str = "") -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.finish()
            self.phase, self.started, self.last = phase, now, now
            if not total:
                self._write(f"{phase}...")
                return
        if not total or (now - self.last < self.interval and done < total):
            return
        self.last = now
        line = self.line(phase, done, total, now - self.started)
        self._write(f"{line}  {detail}" if detail else line)

    @staticmethod
    def line(phase: str, done: int, total: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        share = f" ({100.0 * done / total:5.1f}%)" if total else ""
        eta = (total - done) / rate if rate > 0 and total >= done else 0.0
        return f"{phase}: {done:,}/{total:,}{share} {rate:,.0f}/s, elapsed {elapsed:.1f}s, ETA {eta:.1f}s"

    def _write(self, text: str, *, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the current phase with the time it took."""
        if self.phase is not None:
            self._write(f"{self.phase}: done in {time.monotonic() - self.started:.1f}s", final=True)
        self.phase = None
