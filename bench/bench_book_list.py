"""Book list and detail API against a bare Django view running the same queries, in one process and run.

Run:
    .venv/bin/python bench/bench_book_list.py                       # 2,000 books, 600 requests per path, 3 rounds
    .venv/bin/python bench/bench_book_list.py --write docs/benchmarks.md

Everything runs in this process on throwaway SQLite databases (the embedded topology's default)
with production settings (``DEBUG=false``), through Django's test client and so through the whole
middleware stack. The comparator is a bare Django view that replays *the very SQL statements and
parameters* the API view issued for the same request (recorded with ``execute_wrapper``) and returns
their rows with ``JsonResponse``: what the database and Django's request cycle cost, without DRF,
the selector, the pagination and the serializer. The ratio API / bare (req/s) is taken within one
round; rounds are interleaved so that the machine's load hits both sides alike.

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


def bare_view(statements):
    from django.db import connections
    from django.http import JsonResponse

    def view(request):
        results = []
        with connections["catalog"].cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                columns = [column[0] for column in cursor.description]
                results.append([dict(zip(columns, row, strict=True)) for row in cursor.fetchall()])
        return JsonResponse({"results": results}, json_dumps_params={"default": str})

    return view


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=600, help="per path and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="", help="a note for the report, e.g. before/after")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a Markdown file")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="quire-bench-books-")
    setup_django(directory)
    seed(args.books)

    from django.test import Client
    from django.urls import clear_url_caches, path

    import config.urls

    client = Client()
    detail_id = 1 + args.books // 2
    paths = {"list": "/api/catalog/books/", "detail": f"/api/catalog/books/{detail_id}/"}
    extra = []
    for name, url in paths.items():
        statements = record_statements(client, url)
        extra.append(path(f"bench-bare/{name}/", bare_view(statements)))
        print(f"{name}: {len(statements)} statement(s) on catalog", file=sys.stderr)
    config.urls.urlpatterns[:0] = extra
    clear_url_caches()

    results = {name: [] for name in paths}
    for round_number in range(args.rounds):
        for name, url in paths.items():
            timed(client, url, 50)  # warm both
            timed(client, f"/bench-bare/{name}/", 50)
            api, bare = timed_pair(client, (url, f"/bench-bare/{name}/"), args.requests)
            api_latencies, bare_latencies = api["wall"], bare["wall"]
            api_rate, bare_rate = args.requests / sum(api_latencies), args.requests / sum(bare_latencies)
            row = {
                "api": api_rate,
                "bare": bare_rate,
                "ratio": api_rate / bare_rate,
                "api_p99": p99(api_latencies) * 1000,
                "bare_p99": p99(bare_latencies) * 1000,
                "p99_ratio": p99(api_latencies) / p99(bare_latencies),
                "cpu_ratio": bare["cpu"] / api["cpu"],  # API requests per CPU-second / bare's
                "load": os.getloadavg()[0],
            }
            results[name].append(row)
            print(
                f"round {round_number + 1} {name}: API {api_rate:.0f} req/s, bare {bare_rate:.0f} req/s, "
                f"ratio {row['ratio']:.2f} (per CPU-second {row['cpu_ratio']:.2f}), "
                f"p99 {row['api_p99']:.1f} / {row['bare_p99']:.1f} ms "
                f"({row['p99_ratio']:.2f}x), load {row['load']:.1f}",
                file=sys.stderr,
            )

    def spread(name, key, fmt):
        values = sorted(row[key] for row in results[name])
        return " / ".join(fmt.format(v) for v in (values[0], statistics.median(values), values[-1]))

    lines = [
        HEADING,
        "",
        f"`bench/bench_book_list.py`: {args.books:,} books on throwaway SQLite databases, production settings, "
        "Django's test client (the whole middleware stack) in one process; the comparator is a bare Django view "
        "replaying the same SQL statements with the same parameters and returning their rows as JSON, "
        "requested alternately with the API. "
        f"{args.requests} requests per path and round, {args.rounds} rounds, figures min / median / max; "
        "ratios are API / bare within one round (req/s on the wall clock, and requests per CPU-second of this "
        "process, which other processes on the machine disturb less).",
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
    lines += [
        "",
        f"- Measured {datetime.now(UTC):%Y-%m-%d} {args.label}; 1-minute load average per measurement: {loads} "
        "(2 cores shared with other engineers' builds: absolute rates vary, ratios less).",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(args.write, HEADING, section)


if __name__ == "__main__":
    main()
