"""bench/load/locustfile.py loads in locust and runs the documented mix.

locust monkey-patches the standard library with gevent when imported, so the locustfile is
imported in a child process, never in the test run's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOAD = Path(__file__).resolve().parents[3] / "bench" / "load"
DOCS = LOAD.parents[1] / "docs" / "benchmarks.md"
#: Issue 13's mix, as docs/benchmarks.md states it: task -> weight.
DOCUMENTED_MIX = {"browse": 10, "book": 5, "cart": 2, "checkout": 1}


def child(*argv: str) -> str:
    result = subprocess.run([sys.executable, *argv], cwd=LOAD, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_customer_runs_the_documented_mix():
    weights = json.loads(
        child(
            "-c",
            "import collections, json, locustfile\n"
            "print(json.dumps(collections.Counter(task.__name__ for task in locustfile.Customer.tasks)))",
        )
    )

    assert weights == DOCUMENTED_MIX
    mix = " : ".join(f"{task} {weight}" for task, weight in DOCUMENTED_MIX.items())
    assert mix in DOCS.read_text(), f"docs/benchmarks.md no longer states the mix {mix!r}"


def test_locust_parses_the_locustfiles_options():
    options = json.loads(
        child(
            "-c",
            "import json, locustfile\n"
            "from locust.argument_parser import get_parser\n"
            "parse = get_parser().parse_args\n"
            "given = parse(['-f', 'locustfile.py', '--customers-file', 'c.json', '--sign-in', 'password'])\n"
            "default = parse(['-f', 'locustfile.py'])\n"
            "print(json.dumps([vars(given), vars(default)]))",
        )
    )

    given, default = options
    assert (given["customers_file"], given["sign_in"]) == ("c.json", "password")
    assert (default["sign_in"], default["settle_csv"], default["think_min"], default["think_max"]) == (
        "refresh",
        "",
        0.5,
        1.5,
    )
