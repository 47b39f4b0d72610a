"""Offline evaluation: a purchase log with a planted taste structure, scored leave-last-out.

No Django here: the evaluation (and the benchmark) run the engine in memory, with the
same scoring code the API serves.

The log is generated from real book metadata (goodbooks-10k ``books.csv``). The data
set has no purchase histories and no book -> genre map (``tags.csv`` names tags but no
file links them to books), so tastes are planted on what the metadata does say, plus
one hidden structure:

- **author** fans buy that author's books;
- **series** readers buy a series in order (``"(Discworld, #3)"`` in the title);
- **hidden shelves**: every book is put on one of ``SHELVES`` random shelves that the
  engine never sees, standing in for mood/genre affinities that only purchases reveal;
- **noise**: a share of purchases are simply popular books.

Every draw is skewed by ``ratings_count`` (popular books sell more). Each customer's
last purchase is held out; the model learns from everything else.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommendations.engine import VARIANTS, BookMeta, Engine, Weights, ndcg_at, split_series

SHELVES = 300
NOISE_SHARE = 0.25
POPULARITY_SKEW = 0.8
START_SECONDS = 1_735_689_600.0  # 2025-01-01T00:00:00Z
SPAN_DAYS = 330
MEAN_GAP_DAYS = 4.0


@dataclass(frozen=True)
class SourceBook:
    book_id: int
    title: str
    authors: tuple[str, ...]
    language: str
    ratings_count: int


@dataclass
class PurchaseLog:
    """Lines oldest first: ``customers[k]`` bought ``book_ids[k]`` at ``at_seconds[k]`` in ``order_ids[k]``."""

    customers: np.ndarray
    book_ids: np.ndarray
    at_seconds: np.ndarray
    order_ids: np.ndarray
    customer_count: int

    def __len__(self) -> int:
        return len(self.book_ids)

    def take(self, mask: np.ndarray) -> PurchaseLog:
        return PurchaseLog(
            self.customers[mask], self.book_ids[mask], self.at_seconds[mask], self.order_ids[mask], self.customer_count
        )


def load_goodbooks(path: str | Path, *, errors: list[str] | None = None) -> list[SourceBook]:
    """Books of a goodbooks-10k ``books.csv``; unreadable rows are reported by row number and skipped."""
    books = []
    with open(path, encoding="utf-8", newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                authors = tuple(name.strip() for name in row["authors"].split(",") if name.strip())
                books.append(
                    SourceBook(
                        book_id=int(row["book_id"]),
                        title=row["title"].strip() or row["original_title"].strip(),
                        authors=authors,
                        language=(row.get("language_code") or "").strip(),
                        ratings_count=max(int(float(row.get("ratings_count") or 0)), 0),
                    )
                )
            except (KeyError, ValueError) as error:
                if errors is not None:
                    errors.append(f"row {row_number}: {error}")
    return books


def book_metas(books: Iterable[SourceBook]) -> list[BookMeta]:
    """What catalog events would tell the engine (no genres: the data set maps none)."""
    return [BookMeta(b.book_id, b.title, b.authors, (), b.language, True) for b in books]


class _Pool:
    """Books to draw from, weighted by popularity."""

    def __init__(self, book_ids: list[int], weights: list[float]):
        self.book_ids = book_ids
        self.cumulative = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> int:
        point = rng.random() * self.cumulative[-1]
        return self.book_ids[min(bisect.bisect_right(self.cumulative, point), len(self.book_ids) - 1)]


def generate_purchases(
    books: list[SourceBook], *, customers: int, seed: int = 0, mean_lines: float = 12.0
) -> PurchaseLog:
    """A purchase log of ``customers`` customers with planted tastes (see the module docstring)."""
    rng = random.Random(seed)
    weight = {b.book_id: max(b.ratings_count, 1) ** POPULARITY_SKEW for b in books}
    everything = _Pool([b.book_id for b in books], [weight[b.book_id] for b in books])

    by_author: dict[str, list[int]] = {}
    by_series: dict[str, list[tuple[float, int]]] = {}
    by_shelf: dict[int, list[int]] = {}
    for book in books:
        if book.authors:
            by_author.setdefault(book.authors[0], []).append(book.book_id)
        series, _ = split_series(book.title)
        if series:
            number = book.title.rsplit("#", 1)[-1].split(")")[0].split("-")[0].strip()
            try:
                position = float(number)
            except ValueError:
                position = math.inf
            by_series.setdefault(series, []).append((position, book.book_id))
        by_shelf.setdefault(rng.randrange(SHELVES), []).append(book.book_id)

    def pools(groups: dict) -> tuple[list, _Pool]:
        names = [name for name, ids in groups.items() if len(ids) >= 3]
        return names, _Pool(names, [sum(weight[i] for i in _ids(groups[n])) for n in names])

    author_names, author_pool = pools(by_author)
    series_names, series_pool = pools(by_series)
    author_books = {n: _Pool(by_author[n], [weight[i] for i in by_author[n]]) for n in author_names}
    shelf_books = {n: _Pool(ids, [weight[i] for i in ids]) for n, ids in by_shelf.items()}
    series_order = {n: [book_id for _, book_id in sorted(by_series[n])] for n in series_names}

    rows_customer: list[int] = []
    rows_book: list[int] = []
    rows_at: list[float] = []
    rows_order: list[int] = []
    order_id = 0
    for customer in range(customers):
        tastes = []
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            kind = rng.random()
            if kind < 0.35:
                tastes.append(("author", author_pool.draw(rng)))
            elif kind < 0.65:
                tastes.append(("series", series_pool.draw(rng)))
            else:
                tastes.append(("shelf", rng.randrange(SHELVES)))
        owned: set[int] = set()
        series_next = {name: 0 for kind, name in tastes if kind == "series"}
        lines = min(4 + int(rng.expovariate(1.0 / max(mean_lines - 4.0, 1.0))), 80)
        at = START_SECONDS + rng.random() * SPAN_DAYS * 86_400.0
        in_order = 0
        for _ in range(lines):
            book_id = None
            if rng.random() >= NOISE_SHARE:
                kind, name = rng.choice(tastes)
                if kind == "series":
                    sequence = series_order[name]
                    while series_next[name] < len(sequence) and sequence[series_next[name]] in owned:
                        series_next[name] += 1
                    if series_next[name] < len(sequence):
                        book_id = sequence[series_next[name]]
                else:
                    pool = author_books[name] if kind == "author" else shelf_books[name]
                    for _attempt in range(8):
                        candidate = pool.draw(rng)
                        if candidate not in owned:
                            book_id = candidate
                            break
            while book_id is None or book_id in owned:
                book_id = everything.draw(rng)
            owned.add(book_id)
            if in_order == 0:
                order_id += 1
                in_order = rng.choice((1, 1, 1, 2, 3))
                at += rng.expovariate(1.0 / MEAN_GAP_DAYS) * 86_400.0
            in_order -= 1
            rows_customer.append(customer)
            rows_book.append(book_id)
            rows_at.append(at)
            rows_order.append(order_id)
    at_seconds = np.asarray(rows_at, dtype=np.float64)
    order = np.argsort(at_seconds, kind="stable")
    return PurchaseLog(
        customers=np.asarray(rows_customer, dtype=np.int64)[order],
        book_ids=np.asarray(rows_book, dtype=np.int64)[order],
        at_seconds=at_seconds[order],
        order_ids=np.asarray(rows_order, dtype=np.int64)[order],
        customer_count=customers,
    )


def _ids(group: list) -> list[int]:
    return [item[1] if isinstance(item, tuple) else item for item in group]


def split_last_purchase(log: PurchaseLog) -> tuple[PurchaseLog, dict[int, int]]:
    """Hold out each customer's last purchase line: (training log, customer -> held-out book)."""
    last_line: dict[int, int] = {}
    for line, customer in enumerate(log.customers.tolist()):
        last_line[customer] = line
    held_out_lines = np.fromiter(last_line.values(), dtype=np.int64)
    mask = np.ones(len(log), dtype=bool)
    mask[held_out_lines] = False
    held_out = {customer: int(log.book_ids[line]) for customer, line in last_line.items()}
    return log.take(mask), held_out


def train(books: list[SourceBook], log: PurchaseLog) -> Engine:
    return Engine.build(
        book_metas(books),
        customer_codes=log.customers,
        customers=list(range(log.customer_count)),
        book_ids=log.book_ids,
        at_seconds=log.at_seconds,
    )


@dataclass(frozen=True)
class Score:
    hit_rate: float
    ndcg: float
    customers: int


def evaluate(
    engine: Engine, held_out: dict[int, int], *, k: int = 10, variants: dict[str, Weights] | None = None, **options
) -> dict[str, Score]:
    """Hit-rate@k and NDCG@k of each variant's top-k for every held-out customer."""
    results = {}
    for name, weights in (variants or VARIANTS).items():
        hits = 0
        gain = 0.0
        for customer, book_id in held_out.items():
            picks = [r.book_id for r in engine.for_customer(customer, limit=k, weights=weights, **options)]
            rank = picks.index(book_id) + 1 if book_id in picks else None
            hits += rank is not None
            gain += ndcg_at(rank, k)
        count = max(len(held_out), 1)
        results[name] = Score(hits / count, gain / count, len(held_out))
    return results


ALL_TIME_POPULAR = "popular_all_time"


def evaluate_all_time_popularity(log: PurchaseLog, held_out: dict[int, int], *, k: int = 10) -> Score:
    """A second baseline outside the engine: plain purchase counts, no time decay.

    The planted tastes do not drift over the simulated year, so here the undecayed count
    is the stronger popularity baseline; the blend is compared with both.
    """
    book_ids, counts = np.unique(log.book_ids, return_counts=True)
    ranking = book_ids[np.lexsort((book_ids, -counts))].tolist()
    owned: dict[int, set[int]] = {}
    for customer, book_id in zip(log.customers.tolist(), log.book_ids.tolist(), strict=True):
        owned.setdefault(customer, set()).add(book_id)
    hits = 0
    gain = 0.0
    for customer, book_id in held_out.items():
        mine = owned.get(customer, set())
        picks = [b for b in ranking[: k + len(mine)] if b not in mine][:k]
        rank = picks.index(book_id) + 1 if book_id in picks else None
        hits += rank is not None
        gain += ndcg_at(rank, k)
    count = max(len(held_out), 1)
    return Score(hits / count, gain / count, len(held_out))


def markdown_table(results: dict[str, Score], *, k: int = 10) -> str:
    baselines = [results[name].hit_rate for name in ("popular", ALL_TIME_POPULAR) if name in results]
    baseline = max(baselines, default=0.0)
    lines = [
        f"| variant | hit-rate@{k} | NDCG@{k} | hit-rate vs best popularity baseline |",
        "|---|---:|---:|---:|",
    ]
    for name, score in results.items():
        ratio = f"{score.hit_rate / baseline:.1f}x" if baseline else "n/a"
        lines.append(f"| {name} | {score.hit_rate:.3f} | {score.ndcg:.3f} | {ratio} |")
    return "\n".join(lines)
