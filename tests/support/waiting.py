"""Waiting for a condition with a deadline: how the tests wait for something asynchronous.

A fixed sleep is either too short (a flaky test) or too long (a slow one); :func:`wait_until`
polls instead, and when the deadline passes it fails saying what it waited for and what it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT = 20.0
MAX_INTERVAL = 1.0


class TimedOut(AssertionError):
    """A condition that did not come true within its deadline."""


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    message: str = "",
    interval: float = 0.02,
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds pass.

    An ``AssertionError`` raised by ``condition`` counts as "not yet". The pause between polls
    starts at ``interval`` and grows to at most a second. On timeout :class:`TimedOut` names
    ``message`` (or the condition) with the last value or the last assertion it saw.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    error: AssertionError | None = None
    while True:
        try:
            last = condition()
            error = None
            if last:
                return last
        except AssertionError as raised:
            error = raised
        if time.monotonic() >= deadline:
            detail = f"last error: {error}" if error else f"last value: {last!r}"
            raise TimedOut(f"not true within {timeout:.0f}s: {message or condition!r} ({detail})")
        time.sleep(interval)
        interval = min(interval * 1.5, MAX_INTERVAL)
