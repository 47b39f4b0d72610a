"""Changing the catalog over HTTP: staff only, validated, and every change an event."""

from __future__ import annotations

import pytest

from catalog.models import Book

from .factories import author_create, book_create, client, error_fields, genre_create, outbox, outbox_types, stock_of

pytestmark = pytest.mark.django_db(databases=["catalog", "default"])
BOOKS = "/api/catalog/books/"


def new_book_payload(**overrides) -> dict:
    return {"title": "Dune", "author_ids": [author_create("Frank Herbert").pk], "price": "9.99", **overrides}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", BOOKS, {}),
        ("patch", BOOKS + "{book}/", {"price": "1.00"}),
        ("put", BOOKS + "{book}/", {}),
        ("post", BOOKS + "{book}/withdraw/", None),
        ("put", BOOKS + "{book}/stock/", {"on_hand": 1}),
        ("post", BOOKS + "{book}/stock/adjust/", {"delta": 1}),
        ("get", BOOKS + "{book}/stock/", None),
        ("post", "/api/catalog/authors/", {"name": "X"}),
        ("post", "/api/catalog/genres/", {"name": "X"}),
    ],
)
@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("customer", 403)])
def test_only_staff_may_write(method, path, body, who, status):
    book = book_create(on_hand=2)
    response = getattr(client(who), method)(path.format(book=book.pk), body)

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert outbox_types() == ["catalog.BookPublished"]  # the factory's, nothing more
    assert stock_of(book) == (2, 0)


def test_staff_creates_a_book_and_it_is_published():
    genre = genre_create("Science Fiction")

    response = client("staff").post(
        BOOKS,
        new_book_payload(isbn13="978-0-441-17271-9", genre_ids=[genre.pk], publication_year=1965, on_hand=4),
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["isbn13"], body["available"], body["on_hand"]) == ("9780441172719", 4, 4)
    assert [genre["name"] for genre in body["genres"]] == ["Science Fiction"]
    [published] = outbox("catalog.BookPublished")
    assert (published.payload["book_id"], published.payload["available"]) == (body["id"], 4)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"isbn13": "978-0-441-17271-8"}, "isbn13"),  # wrong check digit
        ({"isbn13": "12345"}, "isbn13"),
        ({"author_ids": []}, "author_ids"),
        ({"author_ids": [999999]}, "author_ids"),
        ({"price": "-1.00"}, "price"),
        ({"price": "9.999"}, "price"),
        ({"currency": "euro"}, "currency"),
        ({"publication_year": 3000}, "publication_year"),
        ({"title": ""}, "title"),
        ({"cover_url": "not a url"}, "cover_url"),
        ({"on_hand": -1}, "on_hand"),
        ({"language": "en US"}, "language"),
        ({"active": False}, "active"),
    ],
)
def test_invalid_books_are_a_400_naming_the_field(overrides, field):
    response = client("staff").post(BOOKS, new_book_payload(**overrides))

    assert response.status_code == 400
    assert field in error_fields(response.json())
    assert outbox() == []


def test_a_second_book_with_the_same_isbn_is_refused():
    book_create(isbn13="9780441172719")

    response = client("staff").post(BOOKS, new_book_payload(isbn13="9780441172719"))

    assert response.status_code == 400 and "isbn13" in error_fields(response.json())


def test_staff_updates_withdraws_and_reinstates_a_book():
    book = book_create(title="Dune", price="9.99")
    staff = client("staff")

    patched = staff.patch(f"{BOOKS}{book.pk}/", {"price": "11.00", "title": "Dune (Deluxe)"})
    withdrawn = staff.post(f"{BOOKS}{book.pk}/withdraw/")
    reinstated = staff.patch(f"{BOOKS}{book.pk}/", {"active": True})

    assert (patched.status_code, patched.json()["price"], patched.json()["title"]) == (200, "11.00", "Dune (Deluxe)")
    assert (withdrawn.status_code, withdrawn.json()["active"]) == (200, False)
    assert reinstated.json()["active"] is True
    assert outbox_types() == [
        "catalog.BookPublished",
        "catalog.BookUpdated",
        "catalog.BookUpdated",
        "catalog.BookWithdrawn",
        "catalog.BookUpdated",
    ]


def test_put_replaces_the_book_and_needs_every_required_field():
    book = book_create(title="Dune")
    staff = client("staff")

    incomplete = staff.put(f"{BOOKS}{book.pk}/", {"title": "Dune"})
    complete = staff.put(f"{BOOKS}{book.pk}/", new_book_payload(title="Dune", price="8.00", language="eng"))

    assert incomplete.status_code == 400 and {"author_ids", "price"} <= error_fields(incomplete.json())
    assert complete.status_code == 200
    assert Book.objects.using("catalog").get(pk=book.pk).language == "eng"


def test_staff_sets_and_adjusts_stock():
    book = book_create(on_hand=2)
    staff = client("staff")

    counted = staff.put(f"{BOOKS}{book.pk}/stock/", {"on_hand": 7})
    received = staff.post(f"{BOOKS}{book.pk}/stock/adjust/", {"delta": 3})
    too_many = staff.post(f"{BOOKS}{book.pk}/stock/adjust/", {"delta": -11})
    negative = staff.put(f"{BOOKS}{book.pk}/stock/", {"on_hand": -1})

    assert counted.json() == {**counted.json(), "on_hand": 7, "reserved": 0, "available": 7}
    assert received.json()["on_hand"] == 10
    assert too_many.status_code == 400 and "delta" in error_fields(too_many.json())
    assert negative.status_code == 400 and "on_hand" in error_fields(negative.json())
    assert [m.payload["on_hand"] for m in outbox("catalog.StockChanged")] == [7, 10]
    assert client().get(f"{BOOKS}{book.pk}/").json()["available"] == 10


def test_staff_manages_authors_and_genres():
    staff = client("staff")
    author = staff.post("/api/catalog/authors/", {"name": "  Ursula   Le Guin "})
    genre = staff.post("/api/catalog/genres/", {"name": "Science Fiction"})
    duplicate = staff.post("/api/catalog/authors/", {"name": "Ursula Le Guin"})
    renamed = staff.patch(f"/api/catalog/authors/{author.json()['id']}/", {"name": "Ursula K. Le Guin"})

    assert (author.status_code, author.json()["name"]) == (201, "Ursula Le Guin")
    assert (genre.status_code, genre.json()["slug"]) == (201, "science-fiction")
    assert duplicate.status_code == 400 and "name" in error_fields(duplicate.json())
    assert renamed.json()["name"] == "Ursula K. Le Guin"


def test_unknown_book_is_a_404_problem():
    response = client("staff").patch(f"{BOOKS}424242/", {"price": "1.00"})

    assert response.status_code == 404 and response.json()["status"] == 404
