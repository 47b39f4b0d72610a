"""The book list and detail read rows, not model instances: the bytes must be the serializer's.

The reference is the model path the write endpoints still use (``selectors.book_get`` +
``BookSerializer``), rendered by the same renderer as the response, for the same data.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from catalog import selectors, services
from catalog.api.serializers import BookSerializer
from catalog.models import Book, Stock
from catalog.routers import DATABASE
from tests.support.databases import on_each_database, use_database

from .factories import author_create, book_create, client, genre_create

pytestmark = pytest.mark.django_db(databases=["catalog", "default"])
BOOKS = "/api/catalog/books/"


@pytest.fixture
def varied():
    """Every shape a row can take: several authors in credit order, genres sorted by name, no genre,
    no ISBN, an unknown or BCE year, no stock row, all copies reserved, withdrawn, odd characters."""
    herbert, anderson = author_create("Frank Herbert"), author_create("Kevin J. Anderson")
    scifi, classic, zen = genre_create("Science Fiction"), genre_create("Classics"), genre_create("Zen")
    books = [
        book_create(
            title="Dune: House Atreides",
            authors=[herbert, anderson],
            genres=[zen, scifi, classic],
            price="9.99",
            publication_year=1999,
            isbn13="9780553580303",
            description='Quotes " and \\ and ünïcode ✓',
            cover_url="https://covers.example/dune.jpg",
        ),
        book_create(title="Anderson first", authors=[anderson, herbert], price="12.50", on_hand=0),
        book_create(title="The Odyssey", authors=["Homer"], price="7.00", publication_year=-720, currency="USD"),
        book_create(title="Beowulf", authors=["Anonymous"], price="6", on_hand=3),
    ]
    Stock.objects.using(DATABASE).filter(book=books[3]).update(reserved=3)
    orphan = book_create(title="No stock row", authors=["Someone"])
    Stock.objects.using(DATABASE).filter(book=orphan).delete()
    withdrawn = book_create(title="Withdrawn", authors=["Someone"])
    services.book_withdraw(book=withdrawn)
    return [*books, orphan, withdrawn]


def _expected(response, book_ids: list[int], *, staff: bool, page: dict | None) -> bytes:
    books = [selectors.book_get(book_id=book_id) for book_id in book_ids]
    data = BookSerializer(books, many=True, context={"staff": staff}).data
    data = {"next": page["next"], "previous": page["previous"], "results": data} if page else data[0]
    renderer = response.accepted_renderer
    return renderer.render(data, response.accepted_media_type, response.renderer_context)


@on_each_database
@pytest.mark.parametrize("kind", ["anonymous", "staff"])
@pytest.mark.parametrize("ordering", ["title", "-title", "price", "-price", "year", "-year", "created", "-created"])
def test_every_list_page_is_byte_identical_to_the_serializer(database, varied, kind, ordering):
    """Forwards through every page, then back through them by the previous links: the same books, as the serializer
    makes them (the plain list runs its compiled statement, catalog/statements.py)."""
    use_database(database)
    api = client(kind)
    first = f"{BOOKS}?page_size=2&ordering={ordering}&status=" + ("all" if kind == "staff" else "active")

    def walk(url: str, link: str | None) -> tuple[list[list[int]], list[dict]]:
        pages, bodies = [], []
        while url:
            response = api.get(url)
            assert response.status_code == 200, response.content
            body = response.json()
            book_ids = [book["id"] for book in body["results"]]
            assert response.content == _expected(response, book_ids, staff=kind == "staff", page=body)
            pages.append(book_ids)
            bodies.append(body)
            url = body[link] if link else None  # None: this page only
        return pages, bodies

    forwards, bodies = walk(first, "next")
    assert len(forwards) == 3  # 6 books (staff, all) or 5 (public), 2 a page
    backwards, _ = walk(bodies[-1]["previous"], "previous")
    assert backwards == forwards[-2::-1]
    # Each page's previous link leads to the page before it (cursors on every kind of sort value, nulls too).
    for number, body in enumerate(bodies[1:], start=1):
        assert walk(body["previous"], None)[0] == [forwards[number - 1]]
    # The same pages as the ORM builds them for a filtered request (an empty filter: nothing left out).
    through_the_orm, _ = walk(first + "&in_stock=", "next")
    assert through_the_orm == forwards


@on_each_database
@pytest.mark.parametrize("kind", ["anonymous", "staff"])
def test_detail_is_byte_identical_to_the_serializer(database, varied, kind):
    use_database(database)
    api = client(kind)
    for book in varied:
        response = api.get(f"{BOOKS}{book.pk}/")
        assert response.status_code == 200, response.content
        assert response.content == _expected(response, [book.pk], staff=kind == "staff", page=None)


def test_a_missing_book_is_still_a_404_problem():
    response = client().get(f"{BOOKS}999999/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def test_the_list_and_detail_need_no_more_queries_than_before(varied):
    """Three each, as with select_related + two prefetches: the page, its authors, its genres."""
    catalog = connections[DATABASE]
    with CaptureQueriesContext(catalog) as page:
        assert client().get(BOOKS).status_code == 200
    with CaptureQueriesContext(catalog) as detail:
        assert client().get(f"{BOOKS}{varied[0].pk}/").status_code == 200
    assert len(page) == 3, [query["sql"] for query in page]
    assert len(detail) == 3, [query["sql"] for query in detail]
    Book.objects.using(DATABASE).all().delete()
    with CaptureQueriesContext(catalog) as empty:
        assert client().get(BOOKS).json()["results"] == []
    assert len(empty) == 1  # an empty page asks for no authors or genres


def test_sorting_on_a_column_without_nulls_asks_for_no_null_placement(varied):
    """NULLS LAST on title/price made SQLite sort every page in a temporary B-tree instead of
    walking the (title, id) index; only the nullable year needs the placement."""
    catalog = connections[DATABASE]
    with CaptureQueriesContext(catalog) as queries:
        client().get(BOOKS, {"ordering": "-price"})
    assert "NULLS" not in queries[0]["sql"].upper()
    with CaptureQueriesContext(catalog) as queries:
        client().get(BOOKS, {"ordering": "year"})
    assert "NULLS" in queries[0]["sql"].upper() or catalog.vendor == "postgresql"


def test_the_browsable_api_still_renders_the_list_and_the_detail(varied):
    for url in (BOOKS, f"{BOOKS}{varied[0].pk}/"):
        response = client().get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert "Dune: House Atreides" in response.content.decode()


def test_the_openapi_schema_still_describes_list_and_detail_with_the_book_serializer():
    schema = client().get("/api/catalog/schema/", {"format": "json"}).json()
    listing = schema["paths"]["/api/catalog/books/"]["get"]["responses"]["200"]["content"]["application/json"]
    detail = schema["paths"]["/api/catalog/books/{book_id}/"]["get"]["responses"]["200"]["content"]
    assert listing["schema"]["$ref"].endswith("/PaginatedBookList")
    assert detail["application/json"]["schema"]["$ref"] == "#/components/schemas/Book"
    book = schema["components"]["schemas"]["Book"]
    assert list(book["properties"]) == list(BookSerializer().fields)
