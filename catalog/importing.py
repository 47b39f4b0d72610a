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
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from catalog import isbn as isbns
from catalog.contracts import BookPublished, BookUpdated
from catalog.errors import CatalogImportError
from catalog.models import Author, Book, BookAuthor, Genre, Stock
from catalog.routers import DATABASE
from catalog.services import book_names, book_state, search_document_of
from messaging import Event, publish_many
from messaging.transports import get_transport

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("goodreads_book_id", "title", "authors")
#: goodbooks-10k wrote ``isbn13`` as floats with 12 significant digits (``9.78043902348e+12``).
ISBN13_FLOAT_DIGITS = 12
MAX_YEAR_AHEAD = 2
MIN_YEAR = -3000
PLACEHOLDER_COVER = "/nophoto/"

_url = URLValidator(schemes=["http", "https"])


class BadRow(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


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


@dataclass
class Row:
    line: int
    key: int
    title: str
    authors: list[str]
    isbn13: str | None
    isbn_outcome: str
    language: str
    publication_year: int | None
    cover_url: str
    price: Decimal | None
    currency: str | None
    genres: list[str] | None
    description: str | None
    rule_price: Decimal


# --- reading one row -------------------------------------------------------------------------


def default_price(*, publication_year: int | None, average_rating: float | None) -> Decimal:
    """The price of a book whose file gives none (docs/catalog.md, "Price rule").

    By age of the work, as a shop prices editions: old classics are cheap paperbacks,
    recent books cost more; much-loved books (average rating 4.25 or more) one more.
    """
    if publication_year is None:
        price = Decimal("9.99")
    elif publication_year < 1900:
        price = Decimal("6.99")
    elif publication_year < 1980:
        price = Decimal("8.99")
    elif publication_year < 2000:
        price = Decimal("9.99")
    elif publication_year < 2010:
        price = Decimal("11.99")
    else:
        price = Decimal("12.99")
    if average_rating is not None and average_rating >= 4.25:
        price += Decimal("1.00")
    return price


def resolve_isbn13(isbn10_text: str, isbn13_text: str) -> tuple[str | None, str]:
    """The ISBN-13 a goodbooks row proves, and how (an outcome name counted in the report).

    - ``isbn`` (ISBN-10, leading zeros lost) valid, ``isbn13`` absent or agreeing: its ISBN-13;
    - ``isbn`` valid but ``isbn13`` names another ISBN: the row contradicts itself, none;
    - ``isbn`` absent or invalid: from ``isbn13`` only if exactly one valid ISBN-13 reads as it;
    - otherwise none.
    """
    isbn10_text, isbn13_text = isbn10_text.strip(), isbn13_text.strip()
    names_an_isbn13 = bool(isbn13_text) and _looks_like_isbn13(isbn13_text)
    if isbn10_text:
        isbn10 = isbns.normalize(isbn10_text).zfill(10)
        if isbns.is_valid_isbn10(isbn10):
            converted = isbns.isbn10_to_isbn13(isbn10)
            if not names_an_isbn13:
                return converted, "from_isbn10"
            if isbns.reads_as(converted, isbn13_text, significant_digits=ISBN13_FLOAT_DIGITS):
                return converted, "from_isbn10_confirmed"
            return None, "conflict"
    candidates = isbns.isbn13_candidates(isbn13_text, significant_digits=ISBN13_FLOAT_DIGITS) if isbn13_text else []
    if len(candidates) == 1:
        return candidates[0], "from_isbn13"
    if names_an_isbn13:
        return None, "ambiguous" if candidates else "invalid"
    if isbn10_text:
        return None, "invalid"
    return None, "missing"


def _looks_like_isbn13(text: str) -> bool:
    """Whether a float-notation value is a 13-digit number starting 978/979 (an ISBN's shape)."""
    try:
        value = int(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        return False
    return 9_780_000_000_000 <= value < 9_800_000_000_000


def _integer(text: str) -> int | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def parse_row(data: dict[str, str], *, line: int, has_price_column: bool) -> Row:
    """One CSV row as a Row; raises :class:`BadRow` naming what is wrong."""

    def value(column: str) -> str:
        return (data.get(column) or "").strip()

    for column, text in data.items():
        if "\x00" in text:  # PostgreSQL text cannot hold it, and no title or name has one
            raise BadRow("bad_characters", f"{column} contains a NUL character")

    key_text = value("goodreads_book_id")
    if not key_text:
        raise BadRow("missing_key", "goodreads_book_id is empty")
    if not (key_text.isascii() and key_text.isdigit()) or int(key_text) == 0:
        raise BadRow("bad_key", f"goodreads_book_id {key_text!r} is not a positive whole number")
    key = int(key_text)

    title = " ".join(value("title").split())
    if not title:
        raise BadRow("missing_title", "title is empty")
    if len(title) > Book._meta.get_field("title").max_length:
        raise BadRow("bad_title", f"title is longer than {Book._meta.get_field('title').max_length} characters")

    authors = []
    for name in value("authors").split(","):
        name = " ".join(name.split())
        if name and name not in authors:
            authors.append(name)
    if not authors:
        raise BadRow("missing_authors", "authors is empty")
    too_long = [name for name in authors if len(name) > Author._meta.get_field("name").max_length]
    if too_long:
        raise BadRow("bad_authors", f"author name longer than 255 characters: {too_long[0][:40]}...")

    year_text = value("original_publication_year")
    publication_year = None
    if year_text:
        publication_year = _integer(year_text)
        latest = timezone.now().year + MAX_YEAR_AHEAD
        if publication_year is None or not MIN_YEAR <= publication_year <= latest:
            raise BadRow(
                "bad_year",
                f"original_publication_year {year_text!r} is not a year between {MIN_YEAR} and {latest}",
            )

    language = value("language_code")
    if len(language) > Book._meta.get_field("language").max_length:
        raise BadRow("bad_language", f"language_code {language[:40]!r} is longer than 16 characters")

    cover_url = value("image_url")
    if PLACEHOLDER_COVER in cover_url:
        cover_url = ""  # goodreads' "no photo" image: the shop shows its own placeholder
    if cover_url:
        try:
            _url(cover_url)
        except ValidationError:
            raise BadRow("bad_cover_url", f"image_url {cover_url[:80]!r} is not an http(s) URL") from None
        if len(cover_url) > Book._meta.get_field("cover_url").max_length:
            raise BadRow("bad_cover_url", "image_url is longer than 500 characters")

    price = None
    if has_price_column and value("price"):
        try:
            price = Decimal(value("price"))
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
            raise BadRow("bad_price", f"price {value('price')!r} is not an amount like 12.99")
        if price >= Decimal("1e8"):
            raise BadRow("bad_price", f"price {value('price')!r} is too large")
    currency = value("currency").upper() or None
    if currency is not None and not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise BadRow("bad_currency", f"currency {value('currency')!r} is not a 3-letter ISO 4217 code")

    genres = None
    if value("genres"):
        genres = []
        for name in value("genres").split("|"):
            name = " ".join(name.split())
            if name and name not in genres:
                genres.append(name)
        if any(len(name) > 100 or not slugify(name) for name in genres):
            raise BadRow("bad_genres", "a genre name is longer than 100 characters or has no letters")

    isbn13, isbn_outcome = resolve_isbn13(value("isbn"), value("isbn13"))
    try:
        rating = float(value("average_rating")) if value("average_rating") else None
    except ValueError:
        rating = None
    return Row(
        line=line,
        key=key,
        title=title,
        authors=authors,
        isbn13=isbn13,
        isbn_outcome=isbn_outcome,
        language=language,
        publication_year=publication_year,
        cover_url=cover_url,
        price=price,
        currency=currency,
        genres=genres,
        description=value("description") or None,
        rule_price=default_price(publication_year=publication_year, average_rating=rating),
    )


# --- the import ------------------------------------------------------------------------------


Progress = Callable[[int, int, ImportReport], None]
Problem = Callable[[int, str], None]


def books_import(
    path: str | Path,
    *,
    options: ImportOptions | None = None,
    on_progress: Progress | None = None,
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


def events_deliver() -> None:
    """Wake the transport for catalog's outbox. In one process this hands every imported event
    to the subscribed handlers now; with Kafka it only nudges the relay."""
    get_transport().wake(DATABASE)


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
    with transaction.atomic(using=DATABASE):
        existing = {
            book.goodreads_book_id: book
            for book in Book.objects.filter(goodreads_book_id__in=[row.key for row in rows])
        }
        existing_ids = [book.id for book in existing.values()]
        old_authors, old_genres = book_names(existing_ids)
        available = dict(Stock.objects.filter(book_id__in=existing_ids).values_list("book_id", "on_hand"))
        reserved = dict(Stock.objects.filter(book_id__in=existing_ids).values_list("book_id", "reserved"))
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

        _ensure_named(Author, {name for row in rows for name in row.authors}, author_ids)
        genre_names = {name for row in rows if row.genres for name in row.genres}
        _ensure_named(Genre, genre_names, genre_ids, slug=_genre_slug)

        now = timezone.now()
        new_rows = [row for row in rows if row.key not in existing]
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

        changed_books: list[Book] = []
        changed_fields: set[str] = set()
        new_author_lists: dict[int, list[str]] = {}
        new_genre_lists: dict[int, list[str]] = {}
        states_before: dict[int, dict] = {}
        for row in rows:
            book = existing.get(row.key)
            if book is None:
                continue
            before = book_state(
                book,
                authors=old_authors[book.id],
                genres=old_genres[book.id],
                available=available.get(book.id, 0) - reserved.get(book.id, 0),
            )
            fields = _changes(book, row)
            authors_changed = row.authors != old_authors[book.id]
            genres_changed = row.genres is not None and sorted(row.genres) != sorted(old_genres[book.id])
            if not fields and not authors_changed and not genres_changed:
                report.unchanged += 1
                continue
            states_before[book.id] = before
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

        BookAuthor.objects.bulk_create(
            [
                BookAuthor(book_id=book.id, author_id=author_ids[name], position=position)
                for book, row in zip(new_books, new_rows, strict=True)
                for position, name in enumerate(row.authors)
            ]
            + [
                BookAuthor(book_id=book_id, author_id=author_ids[name], position=position)
                for book_id, names in new_author_lists.items()
                for position, name in enumerate(names)
            ]
        )
        through = Book.genres.through
        through.objects.bulk_create(
            [
                through(book_id=book.id, genre_id=genre_ids[name])
                for book, row in zip(new_books, new_rows, strict=True)
                for name in row.genres or ()
            ]
            + [
                through(book_id=book_id, genre_id=genre_ids[name])
                for book_id, names in new_genre_lists.items()
                for name in names
            ]
        )

        events: list[Event] = [
            BookPublished(**book_state(book, authors=row.authors, genres=row.genres or [], available=options.stock))
            for book, row in zip(new_books, new_rows, strict=True)
        ]
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
        # One multi-row insert per batch; the import wakes the transport once, at its end.
        publish_many(events, wake=False)
        report.events += len(events)
        report.imported += len(new_books)
        report.updated += len(changed_books)


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
