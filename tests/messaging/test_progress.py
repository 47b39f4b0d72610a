"""The progress lines every long operator command writes."""

from __future__ import annotations

import io
import re

from messaging.progress import Progress


def test_progress_line_has_counts_rate_and_eta():
    line = Progress.line("reading purchases", 250_000, 1_000_000, 0.5)

    assert line == "reading purchases: 250,000/1,000,000 ( 25.0%) 500,000/s, elapsed 0.5s, ETA 1.5s"


def test_progress_reports_counted_phases_and_steps_with_their_duration():
    stream = io.StringIO()
    progress = Progress(stream, interval=0.0)

    progress("reading purchases", 0, 4)
    progress("reading purchases", 4, 4)
    progress("building: co-occurrence", 0, 0)
    progress.finish()

    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("reading purchases: 0/4 (  0.0%)")
    assert lines[1].startswith("reading purchases: 4/4 (100.0%)")
    assert re.fullmatch(r"reading purchases: done in \d+\.\ds", lines[2])
    assert lines[3] == "building: co-occurrence..."
    assert re.fullmatch(r"building: co-occurrence: done in \d+\.\ds", lines[4])
    assert len(lines) == 5


def test_progress_line_carries_the_callers_detail():
    stream = io.StringIO()
    progress = Progress(stream, interval=0.0)

    progress("importing rows", 2, 4, "new 1, updated 1")

    (line,) = stream.getvalue().splitlines()
    assert line.startswith("importing rows: 2/4 ( 50.0%)")
    assert line.endswith("s  new 1, updated 1")
