"""Time ``manage.py import_catalog`` on the real goodbooks-10k books.csv: first import, then a re-import.

Each run starts from fresh, migrated SQLite databases in a temporary directory (the embedded
default), runs the command exactly as an operator would, and reads the command's own summary
for the split between the import (rows validated, written, events recorded in the outbox) and
the in-process delivery of those events to the subscribed handlers of the other modules.

    .venv/bin/python bench/bench_import_catalog.py                      # print the results
    .venv/bin/python bench/bench_import_catalog.py --write docs/benchmarks.md

``--write`` replaces (or appends) the "## Catalog import" section of that file and nothing else.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from environment import BASE_DIR as ROOT  # bench/: benchmarks run as scripts from bench/
from environment import BOOKS_CSV as DEFAULT_FILE
from environment import production_settings
from report import write_section

HEADING = "## Catalog import"
COMMAND = "manage.py import_catalog {file} --stock 5"
LABELS = ("first import", "re-import (no change)")


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    import_seconds: float
    import_cpu: float
    deliver_seconds: float | None
    counts: dict[str, str]


def manage(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float, float]:
    before = os.times()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done, wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def parse(label: str, done: subprocess.CompletedProcess, wall: float, cpu: float) -> Run:
    summary = done.stdout
    imported = re.search(r"rows in ([\d.]+)s \(CPU ([\d.]+)s", summary)
    delivered = re.search(r"delivered\s+(?:[\d,]+ events )?in ([\d.]+)s", summary)
    counts = dict(re.findall(r"^\s+(imported|updated|unchanged|skipped|events)\s+([\d,]+)", summary, re.M))
    return Run(
        label,
        wall,
        cpu,
        float(imported.group(1)) if imported else float("nan"),
        float(imported.group(2)) if imported else float("nan"),
        float(delivered.group(1)) if delivered else None,
        counts,
    )


def subscribers(env: dict[str, str]) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
            "from messaging.registry import subscriptions;"
            "print(', '.join(sorted(f'{s.function.__module__}.{s.function.__name__}' for s in subscriptions()"
            " if s.event_class.event_type == 'catalog.BookPublished')))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "none"


def measure_once(file: Path) -> tuple[list[Run], str]:
    with tempfile.TemporaryDirectory(prefix="quire-bench-catalog-") as var_dir:
        env = {**os.environ, "QUIRE_VAR_DIR": var_dir, "SERVICE": "all", "EVENT_TRANSPORT": "inprocess"}
        # Production settings, as an operator runs the command: DEBUG off (no per-query log).
        env.update(production_settings(Path(var_dir) / "keys", env))
        for name in [n for n in env if n.endswith("DATABASE_URL")]:
            del env[name]  # the embedded default: SQLite files under QUIRE_VAR_DIR
        manage(env, "migrate", "--verbosity", "0")
        args = COMMAND.format(file=file).split()[1:]
        runs = [parse(label, *manage(env, *args)) for label in LABELS]
        return runs, subscribers(env)


def measure(file: Path, repeat: int) -> tuple[list[list[Run]], dict[str, str]]:
    """``repeat`` rounds, each on fresh databases: [round][first import, re-import]."""
    rounds, loads = [], []
    for number in range(1, repeat + 1):
        runs, handlers = measure_once(file)
        rounds.append(runs)
        loads.append(os.getloadavg()[0])
        first = runs[0]
        print(
            f"round {number}/{repeat}: command CPU {first.cpu:.1f} s, import CPU {first.import_cpu:.1f} s, "
            f"ratio {first.cpu / first.import_cpu:.2f}x (load {loads[-1]:.1f})",
            file=sys.stderr,
            flush=True,
        )
    context = {"subscribers": handlers, "load": " / ".join(f"{value:.1f}" for value in loads)}
    return rounds, context


def spread(values: list[float], unit: str = " s", digits: int = 1) -> str:
    """min / median / max of the rounds."""
    ordered = sorted(values)
    return " / ".join(f"{value:.{digits}f}" for value in (ordered[0], statistics.median(ordered), ordered[-1])) + unit


def markdown(file: Path, rounds: list[list[Run]], context: dict[str, str]) -> str:
    lines = [
        HEADING,
        "",
        f"`bench/bench_import_catalog.py` runs `{COMMAND.format(file='books.csv')}` on the real goodbooks-10k "
        f"`books.csv` ({file.stat().st_size / 1e6:.1f} MB, 10,000 rows), a first import then a re-import, "
        f"{len(rounds)} times, each time against fresh SQLite databases (the embedded default, in-process "
        "event transport), with production settings (`DEBUG=false`). Figures are min / median / max of the "
        "rounds; the ratio compares the whole command with its own import phase in the same run.",
        "",
        "| run | import (validate, write, outbox) | import CPU | in-process delivery | command wall time "
        "| command CPU | command CPU / import CPU | events |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, label in enumerate(LABELS):
        runs = [round_[index] for round_ in rounds]
        delivery = [run.deliver_seconds for run in runs if run.deliver_seconds is not None]
        lines.append(
            f"| {label} | {spread([r.import_seconds for r in runs])} | {spread([r.import_cpu for r in runs])} "
            f"| {spread(delivery) if delivery else '-'} | {spread([r.wall for r in runs])} "
            f"| {spread([r.cpu for r in runs])} | **{spread([r.cpu / r.import_cpu for r in runs], 'x', digits=2)}** "
            f"| {runs[0].counts.get('events', '?')} |"
        )
    lines += [
        "",
        "- *import*: the command's own figure (rows read, validated, upserted with bulk statements in "
        "transactions of 1,000 rows, one outbox row per BookPublished/BookUpdated in the same transaction).",
        "- *in-process delivery*: handing the recorded events to the handlers subscribed to catalog's book "
        f"events in this process ({context['subscribers']}); batched: one transaction per handler and batch "
        "of up to `MESSAGING_RELAY_BATCH_SIZE` events, the handlers' bulk forms, rows marked in one statement; "
        "on SQLite. "
        "With the Kafka transport this step is the relay's, outside the command.",
        "- *command wall time* includes Python and Django start-up and the delivery; *CPU* columns are "
        "user+system time (of the import phase, of the whole command).",
        f"- Machine: {os.cpu_count()} CPU(s), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.machine()}; 1-minute load average after each round {context['load']} "
        "(other jobs on the machine move wall times more than CPU times).",
        f"- Measured {time.strftime('%Y-%m-%d')} with `.venv/bin/python bench/bench_import_catalog.py --write "
        "docs/benchmarks.md`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="goodbooks-10k books.csv")
    parser.add_argument("--repeat", type=int, default=3, help="rounds on fresh databases (default 3)")
    parser.add_argument("--write", type=Path, help="update this markdown file's '## Catalog import' section")
    options = parser.parse_args()
    if not options.file.is_file():
        sys.exit(f"{options.file} not found: pass --file path/to/goodbooks-10k/books.csv")
    rounds, context = measure(options.file, options.repeat)
    section = markdown(options.file, rounds, context)
    print(section)
    if options.write:
        write_section(options.write, HEADING, section)
        print(f"wrote the '{HEADING}' section of {options.write}")


if __name__ == "__main__":
    main()
