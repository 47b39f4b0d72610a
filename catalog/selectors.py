"""catalog's read queries."""

from __future__ import annotations

import re

from django.db import connections
from django.db.models import Prefetch, QuerySet

from catalog.models import Author, Book, BookAuthor, Genre, Stock, StockReservation
from catalog.routers import DATABASE
from catalog.statements import StatementCache

_WORD = re.compile(r"\w+", re.UNICODE)

#: The hot reads' SQL, compiled once per shape (catalog/statements.py).
statements = StatementCache(DATABASE)


def search_words(text: str) -> list[str]:
    """The words of a search, case-folded; punctuation separates words and is dropped."""
    return _WORD.findall(text.casefold())


def full_text_search_available() -> bool:
    return connections[DATABASE].vendor == "postgresql"


def book_queryset() -> QuerySet[Book]:
    """Books with what their public representation needs, in a fixed number of queries."""
    return Book.objects.select_related("stock").prefetch_related(
        Prefetch(
            "book_authors",
            queryset=BookAuthor.objects.select_related("author").order_by("position", "id"),
        ),
        Prefetch("genres", queryset=Genre.objects.order_by("name")),
    )


#: A book's columns with its stock's, as the list and detail read them: plain values, no model objects
#: (building a page of Book, Stock, BookAuthor, Author and Genre instances was most of a list request).
BOOK_COLUMNS = (
    *(field.attname for field in Book._meta.concrete_fields if field.name != "search_document"),
    "stock__on_hand",
    "stock__reserved",
)


def book_values(books: QuerySet[Book]) -> QuerySet:
    """``books`` as dicts of BOOK_COLUMNS (and any annotation, such as ``search_rank``), one LEFT JOIN on stock."""
    return books.values(*BOOK_COLUMNS, *books.query.annotation_select)


def _link_statements() -> tuple[str, str]:
    """The two queries that complete a page of books, as SQL over the models' tables.

    Written out once from the models' metadata rather than built by the ORM per request: their
    shape never changes (only the number of ids), they read integers and text that need no
    conversion, and building and compiling them was about half the cost of a book detail.
    Plain joins and IN lists, the same on SQLite and PostgreSQL.
    """
    link, tag = BookAuthor._meta, Book.genres.through._meta
    link_book, link_author = link.get_field("book").column, link.get_field("author").column
    position = link.get_field("position").column
    tag_book, tag_genre = tag.get_field("book").column, tag.get_field("genre").column
    authors = (
        f'SELECT l."{link_book}", a."id", a."name" FROM "{link.db_table}" l '
        f'INNER JOIN "{Author._meta.db_table}" a ON a."id" = l."{link_author}" '
        f'WHERE l."{link_book}" IN ({{ids}}) ORDER BY l."{position}", l."id"'
    )
    genres = (
        f'SELECT t."{tag_book}", g."id", g."name", g."slug" FROM "{tag.db_table}" t '
        f'INNER JOIN "{Genre._meta.db_table}" g ON g."id" = t."{tag_genre}" '
        f'WHERE t."{tag_book}" IN ({{ids}}) ORDER BY g."name", g."id"'
    )
    return authors, genres


_AUTHORS_SQL, _GENRES_SQL = _link_statements()


def book_rows_complete(rows: list[dict], *, cursor=None) -> list[dict]:
    """Adds ``authors`` (credit order) and ``genres`` (by name) to each row: one query each, none if no rows.

    ``cursor``: one of catalog's, when the caller has one open; otherwise one is opened here.
    """
    if not rows:
        return rows
    if cursor is None:
        with connections[DATABASE].cursor() as cursor:
            return book_rows_complete(rows, cursor=cursor)
    ids = [row["id"] for row in rows]
    authors: dict[int, list[dict]] = {book_id: [] for book_id in ids}
    genres: dict[int, list[dict]] = {book_id: [] for book_id in ids}
    placeholders = ", ".join(["%s"] * len(ids))
    cursor.execute(_AUTHORS_SQL.format(ids=placeholders), ids)
    for book_id, author_id, name in cursor.fetchall():
        authors[book_id].append({"id": author_id, "name": name})
    cursor.execute(_GENRES_SQL.format(ids=placeholders), ids)
    for book_id, genre_id, name, slug in cursor.fetchall():
        genres[book_id].append({"id": genre_id, "name": name, "slug": slug})
    for row in rows:
        row["authors"], row["genres"] = authors[row["id"]], genres[row["id"]]
    return rows


def book_list(*, include_withdrawn: bool = False, only_withdrawn: bool = False, search: str = "") -> QuerySet[Book]:
    """Books for a listing: active ones unless asked otherwise, matching every word of ``search``;
    read them with book_values and book_rows_complete.

    On PostgreSQL the search is full text (prefix match per word) and annotates ``search_rank``;
    elsewhere each word must occur (case-insensitively) in the title or an author's name.
    """
    books = Book.objects.all()
    if only_withdrawn:
        books = books.filter(active=False)
    elif not include_withdrawn:
        books = books.filter(active=True)
    words = search_words(search)
    if words:
        books = _search(books, words)
    return books


def _book_row_query(book_id: int, *, include_withdrawn: bool) -> QuerySet:
    books = Book.objects.filter(pk=book_id)
    if not include_withdrawn:
        books = books.filter(active=True)
    return book_values(books)[:1]


def book_row_get(*, book_id: int, include_withdrawn: bool = True) -> dict | None:
    """One book as a row (see book_values and book_rows_complete), or None: its three queries on one cursor."""
    with connections[DATABASE].cursor() as cursor:
        rows = statements.rows(
            ("book_row", include_withdrawn),
            lambda book_id: _book_row_query(book_id, include_withdrawn=include_withdrawn),
            (book_id,),
            cursor=cursor,
        )
        return book_rows_complete(rows, cursor=cursor)[0] if rows else None


def _search(books: QuerySet[Book], words: list[str]) -> QuerySet[Book]:
    if full_text_search_available():
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("search_document", config="simple")
        # Each word as a prefix (``harr`` finds Harry), all words required. Words are \w+ only,
        # so nothing in them is tsquery syntax. Normalization 1 favours shorter documents:
        # "dune" ranks the book titled Dune above Dune Messiah.
        query = SearchQuery(" & ".join(f"{word}:*" for word in words), search_type="raw", config="simple")
        return (
            books.alias(search_vector=vector)
            .annotate(search_rank=SearchRank(vector, query, normalization=1))
            .filter(search_vector=query)
        )
    for word in words:
        books = books.filter(search_document__icontains=word)
    return books


def book_get(*, book_id: int, include_withdrawn: bool = True) -> Book | None:
    books = book_queryset()
    if not include_withdrawn:
        books = books.filter(active=True)
    return books.filter(pk=book_id).first()


def author_list(*, search: str = "") -> QuerySet[Author]:
    authors = Author.objects.all()
    for word in search_words(search):
        authors = authors.filter(name__icontains=word)
    return authors


def author_get(*, author_id: int) -> Author | None:
    return Author.objects.filter(pk=author_id).first()


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.all()


def genre_get(*, genre_id: int) -> Genre | None:
    return Genre.objects.filter(pk=genre_id).first()


def stock_get(*, book_id: int) -> Stock:
    """A book's stock. ``book_create`` gives every book its row; a book from older data without
    one has no copies: an unsaved zero row is returned, nothing is written."""
    stock = Stock.objects.filter(book_id=book_id).first()
    return stock if stock is not None else Stock(book_id=book_id, on_hand=0, reserved=0)


def reservation_get(*, order_id) -> StockReservation | None:
    return StockReservation.objects.filter(order_id=order_id).prefetch_related("lines").first()
