"""Score the recommender offline on a generated purchase log with planted tastes (no database)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommendations import evaluation

DEFAULT_BOOKS = Path(settings.BASE_DIR).parent / "shared" / "data" / "goodbooks-10k" / "books.csv"


class Command(BaseCommand):
    help = (
        "Generates a purchase log with a planted taste structure from goodbooks-10k books.csv, holds out each "
        "customer's last purchase and reports hit-rate@10 and NDCG@10 of the blend, of each part alone, and of "
        "popularity (the served, time-decayed part and a plain all-time count). Runs the engine in memory; "
        "touches no database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=5000, help="How many customers to generate.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed of the generated log.")
        parser.add_argument("--books", type=Path, default=DEFAULT_BOOKS, help="A goodbooks-10k books.csv.")
        parser.add_argument("--k", type=int, default=10, help="Cut-off of hit-rate@k and NDCG@k.")

    def handle(self, *args, customers: int, seed: int, books: Path, k: int, **options):
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        if not books.is_file():
            raise CommandError(f"No books file at {books}: pass --books PATH/TO/books.csv.")
        errors: list[str] = []
        source = evaluation.load_goodbooks(books, errors=errors)
        for error in errors:
            self.stderr.write(f"skipped {error}")
        started = time.perf_counter()
        log = evaluation.generate_purchases(source, customers=customers, seed=seed)
        training, held_out = evaluation.split_last_purchase(log)
        engine = evaluation.train(source, training)
        self.stderr.write(
            f"{len(source):,} books, {customers:,} customers, {len(log):,} purchase lines "
            f"({len(held_out):,} held out); trained in {time.perf_counter() - started:.1f}s; scoring..."
        )
        started = time.perf_counter()
        results = evaluation.evaluate(engine, held_out, k=k)
        results[evaluation.ALL_TIME_POPULAR] = evaluation.evaluate_all_time_popularity(training, held_out, k=k)
        self.stderr.write(f"scored {len(results)} variants in {time.perf_counter() - started:.1f}s")
        self.stdout.write(evaluation.markdown_table(results, k=k))
