"""Reading the catalog over HTTP: list, search, filters, ordering, cursor pages, detail."""

from __future__ import annotations

import pytest
from django.db import connections

from catalog import services
from catalog.api.pagination import KeysetPagination

from .factories import author_create, book_create, books_bulk_create, client, error_fields, genre_create

pytestmark = pytest.mark.django_db(databases=["catalog", "default"])
BOOKS = "/api/catalog/books/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [book["id"] for book in response.json()["results"]]


@pytest.fixture
def shelf():
    herbert, austen = author_create("Frank Herbert"), author_create("Jane Austen")
    scifi, classic = genre_create("Science Fiction"), genre_create("Classics")
    return {
        "dune": book_create(
            title="Dune", authors=[herbert], genres=[scifi], price="9.99", publication_year=1965, language="eng"
        ),
        "messiah": book_create(
            title="Dune Messiah", authors=[herbert], genres=[scifi], price="12.50", publication_year=1969, on_hand=0
        ),
        "emma": book_create(
            title="Emma", authors=[austen], genres=[classic], price="5.00", publication_year=1815, language="en-GB"
        ),
        "odyssey": book_create(title="The Odyssey", authors=["Homer"], price="7.00", publication_year=-720),
        "anon": book_create(title="Beowulf", authors=["Anonymous"], price="6.00"),  # year unknown
    }


def test_the_list_shows_books_with_authors_genres_price_and_availability(shelf):
    response = client().get(BOOKS)

    dune = next(book for book in response.json()["results"] if book["id"] == shelf["dune"].pk)
    assert dune["title"] == "Dune"
    assert [author["name"] for author in dune["authors"]] == ["Frank Herbert"]
    assert [genre["slug"] for genre in dune["genres"]] == ["science-fiction"]
    assert (dune["price"], dune["currency"], dune["available"], dune["active"]) == ("9.99", "EUR", 10, True)
    assert "on_hand" not in dune and "goodreads_book_id" not in dune  # staff only
    assert ids(response) == [shelf[name].pk for name in ("anon", "dune", "messiah", "emma", "odyssey")]


def test_search_matches_every_word_in_title_or_authors(shelf):
    assert ids(client().get(BOOKS, {"search": "dune"})) == [shelf["dune"].pk, shelf["messiah"].pk]
    assert set(ids(client().get(BOOKS, {"search": "herbert messiah"}))) == {shelf["messiah"].pk}
    assert ids(client().get(BOOKS, {"search": "AUSTEN"})) == [shelf["emma"].pk]
    assert ids(client().get(BOOKS, {"search": "dune austen"})) == []
    assert len(ids(client().get(BOOKS, {"search": "  ,; "}))) == 5  # no words: no search


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"genre": "classics,science-fiction"}, ["dune", "messiah", "emma"]),
        ({"language": "eng,en-GB"}, ["dune", "emma"]),
        ({"price_min": "6", "price_max": "9.99"}, ["anon", "dune", "odyssey"]),
        ({"year_min": "-800", "year_max": "1900"}, ["emma", "odyssey"]),
        ({"year_min": "1966"}, ["messiah"]),
        ({"in_stock": "false"}, ["messiah"]),
        ({"in_stock": "true", "search": "dune"}, ["dune"]),
    ],
)
def test_filters(shelf, params, expected):
    assert set(ids(client().get(BOOKS, params))) == {shelf[name].pk for name in expected}


def test_filter_by_authors(shelf):
    herbert = shelf["dune"].book_authors.get().author_id
    homer = shelf["odyssey"].book_authors.get().author_id

    assert ids(client().get(BOOKS, {"author": herbert})) == [shelf["dune"].pk, shelf["messiah"].pk]
    assert ids(client().get(BOOKS, {"author": f"{herbert},{homer}", "ordering": "year"})) == [
        shelf["odyssey"].pk,
        shelf["dune"].pk,
        shelf["messiah"].pk,
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"author": "frank"}, "author"),
        ({"price_min": "cheap"}, "price_min"),
        ({"price_min": "-1"}, "price_min"),
        ({"price_min": "10", "price_max": "5"}, "price_max"),
        ({"year_max": "1999.5"}, "year_max"),
        ({"year_min": "1999.0"}, "year_min"),
        ({"author": "3.0"}, "author"),
        ({"year_min": "2000", "year_max": "1990"}, "year_max"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"genre": "sci fi!"}, "genre"),
        ({"language": "{'a': []}"}, "language"),
        ({"language": "eng,en US"}, "language"),
        ({"ordering": "rating"}, "ordering"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "gone"}, "status"),
    ],
)
def test_unreadable_parameters_are_a_400_naming_the_parameter(shelf, params, field):
    response = client().get(BOOKS, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in error_fields(response.json())


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("title", ["anon", "dune", "messiah", "emma", "odyssey"]),
        ("-title", ["odyssey", "emma", "messiah", "dune", "anon"]),
        ("price", ["emma", "anon", "odyssey", "dune", "messiah"]),
        ("-price", ["messiah", "dune", "odyssey", "anon", "emma"]),
        ("year", ["odyssey", "emma", "dune", "messiah", "anon"]),  # unknown year last
        ("-year", ["messiah", "dune", "emma", "odyssey", "anon"]),  # unknown year last too
        ("created", ["dune", "messiah", "emma", "odyssey", "anon"]),
        ("-created", ["anon", "odyssey", "emma", "messiah", "dune"]),
    ],
)
def test_ordering(shelf, ordering, expected):
    assert ids(client().get(BOOKS, {"ordering": ordering})) == [shelf[name].pk for name in expected]


@pytest.mark.parametrize("ordering", ["year", "-year", "price", "-title"])
def test_cursor_pages_walk_forward_and_back_without_gaps_or_repeats(shelf, ordering):
    everything = ids(client().get(BOOKS, {"ordering": ordering}))
    pages, response = [], client().get(BOOKS, {"ordering": ordering, "page_size": 2})
    while True:
        pages.append(ids(response))
        if not response.json()["next"]:
            break
        response = client().get(response.json()["next"])
    assert [book for page in pages for book in page] == everything
    assert [len(page) for page in pages] == [2, 2, 1]

    backwards = []
    while response.json()["previous"]:
        response = client().get(response.json()["previous"])
        backwards.insert(0, ids(response))
    assert backwards == pages[:-1]


def test_the_first_page_without_parameters_links_to_the_next_with_the_cursor_alone(shelf, monkeypatch):
    monkeypatch.setattr(KeysetPagination, "default_page_size", 2)
    first = client().get(BOOKS)

    link = first.json()["next"]
    assert link.startswith("http://testserver/api/catalog/books/?cursor=") and "&" not in link
    second = client().get(link)
    assert not set(ids(first)) & set(ids(second))
    assert ids(client().get(second.json()["previous"])) == ids(first)


def test_a_cursor_from_another_ordering_is_refused(shelf):
    next_link = client().get(BOOKS, {"ordering": "price", "page_size": 2}).json()["next"]

    response = client().get(next_link.replace("ordering=price", "ordering=title"))

    assert response.status_code == 400 and "cursor" in error_fields(response.json())


def test_page_size_is_capped():
    books_bulk_create(120)

    response = client().get(BOOKS, {"page_size": 1000})
    default = client().get(BOOKS)

    assert len(ids(response)) == 100 and response.json()["next"]
    assert len(ids(default)) == 20


def test_withdrawn_books_are_hidden_from_the_public_but_staff_may_list_them(shelf):
    services.book_withdraw(book=shelf["emma"])

    assert shelf["emma"].pk not in ids(client().get(BOOKS))
    assert client("customer").get(BOOKS, {"status": "withdrawn"}).status_code == 403
    assert client().get(BOOKS, {"status": "all"}).status_code == 403
    assert ids(client("staff").get(BOOKS, {"status": "withdrawn"})) == [shelf["emma"].pk]
    assert len(ids(client("staff").get(BOOKS, {"status": "all"}))) == 5
    # The detail still answers (a customer's old link shows the book is no longer sold).
    assert client().get(f"{BOOKS}{shelf['emma'].pk}/").json()["active"] is False


def test_book_detail_and_staff_fields(shelf):
    url = f"{BOOKS}{shelf['messiah'].pk}/"

    public = client().get(url).json()
    staff = client("staff").get(url).json()

    assert (public["title"], public["available"]) == ("Dune Messiah", 0)
    assert (staff["on_hand"], staff["reserved"], staff["available"]) == (0, 0, 0)
    assert client().get(f"{BOOKS}999999/").status_code == 404


def test_authors_and_genres_are_listed(shelf):
    authors = client().get("/api/catalog/authors/", {"search": "herb"}).json()["results"]
    genres = client().get("/api/catalog/genres/").json()["results"]

    assert [author["name"] for author in authors] == ["Frank Herbert"]
    assert [(genre["name"], genre["slug"]) for genre in genres] == [
        ("Classics", "classics"),
        ("Science Fiction", "science-fiction"),
    ]
    assert client().get(f"/api/catalog/authors/{authors[0]['id']}/").json()["name"] == "Frank Herbert"


def test_the_list_takes_a_fixed_number_of_queries(django_assert_max_num_queries):
    books_bulk_create(30)

    with django_assert_max_num_queries(4, using="catalog"):
        assert len(ids(client().get(BOOKS, {"page_size": 30}))) == 30


@pytest.mark.postgres
def test_full_text_search_on_postgresql_matches_prefixes_ranks_and_is_indexed(shelf):
    if connections["catalog"].vendor != "postgresql":
        pytest.skip("full-text search runs on PostgreSQL (make test starts one)")
    book_create(title="Harry Potter and the Chamber of Secrets", authors=["J.K. Rowling"])

    assert len(ids(client().get(BOOKS, {"search": "harr rowl"}))) == 1
    assert ids(client().get(BOOKS, {"search": "dune"})) == [shelf["dune"].pk, shelf["messiah"].pk]
    assert ids(client().get(BOOKS, {"search": "dune", "ordering": "-price"})) == [
        shelf["messiah"].pk,
        shelf["dune"].pk,
    ]
    # tsquery operators in the input are punctuation, never syntax:
    assert ids(client().get(BOOKS, {"search": "dune & | ! :* ("})) == [shelf["dune"].pk, shelf["messiah"].pk]
    with connections["catalog"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'catalog_book_search_gin'")
        assert cursor.fetchone() == (1,)


def test_customers_read_like_anyone_and_the_module_root_lists_the_resources(shelf):
    assert len(ids(client("customer").get(BOOKS))) == 5
    assert set(client().get("/api/catalog/").json()) == {"book-list", "author-list", "genre-list"}


def test_the_openapi_schema_documents_the_list_parameters():
    schema = client().get("/api/catalog/schema/", {"format": "json"})

    assert schema.status_code == 200
    parameters = {p["name"] for p in schema.json()["paths"]["/api/catalog/books/"]["get"]["parameters"]}
    assert {"search", "ordering", "status", "cursor", "page_size", "author", "genre", "in_stock"} <= parameters
