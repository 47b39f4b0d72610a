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
        self.created = time.monotonic()
        self._streams: dict[str, tuple[int, str, float]] = {}  # phase -> (done, detail, when) of its last line

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

    def count(self, phase: str, done: int, unit: str, detail: str = "", *, final: bool = False) -> None:
        """A line of an open-ended stream (a relay, a consumer): ``phase: done unit (rate/s), detail``.

        The rate is over the time since this phase's last line (or since the helper was made).
        Nothing is written while nothing changed since that line (an idle stream stays quiet),
        unless ``final``. The caller decides how often to call; several phases may interleave.
        """
        now = time.monotonic()
        # A stream that has done nothing yet has nothing to say either.
        last_done, last_detail, last_time = self._streams.get(phase, (0, detail, self.created))
        if not final and (done, detail) == (last_done, last_detail):
            self._streams[phase] = (done, detail, now)
            return
        rate = (done - last_done) / max(now - last_time, 1e-9)
        self._streams[phase] = (done, detail, now)
        line = f"{phase}: {done} {unit} ({rate:.0f}/s)"
        self._write(f"{line}, {detail}" if detail else line, final=True)

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
