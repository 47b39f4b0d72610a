"""Import books from a goodbooks-10k style CSV (``books.csv``): validate, upsert in batches, publish.

The rules (which ISBN is trusted, the price rule, what a re-import may change) are
documented in docs/catalog.md, "Importing books". In short:

- the key is ``goodreads_book_id``: a re-import updates, never duplicates, and a row that
  changes nothing writes nothing and publishes nothing;
- a row that cannot be read is reported with its line number and reason and skipped;
- an ISBN-13 is stored only when known exactly (never guessed), else left empty and counted;
- rows go in with bulk statements, one transaction per batch, whose events (outbox rows)
  commit with the batch.
"""

from __future__ import annotations

import csv
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from catalog.contracts import BookPublished, BookUpdated
from catalog.errors import CatalogImportError
from catalog.models import Author, Book, BookAuthor, Genre, Stock
from catalog.routers import DATABASE
from catalog.rows import BadRow, Row, parse_row
from catalog.services import book_names, book_state, search_document_of
from messaging import Event, deliver_pending, publish_many

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("goodreads_book_id", "title", "authors")


@dataclass(frozen=True)
class ImportOptions:
    currency: str = "EUR"
    default_price: Decimal | None = None
    stock: int = 0
    batch_size: int = 1000


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)
    isbn: Counter = field(default_factory=Counter)
    events: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


# --- the import ------------------------------------------------------------------------------


OnProgress = Callable[[int, int, ImportReport], None]
Problem = Callable[[int, str], None]


def books_import(
    path: str | Path,
    *,
    options: ImportOptions | None = None,
    on_progress: OnProgress | None = None,
    on_problem: Problem | None = None,
    deliver: bool = True,
) -> ImportReport:
    """Upsert every readable row of a goodbooks-style CSV; return what happened.

    The events are committed to the outbox with each batch. With ``deliver`` the transport
    is woken once at the end to carry them; without, the caller does it (:func:`events_deliver`),
    e.g. to time it apart. Either way nothing is lost: the outbox keeps what is not yet carried.

    Raises :class:`CatalogImportError` if the file cannot be read at all.
    """
    options = options or ImportOptions()
    report = ImportReport()
    started, started_cpu = time.monotonic(), time.process_time()
    path = Path(path)
    total = _count_rows(path)
    if on_progress:
        on_progress(0, total, report)  # the clock of the rate and ETA starts here

    def problem(line: int, code: str, message: str) -> None:
        report.skipped[code] += 1
        report.problems.append((line, message))
        if on_problem:
            on_problem(line, message)

    seen_keys: dict[int, int] = {}
    seen_isbns: dict[str, int] = {}
    author_ids: dict[str, int] = {}
    genre_ids: dict[str, int] = {}
    batch: list[Row] = []
    done = 0
    for line, data, has_price in _read(path):
        done += 1
        try:
            row = parse_row(data, line=line, has_price_column=has_price)
        except BadRow as bad:
            problem(line, bad.code, bad.message)
        else:
            if row.key in seen_keys:
                problem(line, "duplicate_key", f"goodreads_book_id {row.key} already on line {seen_keys[row.key]}")
            else:
                seen_keys[row.key] = line
                if row.isbn13 is not None and row.isbn13 in seen_isbns:
                    if on_problem:
                        on_problem(line, f"ISBN-13 {row.isbn13} already on line {seen_isbns[row.isbn13]}: left empty")
                    row.isbn13, row.isbn_outcome = None, "duplicate"
                elif row.isbn13 is not None:
                    seen_isbns[row.isbn13] = line
                batch.append(row)
        if len(batch) >= options.batch_size:
            _import_batch_or_explain(batch, options, report, author_ids, genre_ids, on_problem)
            batch = []
            if on_progress:
                on_progress(done, total, report)
    if batch:
        _import_batch_or_explain(batch, options, report, author_ids, genre_ids, on_problem)
    report.rows = done
    report.seconds = time.monotonic() - started
    report.cpu_seconds = time.process_time() - started_cpu
    if on_progress:
        on_progress(done, max(total, done), report)
    if deliver and report.events:
        events_deliver()
    return report


def events_deliver(on_progress: Callable[[int, int], None] | None = None) -> int:
    """Carry catalog's outbox: in one process every waiting event (this import's, and what an
    interrupted one left) goes to the subscribed handlers now, with ``on_progress(done, total)``,
    and the count is returned; with Kafka it only nudges the relay (0)."""
    return deliver_pending(DATABASE, on_progress)


def _count_rows(path: Path) -> int:
    """Data rows in the file, read once in full first: a file that is not UTF-8 CSV is refused
    before anything is written."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            try:
                return max(sum(1 for record in reader if record) - 1, 0)
            except csv.Error as error:
                raise CatalogImportError(f"{path}, line {reader.line_num}: not readable as CSV ({error})") from error
    except OSError as error:
        raise CatalogImportError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise CatalogImportError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from error


def _read(path: Path) -> Iterator[tuple[int, dict[str, str], bool]]:
    """(line number where the row starts, row, whether the file has a price column); blank lines skipped."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        columns = [name.strip() for name in next(reader, [])]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise CatalogImportError(
                f"{path} lacks the column(s) {', '.join(missing)}; a goodbooks-10k books.csv header starts with "
                "book_id,goodreads_book_id,best_book_id,work_id,books_count,isbn,isbn13,authors,..."
            )
        has_price = "price" in columns
        previous_end = reader.line_num
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if record:
                yield start, dict(zip(columns, record, strict=False)), has_price


def _import_batch_or_explain(batch: list[Row], *args) -> None:
    try:
        _import_batch(batch, *args)
    except IntegrityError as error:
        # Only a concurrent writer gets here (every row was checked): say what is in and how to go on.
        raise CatalogImportError(
            f"the rows of lines {batch[0].line}-{batch[-1].line} could not be written ({error}); "
            "the batches before them are imported; run the same command again to finish"
        ) from error


def _ensure_named(model, names: set[str], cache: dict[str, int], **extra) -> None:
    """Ids of authors/genres by name, creating the missing ones in bulk (concurrency-safe)."""
    missing = names - cache.keys()
    if not missing:
        return
    for name, pk in model.objects.filter(name__in=missing).values_list("name", "pk"):
        cache[name] = pk
    to_create = missing - cache.keys()
    if to_create:
        model.objects.bulk_create(
            [model(name=name, **{key: make(name) for key, make in extra.items()}) for name in sorted(to_create)],
            ignore_conflicts=True,
        )
        for name, pk in model.objects.filter(name__in=to_create).values_list("name", "pk"):
            cache[name] = pk
        unresolved = to_create - cache.keys()
        if unresolved:
            raise CatalogImportError(f"could not create {model.__name__} {sorted(unresolved)[:3]} (slug taken?)")


def _genre_slug(name: str) -> str:
    return slugify(name)[:100]


def _import_batch(
    rows: list[Row],
    options: ImportOptions,
    report: ImportReport,
    author_ids: dict[str, int],
    genre_ids: dict[str, int],
    on_problem: Problem | None,
) -> None:
    """One transaction: the batch's new books go in, its changed books are updated, their events recorded."""
    with transaction.atomic(using=DATABASE):
        existing = {
            book.goodreads_book_id: book for book in Book.objects.filter(goodreads_book_id__in=[r.key for r in rows])
        }
        _drop_isbns_of_other_books(rows, report, on_problem)
        _ensure_named(Author, {name for row in rows for name in row.authors}, author_ids)
        genre_names = {name for row in rows if row.genres for name in row.genres}
        _ensure_named(Genre, genre_names, genre_ids, slug=_genre_slug)

        events = _insert_new_rows(
            [row for row in rows if row.key not in existing], options, report, author_ids, genre_ids
        )
        events += _update_changed_rows(
            [row for row in rows if row.key in existing], existing, report, author_ids, genre_ids
        )
        # One multi-row insert per batch; the import wakes the transport once, at its end.
        publish_many(events, wake=False)
        report.events += len(events)


def _drop_isbns_of_other_books(rows: list[Row], report: ImportReport, on_problem: Problem | None) -> None:
    """An ISBN-13 the database already gives another book is left empty (and counted as a duplicate)."""
    isbn_owner = dict(
        Book.objects.filter(isbn13__in=[row.isbn13 for row in rows if row.isbn13]).values_list(
            "isbn13", "goodreads_book_id"
        )
    )
    for row in rows:
        owner = isbn_owner.get(row.isbn13) if row.isbn13 else None
        if owner is not None and owner != row.key:
            if on_problem:
                on_problem(row.line, f"ISBN-13 {row.isbn13} belongs to another book already: left empty")
            row.isbn13, row.isbn_outcome = None, "duplicate"
        report.isbn[row.isbn_outcome] += 1


def _insert_new_rows(
    new_rows: list[Row],
    options: ImportOptions,
    report: ImportReport,
    author_ids: dict[str, int],
    genre_ids: dict[str, int],
) -> list[Event]:
    """Books the catalog does not have yet: books, stock, credits and genres in bulk; a ``BookPublished`` each."""
    new_books = [
        Book(
            goodreads_book_id=row.key,
            title=row.title,
            isbn13=row.isbn13,
            language=row.language,
            publication_year=row.publication_year,
            description=row.description or "",
            cover_url=row.cover_url,
            price=row.price if row.price is not None else (options.default_price or row.rule_price),
            currency=row.currency or options.currency,
            search_document=search_document_of(row.title, row.authors),
        )
        for row in new_rows
    ]
    Book.objects.bulk_create(new_books)
    if new_books and new_books[0].pk is None:  # a backend that returns no ids from a bulk insert
        ids = dict(
            Book.objects.filter(goodreads_book_id__in=[row.key for row in new_rows]).values_list(
                "goodreads_book_id", "id"
            )
        )
        for book in new_books:
            book.pk = book.id = ids[book.goodreads_book_id]
    Stock.objects.bulk_create(Stock(book=book, on_hand=options.stock, reserved=0) for book in new_books)
    pairs = list(zip(new_books, new_rows, strict=True))
    _credit(
        author_ids,
        genre_ids,
        authors={book.id: row.authors for book, row in pairs},
        genres={book.id: row.genres or [] for book, row in pairs},
    )
    report.imported += len(new_books)
    return [
        BookPublished(**book_state(book, authors=row.authors, genres=row.genres or [], available=options.stock))
        for book, row in pairs
    ]


def _update_changed_rows(
    rows: list[Row],
    existing: dict[int, Book],
    report: ImportReport,
    author_ids: dict[str, int],
    genre_ids: dict[str, int],
) -> list[Event]:
    """Books the catalog has: the fields, credits and genres a row changes; a ``BookUpdated`` each whose
    public state changed. A row that changes nothing writes nothing."""
    existing_ids = [existing[row.key].id for row in rows]
    old_authors, old_genres = book_names(existing_ids)
    available = {
        book_id: on_hand - reserved
        for book_id, on_hand, reserved in Stock.objects.filter(book_id__in=existing_ids).values_list(
            "book_id", "on_hand", "reserved"
        )
    }
    now = timezone.now()
    changed_books: list[Book] = []
    changed_fields: set[str] = set()
    new_author_lists: dict[int, list[str]] = {}
    new_genre_lists: dict[int, list[str]] = {}
    states_before: dict[int, dict] = {}
    for row in rows:
        book = existing[row.key]
        fields = _changes(book, row)
        authors_changed = row.authors != old_authors[book.id]
        genres_changed = row.genres is not None and sorted(row.genres) != sorted(old_genres[book.id])
        if not fields and not authors_changed and not genres_changed:
            report.unchanged += 1
            continue
        states_before[book.id] = book_state(
            book, authors=old_authors[book.id], genres=old_genres[book.id], available=available.get(book.id, 0)
        )
        for name, value in fields.items():
            setattr(book, name, value)
        if authors_changed or "title" in fields:
            book.search_document = search_document_of(book.title, row.authors)
            fields["search_document"] = book.search_document
        book.updated_at = now
        changed_fields.update(fields, {"updated_at"})
        changed_books.append(book)
        if authors_changed:
            new_author_lists[book.id] = row.authors
        if genres_changed:
            new_genre_lists[book.id] = row.genres
    if changed_books:
        Book.objects.bulk_update(changed_books, sorted(changed_fields))
    if new_author_lists:
        BookAuthor.objects.filter(book_id__in=list(new_author_lists)).delete()
    if new_genre_lists:
        Book.genres.through.objects.filter(book_id__in=list(new_genre_lists)).delete()
    _credit(author_ids, genre_ids, authors=new_author_lists, genres=new_genre_lists)
    report.updated += len(changed_books)

    events: list[Event] = []
    for book in changed_books:
        before = states_before[book.id]
        after = book_state(
            book,
            authors=new_author_lists.get(book.id, old_authors[book.id]),
            genres=new_genre_lists.get(book.id, old_genres[book.id]),
            available=before["available"],
        )
        if after != before:
            events.append(BookUpdated(**after))
    return events


def _credit(
    author_ids: dict[str, int],
    genre_ids: dict[str, int],
    *,
    authors: dict[int, list[str]],
    genres: dict[int, list[str]],
) -> None:
    """Insert the author credits (in credited order) and genre links of books, in two bulk statements."""
    BookAuthor.objects.bulk_create(
        BookAuthor(book_id=book_id, author_id=author_ids[name], position=position)
        for book_id, names in authors.items()
        for position, name in enumerate(names)
    )
    through = Book.genres.through
    through.objects.bulk_create(
        through(book_id=book_id, genre_id=genre_ids[name]) for book_id, names in genres.items() for name in names
    )


def _changes(book: Book, row: Row) -> dict:
    """The fields a row changes on an existing book. An unknown value in the file (no ISBN, no
    year, no cover...) never erases a known one; price and currency change only when the file
    gives them (a computed price is for new books only, so a staff member's price stays)."""
    wanted = {"title": row.title}
    if row.isbn13:
        wanted["isbn13"] = row.isbn13
    if row.language:
        wanted["language"] = row.language
    if row.publication_year is not None:
        wanted["publication_year"] = row.publication_year
    if row.cover_url:
        wanted["cover_url"] = row.cover_url
    if row.description:
        wanted["description"] = row.description
    if row.price is not None:
        wanted["price"] = row.price
    if row.currency:
        wanted["currency"] = row.currency
    return {name: value for name, value in wanted.items() if getattr(book, name) != value}
