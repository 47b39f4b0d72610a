"""Rates as settings write them (``"10/min"``); no Django import, so that settings can check them at start."""

from __future__ import annotations

PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
PERIODS |= {"d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"10/min"`` -> (10, 60); empty -> None (no limit). Raises ValueError for anything else."""
    rate = (rate or "").strip()
    if not rate:
        return None
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or period.strip().lower() not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate: write <count>/<s|min|hour|day>, e.g. 10/min")
    return int(count), PERIODS[period.strip().lower()]
