"""Compiled statements (catalog/statements.py): the ORM's own rows, without building the query again."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from catalog.models import Book
from catalog.routers import DATABASE
from catalog.selectors import book_values
from catalog.statements import StatementCache
from tests.support.databases import on_each_database, use_database

from .factories import book_create

pytestmark = pytest.mark.django_db(databases=["catalog", "default"])


class CountingBuild:
    """A query builder that counts how often the cache had to build the queryset."""

    def __init__(self, build):
        self.build, self.calls = build, 0

    def __call__(self, *values):
        self.calls += 1
        return self.build(*values)


def by_title_after(title: str, pk: int):
    return book_values(Book.objects.filter(title__gt=title) | Book.objects.filter(title=title, pk__gt=pk)).order_by(
        "title", "id"
    )


@on_each_database
def test_a_shape_is_compiled_once_and_gives_the_orms_rows(database):
    use_database(database)
    books = [book_create(title=title, price=price) for title, price in (("A", "1.50"), ("B", "2"), ("C", "30.25"))]
    cache, build = StatementCache(DATABASE), CountingBuild(by_title_after)
    for title, pk in (("A", books[0].pk), ("B", 0), ("C", books[2].pk), ("", 0)):
        with CaptureQueriesContext(connections[DATABASE]) as queries:
            rows = cache.rows("after", build, (title, pk))
        assert rows == list(by_title_after(title, pk)), (title, pk)
        assert len(queries) == 1
    assert build.calls == 1  # compiled on the first call; the SQL served the other three
    first = cache.rows("after", build, ("", 0))[0]
    # The ORM's converters ran: an aware datetime and a Decimal, on SQLite as on PostgreSQL.
    assert isinstance(first["created_at"], datetime.datetime) and first["created_at"].tzinfo is not None
    assert first["price"] == Decimal("1.50") and isinstance(first["price"], Decimal)


def test_a_value_the_orm_transforms_is_never_compiled():
    """``icontains`` sends ``%word%``: the sentinel is not in the parameters as given, so the shape runs through the
    ORM every time (a compiled statement would have searched for the sentinel)."""
    book_create(title="The Dispossessed")
    book_create(title="Dune")
    cache = StatementCache(DATABASE)
    build = CountingBuild(lambda word: book_values(Book.objects.filter(title__icontains=word)))
    assert [row["title"] for row in cache.rows("search", build, ("dispossess",))] == ["The Dispossessed"]
    assert [row["title"] for row in cache.rows("search", build, ("dune",))] == ["Dune"]
    assert build.calls == 3  # once to try compiling, then each call through the ORM


def test_an_integer_beyond_64_bits_goes_through_the_orm():
    """The driver refuses it as a parameter (a 500); the ORM answers the lookup with its empty result."""
    book = book_create(title="Solaris")
    cache = StatementCache(DATABASE)
    build = CountingBuild(lambda pk: book_values(Book.objects.filter(pk=pk)))
    assert [row["id"] for row in cache.rows("by id", build, (book.pk,))] == [book.pk]
    assert cache.rows("by id", build, (2**63,)) == []
    assert build.calls == 2


def test_values_of_a_shape_must_not_be_booleans():
    """True and False change the SQL (``IS NULL``, negations): they belong in the key, and a shape given one is run
    through the ORM rather than compiled with it."""
    book_create(title="Kindred")
    cache = StatementCache(DATABASE)
    build = CountingBuild(lambda active: book_values(Book.objects.filter(active=active)))
    assert len(cache.rows("active", build, (True,))) == 1
    assert cache.rows("active", build, (False,)) == []
    assert build.calls == 2


@on_each_database
def test_integer_and_decimal_values_and_a_type_compiled_for_another(database):
    """``year > %s``: a year is an integer column of 32 bits, which the sentinel must fit (on PostgreSQL the ORM
    drops a comparison with a value beyond the column's range). A value of another type than compiled runs
    through the ORM."""
    use_database(database)
    book_create(title="Old", price="5.25", publication_year=1950)
    book_create(title="New", price="12.00", publication_year=2001)
    cache = StatementCache(DATABASE)
    build = CountingBuild(
        lambda year, price: book_values(Book.objects.filter(publication_year__gt=year, price__lt=price)).order_by("id")
    )
    assert [row["title"] for row in cache.rows("year, price", build, (1900, Decimal("10")))] == ["Old"]
    assert [row["title"] for row in cache.rows("year, price", build, (1990, Decimal("20")))] == ["New"]
    assert build.calls == 1
    assert [row["title"] for row in cache.rows("year, price", build, (1900, 20))] == ["Old", "New"]
    assert build.calls == 2  # an int where a Decimal was compiled: through the ORM


def test_a_shape_the_orm_answers_without_sql_is_never_compiled():
    """``pk__in=[]`` compiles to nothing (EmptyResultSet): the ORM's answer, an empty list, every time."""
    book_create(title="Beloved")
    cache = StatementCache(DATABASE)
    build = CountingBuild(lambda: book_values(Book.objects.filter(pk__in=[])))
    assert cache.rows("none", build, ()) == [] and cache.rows("none", build, ()) == []
    assert build.calls == 3


def test_the_oldest_statement_is_dropped_beyond_the_limit(monkeypatch):
    monkeypatch.setattr("catalog.statements.MAX_STATEMENTS", 2)
    book = book_create(title="Emma")
    cache = StatementCache(DATABASE)
    builds = {key: CountingBuild(lambda pk: book_values(Book.objects.filter(pk=pk))) for key in "abc"}
    for key in "abca":
        assert [row["id"] for row in cache.rows(key, builds[key], (book.pk,))] == [book.pk]
    assert builds["a"].calls == 2  # compiled, dropped for "c", compiled again
    assert builds["b"].calls == builds["c"].calls == 1
