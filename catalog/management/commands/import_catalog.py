"""``manage.py import_catalog books.csv``: load a goodbooks-10k style CSV into the catalog."""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.errors import CatalogImportError
from catalog.importing import ImportOptions, ImportReport, books_import, events_deliver
from messaging import Progress

KNOWN_ISBN = ("from_isbn10_confirmed", "from_isbn10", "from_isbn13")
ROWS = "rows"


class RowProgress(Progress):
    """The one progress helper (pacing, redraw on a terminal, phase times), with the import's
    wording of a counted line: ``1,000/10,000 rows (10%)  2,500 rows/s  ETA 4s``."""

    @staticmethod
    def line(phase: str, done: int, total: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        remaining = (total - done) / rate if rate and total > done else 0.0
        percent = 100 * done / total if total else 100.0
        return f"{done:,}/{total:,} {phase} ({percent:.0f}%)  {rate:,.0f} {phase}/s  ETA {remaining:.0f}s"


def _price(text: str) -> Decimal:
    try:
        price = Decimal(text)
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
        raise CommandError(f"--default-price {text!r} is not an amount like 9.99")
    return price


class Command(BaseCommand):
    help = (
        "Import books from a goodbooks-10k style books.csv: upsert by goodreads_book_id, report bad rows "
        "by line number and go on, publish catalog events. Re-running with the same file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV with at least goodreads_book_id, title, authors (goodbooks-10k layout)")
        parser.add_argument(
            "--default-price",
            help="price of new books whose row has none (default: the price rule in docs/catalog.md)",
        )
        parser.add_argument("--currency", default="EUR", help="currency of new books (ISO 4217; default EUR)")
        parser.add_argument("--stock", type=int, default=0, help="copies on hand for each new book (default 0)")
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per transaction (default 1000)")

    def handle(self, *args, **options) -> None:
        currency = options["currency"].strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise CommandError(f"--currency {options['currency']!r} is not a 3-letter ISO 4217 code like EUR")
        if options["stock"] < 0:
            raise CommandError("--stock cannot be negative")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        import_options = ImportOptions(
            currency=currency,
            default_price=_price(options["default_price"]) if options["default_price"] is not None else None,
            stock=options["stock"],
            batch_size=options["batch_size"],
        )
        self.verbosity = options["verbosity"]
        # The raw stream: OutputWrapper would end every write with a newline, and on a
        # terminal the progress line is redrawn in place.
        self.progress = RowProgress(self.stderr._out)
        try:
            report = books_import(
                options["file"],
                options=import_options,
                on_progress=self.rows_done if self.verbosity >= 1 else None,
                on_problem=self.problem,
                deliver=False,
            )
        except CatalogImportError as error:
            raise CommandError(str(error)) from error
        self.progress.finish()
        self.summary(options["file"], report)
        # Always: events an interrupted earlier import recorded but never delivered go now too.
        started = time.monotonic()
        delivered = events_deliver(self.events_done if self.verbosity >= 1 else None)
        self.progress.finish()
        if delivered:
            self.stdout.write(
                f"  delivered  {delivered:,} events in {time.monotonic() - started:.1f}s (in this process)"
            )
        elif report.events:
            self.stdout.write(f"  delivered  in {time.monotonic() - started:.1f}s (transport: events handed on)")

    def problem(self, line: int, message: str) -> None:
        if self.verbosity >= 1:
            if self.progress.tty:
                self.stderr.write("\r\x1b[2K", ending="")  # clear the progress line being redrawn
            self.stderr.write(f"line {line}: {message}", style_func=self.style.WARNING)

    def events_done(self, done: int, total: int) -> None:
        if total:
            self.progress("delivering events to the handlers in this process", done, total)

    def rows_done(self, done: int, total: int, report: ImportReport) -> None:
        self.progress(
            ROWS,
            done,
            total,
            f"new {report.imported:,}  updated {report.updated:,}  unchanged {report.unchanged:,}  "
            f"skipped {report.skipped_total:,}",
        )

    def summary(self, file: str, report: ImportReport) -> None:
        rate = report.rows / report.seconds if report.seconds else 0
        skipped = ", ".join(f"{code}: {count:,}" for code, count in report.skipped.most_common())
        known = sum(report.isbn[name] for name in KNOWN_ISBN)
        unknown = sum(count for name, count in report.isbn.items() if name not in KNOWN_ISBN)
        known_detail = ", ".join(f"{name} {report.isbn[name]:,}" for name in KNOWN_ISBN if report.isbn[name])
        unknown_detail = ", ".join(
            f"{name} {count:,}" for name, count in report.isbn.most_common() if name not in KNOWN_ISBN
        )
        lines = [
            f"Imported {file}: {report.rows:,} rows in {report.seconds:.1f}s (CPU {report.cpu_seconds:.1f}s, "
            f"{rate:,.0f} rows/s)",
            f"  imported   {report.imported:>7,}",
            f"  updated    {report.updated:>7,}",
            f"  unchanged  {report.unchanged:>7,}",
            f"  skipped    {report.skipped_total:>7,}" + (f"   ({skipped})" if skipped else ""),
            f"  ISBN-13    {known:>7,} known"
            + (f" ({known_detail})" if known_detail else "")
            + f"; {unknown:,} left empty"
            + (f" ({unknown_detail})" if unknown_detail else ""),
            f"  events     {report.events:>7,} recorded in the outbox",
        ]
        self.stdout.write("\n".join(lines))
