"""bench/report.py: a benchmark rewrites its own section of docs/benchmarks.md and nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "bench" / "report.py"


def load_report():
    spec = importlib.util.spec_from_file_location("bench_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_section_is_replaced_in_place_with_a_blank_line_before_the_next(tmp_path):
    document = tmp_path / "benchmarks.md"
    document.write_text("# Benchmarks\n\n## A\n\nold a\n\n## B\n\nold b\n\n## C\n\nc\n")

    load_report().write_section(document, "## B", "## B\n\nnew b")  # a section without its own last newline

    assert document.read_text() == "# Benchmarks\n\n## A\n\nold a\n\n## B\n\nnew b\n\n## C\n\nc\n"


def test_a_new_section_is_appended(tmp_path):
    document = tmp_path / "benchmarks.md"
    document.write_text("# Benchmarks\n\n## A\n\na\n")

    load_report().write_section(document, "## B", "## B\n\nb\n")

    assert document.read_text() == "# Benchmarks\n\n## A\n\na\n\n## B\n\nb\n"
