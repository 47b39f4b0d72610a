"""Book list and detail API against a bare Django view running the same SQL, side by side in one run.

Run:
    .venv/bin/python bench/bench_book_list.py                    # gunicorn 1 worker x 4 threads, wrk, 3 rounds
    .venv/bin/python bench/bench_book_list.py --server in-process # Django's test client in this process
    .venv/bin/python bench/bench_book_list.py --write docs/benchmarks.md

The shop runs on throwaway SQLite databases (the embedded topology's default) with production
settings (``DEBUG=false``). The comparator is a bare Django view (``bench/bare.py``) that replays
*the very SQL statements and parameters* the API view issued for the same request (recorded with
``execute_wrapper``) and returns their rows with ``JsonResponse``: what the database and Django's
request cycle cost, without DRF, the ORM, the selector, the pagination and the serializer.

``--server gunicorn`` (the default, the issue's measure): one gunicorn worker with 4 threads
serves both the API and the bare views (``bench/book_list_server.py``), and ``wrk`` (Debian's
package, installed when missing) drives 4 keep-alive connections at one path
for ``--seconds``, API and bare alternately, each round. Besides req/s and wrk's latency
percentiles, the worker's CPU time per side gives requests per server CPU-second, which the
load generator's own share of the 2 cores disturbs less.

``--server in-process``: Django's test client calls both alternately in this process (no HTTP,
no gunicorn): the strictest comparison, since nothing dilutes the views' own cost.

Throttling is off (thousands of anonymous requests from one address would be refused with 429).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bare import bare_view
from environment import BASE_DIR, production_settings  # bench/: benchmarks run as scripts from bench/
from report import write_section

ALIASES = ("default", "accounts", "catalog", "orders", "recommendations")
HEADING = "## Book list and detail API"


def setup_django(directory: str) -> None:
    sys.path.insert(0, str(BASE_DIR))
    from config.databases import url_variable

    os.environ.update(production_settings(Path(directory)))
    os.environ["QUIRE_VAR_DIR"] = directory
    for alias in ALIASES:
        os.environ[url_variable(alias)] = f"sqlite:///{directory}/{alias}.sqlite3"
    os.environ.update(
        SERVICE="all",
        EVENT_TRANSPORT="inprocess",
        LOG_LEVEL="WARNING",
        THROTTLE_ENABLED="false",
        ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    import django

    django.setup()
    from django.core.management import call_command

    for alias in ("default", "catalog"):
        call_command("migrate", database=alias, verbosity=0)


def seed(books: int) -> None:
    """Books with 1-3 authors, 0-3 genres, stock, some without a year: the shapes the list serves."""
    from catalog.models import Author, Book, BookAuthor, Genre, Stock

    authors = Author.objects.bulk_create(Author(name=f"Author {i:04d}") for i in range(books // 4))
    genres = Genre.objects.bulk_create(Genre(name=f"Genre {i:02d}", slug=f"genre-{i:02d}") for i in range(24))
    rows = Book.objects.bulk_create(
        Book(
            title=f"Title {(i * 7919) % books:05d}",
            language="eng",
            publication_year=None if i % 9 == 0 else 1900 + i % 120,
            description="A description of some length. " * 8,
            cover_url=f"https://covers.example/{i}.jpg",
            price=Decimal(5 + i % 40) + Decimal("0.99"),
            search_document=f"title {i}",
        )
        for i in range(books)
    )
    Stock.objects.bulk_create(
        Stock(book=book, on_hand=i % 7, reserved=i % 3 if i % 7 >= 3 else 0) for i, book in enumerate(rows)
    )
    BookAuthor.objects.bulk_create(
        BookAuthor(book=book, author=authors[(i + j * 31) % len(authors)], position=j)
        for i, book in enumerate(rows)
        for j in range(1 + i % 3)
    )
    through = Book.genres.through
    through.objects.bulk_create(
        through(book_id=book.pk, genre_id=genres[(i + j * 5) % len(genres)].pk)
        for i, book in enumerate(rows)
        for j in range(i % 4)
    )


def record_statements(client, url: str) -> list[tuple[str, tuple]]:
    """The SQL and parameters the API issues on the catalog database for one request to ``url``."""
    from django.db import connections

    statements: list[tuple[str, tuple]] = []

    def wrapper(execute, sql, params, many, context):
        statements.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    with connections["catalog"].execute_wrapper(wrapper):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return statements


def timed(client, url: str, count: int) -> None:
    for _ in range(count):
        assert client.get(url).status_code == 200


def timed_pair(client, urls: tuple[str, str], count: int) -> list[dict]:
    """Requests to both URLs alternately, so that the machine's load falls on both alike.

    Per side: wall-clock latencies and this process's CPU time (what the request cost us, less
    disturbed by other processes on a shared machine than the wall clock).
    """
    sides = [{"wall": [], "cpu": 0.0} for _ in urls]
    for _ in range(count):
        for url, side in zip(urls, sides, strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            side["cpu"] += time.process_time() - cpu
            side["wall"].append(time.perf_counter() - wall)
            assert response.status_code == 200
    return sides


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_in_process(args, client, paths: dict[str, str], results: dict[str, list[dict]]) -> None:
    """Both sides through Django's test client in this process, alternately, per round."""
    from django.urls import clear_url_caches, path

    import config.urls

    extra = [path(f"bench-bare/{name}/", bare_view(record_statements(client, url))) for name, url in paths.items()]
    config.urls.urlpatterns[:0] = extra
    clear_url_caches()
    for round_number in range(args.rounds):
        for name, url in paths.items():
            timed(client, url, 50)  # warm both
            timed(client, f"/bench-bare/{name}/", 50)
            api, bare = timed_pair(client, (url, f"/bench-bare/{name}/"), args.requests)
            api_rate, bare_rate = args.requests / sum(api["wall"]), args.requests / sum(bare["wall"])
            row = {
                "api": api_rate,
                "bare": bare_rate,
                "api_p99": p99(api["wall"]) * 1000,
                "bare_p99": p99(bare["wall"]) * 1000,
                "api_cpu_rate": args.requests / api["cpu"],
                "bare_cpu_rate": args.requests / bare["cpu"],
            }
            results[name].append(row)
            report_round(round_number, name, row)


# --- gunicorn + wrk ----------------------------------------------------------------------------
WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: float, connections: int) -> dict:
    """One wrk run: requests/s and latency percentiles (ms); non-2xx answers make it fail."""
    import re
    import subprocess

    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk {url}: errors\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {
        int(p): float(value) * WRK_UNITS[unit]
        for p, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return {"rate": rate, "p50": percentiles[50], "p99": percentiles[99], "requests": requests}


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children now running (gunicorn's master and worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state ppid ... utime(12) stime(13), counting from state as 0
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def run_gunicorn(args, client, paths: dict[str, str], results: dict[str, list[dict]], directory: str) -> None:
    """Both sides served by one gunicorn worker (4 threads), driven by wrk, alternately, per round."""
    import json
    import shutil
    import signal
    import socket
    import subprocess
    import urllib.request

    if shutil.which("wrk") is None:  # Debian's wrk drives the HTTP load
        subprocess.run([str(BASE_DIR / "scripts/dev/debian-package.sh"), "ensure", "wrk", "wrk"], check=True)
    statements_file = Path(directory) / "bare-statements.json"
    statements_file.write_text(json.dumps({name: record_statements(client, url) for name, url in paths.items()}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "BENCH_BARE_STATEMENTS": str(statements_file), "ALLOWED_HOSTS": "127.0.0.1"}
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "book_list_server:application",
            "--config=python:config.gunicorn", f"--bind=127.0.0.1:{port}", "--workers=1", "--threads=4",
            "--worker-class=gthread", f"--chdir={BASE_DIR}", f"--pythonpath={BASE_DIR},{BASE_DIR / 'bench'}",
            "--no-control-socket", "--access-logfile=/dev/null",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health/live/", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start serving within 60 s") from None
                time.sleep(0.2)
        for name, url in paths.items():  # warm both
            wrk(base + url, 2, args.connections)
            wrk(f"{base}/bench-bare/{name}/", 2, args.connections)
        for round_number in range(args.rounds):
            for name, url in paths.items():
                sides = {}
                for side, target in (("api", base + url), ("bare", f"{base}/bench-bare/{name}/")):
                    cpu = process_tree_cpu(server.pid)
                    sides[side] = wrk(target, args.seconds, args.connections)
                    sides[side]["cpu"] = process_tree_cpu(server.pid) - cpu
                row = {
                    "api": sides["api"]["rate"],
                    "bare": sides["bare"]["rate"],
                    "api_p99": sides["api"]["p99"],
                    "bare_p99": sides["bare"]["p99"],
                    "api_cpu_rate": sides["api"]["requests"] / sides["api"]["cpu"],
                    "bare_cpu_rate": sides["bare"]["requests"] / sides["bare"]["cpu"],
                }
                results[name].append(row)
                report_round(round_number, name, row)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def report_round(round_number: int, name: str, row: dict) -> None:
    row["ratio"] = row["api"] / row["bare"]
    row["p99_ratio"] = row["api_p99"] / row["bare_p99"]
    row["cpu_ratio"] = row["api_cpu_rate"] / row["bare_cpu_rate"]
    row["load"] = os.getloadavg()[0]
    print(
        f"round {round_number + 1} {name}: API {row['api']:.0f} req/s, bare {row['bare']:.0f} req/s, "
        f"ratio {row['ratio']:.2f} (per server CPU-second {row['cpu_ratio']:.2f}), "
        f"p99 {row['api_p99']:.1f} / {row['bare_p99']:.1f} ms ({row['p99_ratio']:.2f}x), load {row['load']:.1f}",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=("gunicorn", "in-process"), default="gunicorn")
    parser.add_argument("--books", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=600, help="in-process: requests per path, side and round")
    parser.add_argument("--seconds", type=float, default=10.0, help="gunicorn: wrk seconds per path, side and round")
    parser.add_argument("--connections", type=int, default=4, help="gunicorn: wrk's keep-alive connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="", help="a note for the report, e.g. before/after")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a Markdown file")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="quire-bench-books-")
    setup_django(directory)
    seed(args.books)

    from django.test import Client

    client = Client()
    detail_id = 1 + args.books // 2
    paths = {"list": "/api/catalog/books/", "detail": f"/api/catalog/books/{detail_id}/"}
    for name, url in paths.items():
        print(f"{name}: {len(record_statements(client, url))} statement(s) on catalog", file=sys.stderr)
    results: dict[str, list[dict]] = {name: [] for name in paths}
    if args.server == "gunicorn":
        run_gunicorn(args, client, paths, results, directory)
        how = (
            f"one gunicorn worker with 4 threads serving both sides, `wrk` with {args.connections} keep-alive "
            f"connections for {args.seconds:g} s per path, side and round"
        )
    else:
        run_in_process(args, client, paths, results)
        how = f"Django's test client in one process, {args.requests} requests per path, side and round"

    def spread(name, key, fmt):
        values = sorted(row[key] for row in results[name])
        return " / ".join(fmt.format(v) for v in (values[0], statistics.median(values), values[-1]))

    lines = [
        f"{HEADING}: {args.server}",
        "",
        f"`bench/bench_book_list.py --server {args.server}`: {args.books:,} books on throwaway SQLite databases, "
        f"production settings; {how}; the comparator is a bare Django view replaying the same SQL statements "
        f"with the same parameters and returning their rows as JSON, measured alternately with the API. "
        f"{args.rounds} rounds, figures min / median / max; ratios are API / bare within one round (req/s, and "
        "requests per server CPU-second).",
        "",
        "| path | API req/s | bare req/s | ratio | ratio per CPU-second | API p99 ms | bare p99 ms | p99 ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in paths:
        lines.append(
            f"| {name} | {spread(name, 'api', '{:.0f}')} | {spread(name, 'bare', '{:.0f}')} | "
            f"**{spread(name, 'ratio', '{:.2f}')}** | {spread(name, 'cpu_ratio', '{:.2f}')} | "
            f"{spread(name, 'api_p99', '{:.1f}')} | "
            f"{spread(name, 'bare_p99', '{:.1f}')} | {spread(name, 'p99_ratio', '{:.2f}')}x |"
        )
    loads = ", ".join(f"{row['load']:.1f}" for name in paths for row in results[name])
    label = f" ({args.label})" if args.label else ""
    lines += ["", f"- Measured {datetime.now(UTC):%Y-%m-%d}{label}; 1-minute load average per round: {loads}."]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(args.write, f"{HEADING}: {args.server}", section)


if __name__ == "__main__":
    main()
