"""import_catalog: the real goodbooks-10k file, bad rows, re-imports, the command's report."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog import services
from catalog.importing import ImportOptions, books_import
from catalog.models import Author, Book

from .factories import outbox, outbox_types, stock_of

pytestmark = pytest.mark.django_db(databases=["catalog"])

GOODBOOKS = Path(__file__).resolve().parents[3] / "shared" / "data" / "goodbooks-10k" / "books.csv"
HEADER = [
    "book_id",
    "goodreads_book_id",
    "best_book_id",
    "work_id",
    "books_count",
    "isbn",
    "isbn13",
    "authors",
    "original_publication_year",
    "original_title",
    "title",
    "language_code",
    "average_rating",
    "ratings_count",
    "work_ratings_count",
    "work_text_reviews_count",
    "ratings_1",
    "ratings_2",
    "ratings_3",
    "ratings_4",
    "ratings_5",
    "image_url",
    "small_image_url",
]


def row(key: int | str, title: str, authors: str, **fields) -> dict:
    base = dict.fromkeys(HEADER, "")
    base.update(
        book_id="1",
        goodreads_book_id=str(key),
        title=title,
        authors=authors,
        original_publication_year="2001.0",
        language_code="eng",
        average_rating="3.9",
        image_url=f"https://images.gr-assets.com/books/{key}.jpg",
    )
    base.update(fields)
    return base


def write_csv(path: Path, rows: list[dict], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def book(key: int) -> Book:
    return Book.objects.using("catalog").get(goodreads_book_id=key)


@pytest.mark.skipif(not GOODBOOKS.exists(), reason="goodbooks-10k is not beside the checkout")
def test_the_real_goodbooks_file_imports_and_a_second_run_changes_nothing():
    first = books_import(GOODBOOKS, options=ImportOptions(stock=2), deliver=False)

    assert (first.rows, first.imported, first.updated, first.skipped_total) == (10_000, 10_000, 0, 0)
    assert Book.objects.using("catalog").count() == 10_000
    assert len(outbox("catalog.BookPublished")) == 10_000
    # Known ISBNs are exact and valid; the rest are honestly empty and counted.
    known = Book.objects.using("catalog").exclude(isbn13=None).count()
    assert known == sum(first.isbn[name] for name in ("from_isbn10_confirmed", "from_isbn10", "from_isbn13"))
    assert 9_000 < known < 10_000 and first.isbn["missing"] > 500
    hunger_games = book(2767052)
    assert (hunger_games.isbn13, hunger_games.publication_year, hunger_games.price) == (
        "9780439023481",
        2008,
        Decimal("12.99"),
    )
    assert stock_of(hunger_games) == (2, 0)
    potter = book(3)
    assert [link.author.name for link in potter.book_authors.order_by("position")] == ["J.K. Rowling", "Mary GrandPré"]
    assert Book.objects.using("catalog").filter(publication_year__lt=0).count() == 31
    assert Book.objects.using("catalog").filter(cover_url="").count() > 3000  # goodreads "nophoto" placeholders
    assert Author.objects.using("catalog").filter(name="Stephen King").count() == 1

    second = books_import(GOODBOOKS, options=ImportOptions(stock=2), deliver=False)

    assert (second.imported, second.updated, second.unchanged, second.events) == (0, 0, 10_000, 0)
    assert len(outbox()) == 10_000


def test_bad_rows_are_reported_by_line_and_skipped_while_the_rest_goes_in(tmp_path):
    path = write_csv(
        tmp_path / "books.csv",
        [
            row(101, "Good One", "Ann Author, Bob Writer"),  # line 2
            row(102, "", "Ann Author"),  # line 3: no title
            row(103, "No Authors", " , "),  # line 4
            row("abc", "Bad Key", "Ann Author"),  # line 5
            row(104, "Bad Year", "Ann Author", original_publication_year="19x5"),  # line 6
            row(101, "Duplicate Key", "Ann Author"),  # line 7
            row(105, "Multi\nLine Title", "Ann Author"),  # lines 8-9
            row(106, "After The Multi-line Row", "Ann Author", image_url="ftp://example.com/x.jpg"),  # line 10
            row(107, "Ancient", "Homer", original_publication_year="-750.0"),  # line 11
            row(108, "Du\x00ne", "Frank Herbert"),  # line 12
            row(109, "Babel", "Someone", language_code="en US"),  # line 13
        ],
    )

    report = books_import(path, deliver=False)

    assert report.problems == [
        (3, "title is empty"),
        (4, "authors is empty"),
        (5, "goodreads_book_id 'abc' is not a positive whole number"),
        (6, "original_publication_year '19x5' is not a year between -3000 and " + str(timezone.now().year + 2)),
        (7, "goodreads_book_id 101 already on line 2"),
        (10, "image_url 'ftp://example.com/x.jpg' is not an http(s) URL"),
        (12, "title contains a NUL character"),
        (13, "language_code 'en US' is not a language code (like eng or en-US)"),
    ]
    assert dict(report.skipped) == {
        "missing_title": 1,
        "missing_authors": 1,
        "bad_key": 1,
        "bad_year": 1,
        "duplicate_key": 1,
        "bad_cover_url": 1,
        "bad_characters": 1,
        "bad_language": 1,
    }
    assert report.imported == 3
    assert book(105).title == "Multi Line Title"
    assert book(107).publication_year == -750
    assert [link.author.name for link in book(101).book_authors.order_by("position")] == ["Ann Author", "Bob Writer"]


def test_line_numbers_stay_true_across_blank_lines_and_short_rows(tmp_path):
    path = tmp_path / "books.csv"
    path.write_text(
        "goodreads_book_id,title,authors\n11,One,Ann Author\n\n\n12,,Ann Author\n13,Short Row\n14,Four,Bo\n",
        encoding="utf-8",
    )

    report = books_import(path, deliver=False)

    assert report.problems == [(5, "title is empty"), (6, "authors is empty")]
    assert (report.rows, report.imported) == (4, 2)


def test_a_reimport_updates_what_changed_and_keeps_what_the_shop_owns(tmp_path):
    rows = [
        row(201, "Dune", "Frank Herbert", isbn="441172717", isbn13="9.78044117272e+12"),
        row(202, "Emma", "Jane Austen", original_publication_year="1815.0"),
    ]
    books_import(write_csv(tmp_path / "first.csv", rows), options=ImportOptions(stock=1), deliver=False)
    dune = book(201)
    assert dune.isbn13 == "9780441172719"
    services.book_update(book=dune, price=Decimal("20.00"))  # staff reprice the book
    services.stock_set(book=dune, on_hand=9)
    events_before = len(outbox())

    rows[0] = row(201, "Dune (40th Anniversary)", "Frank Herbert, Brian Herbert")  # ISBN columns now empty
    second = books_import(write_csv(tmp_path / "second.csv", rows), options=ImportOptions(stock=1), deliver=False)

    assert (second.imported, second.updated, second.unchanged) == (0, 1, 1)
    dune = book(201)
    assert dune.title == "Dune (40th Anniversary)"
    assert dune.isbn13 == "9780441172719"  # an empty value in the file erases nothing
    assert dune.price == Decimal("20.00")  # the computed price is for new books only
    assert stock_of(dune) == (9, 0)
    assert "brian herbert" in dune.search_document
    new_events = outbox()[events_before:]
    assert [(m.event_type, m.payload["title"], m.payload["authors"]) for m in new_events] == [
        ("catalog.BookUpdated", "Dune (40th Anniversary)", ["Frank Herbert", "Brian Herbert"])
    ]


def test_an_isbn_already_taken_is_left_empty_and_reported(tmp_path):
    path = write_csv(
        tmp_path / "books.csv",
        [
            row(301, "First Edition", "Ann Author", isbn="441172717"),
            row(302, "Same ISBN", "Ann Author", isbn="441172717"),
        ],
    )
    problems = []

    report = books_import(path, deliver=False, on_problem=lambda line, message: problems.append((line, message)))

    assert report.imported == 2 and report.isbn["duplicate"] == 1
    assert (book(301).isbn13, book(302).isbn13) == ("9780441172719", None)
    assert problems == [(3, "ISBN-13 9780441172719 already on line 2: left empty")]


@pytest.mark.django_db(databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_the_command_prints_progress_problems_and_a_summary(tmp_path):
    path = write_csv(
        tmp_path / "books.csv",
        [row(401, "Priced", "Ann Author", price="3.25"), row(402, "Unpriced", "Ann Author"), row(403, "", "X")],
        header=[*HEADER, "price"],
    )
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "import_catalog",
        str(path),
        "--default-price",
        "4.50",
        "--currency",
        "usd",
        "--stock",
        "3",
        stdout=out,
        stderr=err,
    )

    assert (book(401).price, book(402).price, book(402).currency) == (Decimal("3.25"), Decimal("4.50"), "USD")
    assert stock_of(book(402)) == (3, 0)
    assert "line 4: title is empty" in err.getvalue()
    assert "3/3 rows (100%)" in err.getvalue() and "rows/s" in err.getvalue() and "ETA" in err.getvalue()
    summary = out.getvalue()
    for expected in ("imported         2", "updated          0", "skipped          1   (missing_title: 1)"):
        assert expected in summary
    assert outbox_types() == ["catalog.BookPublished", "catalog.BookPublished"]
    assert all(message.published_at is not None for message in outbox())  # handed on to subscribers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "cannot read"),
        (["HEADERLESS"], "lacks the column(s) goodreads_book_id, authors"),
        (["LATIN1"], "is not UTF-8 text"),
        (["HUGE"], "line 2: not readable as CSV"),
        (["GOOD", "--currency", "euro"], "--currency"),
        (["GOOD", "--default-price", "cheap"], "--default-price"),
        (["GOOD", "--stock", "-1"], "--stock"),
    ],
)
def test_the_command_refuses_what_it_cannot_import(tmp_path, args, message):
    (tmp_path / "headerless.csv").write_text("title,author\nDune,Frank Herbert\n", encoding="utf-8")
    (tmp_path / "latin1.csv").write_bytes("goodreads_book_id,title,authors\n1,Les Misérables,Hugo\n".encode("latin-1"))
    (tmp_path / "huge.csv").write_text(f"goodreads_book_id,title,authors\n1,{'x' * 200_000},A\n", encoding="utf-8")
    good = write_csv(tmp_path / "good.csv", [row(501, "Fine", "Ann Author")])
    paths = {
        "HEADERLESS": str(tmp_path / "headerless.csv"),
        "LATIN1": str(tmp_path / "latin1.csv"),
        "HUGE": str(tmp_path / "huge.csv"),
        "GOOD": str(good),
        "missing.csv": str(tmp_path / "no.csv"),
    }

    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command(
            "import_catalog", *[paths.get(arg, arg) for arg in args], stdout=io.StringIO(), stderr=io.StringIO()
        )
    assert Book.objects.using("catalog").count() == 0
