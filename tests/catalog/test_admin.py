"""The admin writes through the services: every edit there publishes the same events as the API."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from catalog import services
from catalog.models import Book

from .factories import author_create, book_create, genre_create, outbox, outbox_types, staff_user, stock_of

pytestmark = pytest.mark.django_db(databases=["catalog", "default"])


@pytest.fixture
def admin_client() -> Client:
    browser = Client()
    browser.force_login(staff_user("admin"))
    return browser


def book_form(*, title: str, authors: list[int], price: str = "9.99", active: bool = True, **fields) -> dict:
    data = {
        "title": title,
        "isbn13": "",
        "language": "",
        "publication_year": "",
        "description": "",
        "cover_url": "",
        "price": price,
        "currency": "EUR",
        "book_authors-TOTAL_FORMS": str(len(authors)),
        "book_authors-INITIAL_FORMS": "0",
        "book_authors-MIN_NUM_FORMS": "0",
        "book_authors-MAX_NUM_FORMS": "1000",
        **fields,
    }
    if active:
        data["active"] = "on"
    for index, author_id in enumerate(authors):
        data[f"book_authors-{index}-position"] = str(index)
        data[f"book_authors-{index}-author"] = str(author_id)
    return data


def test_lists_and_searches_load(admin_client):
    book = book_create(title="Dune", authors=["Frank Herbert"], isbn13="9780441172719", genres=[genre_create("SF")])
    reservation = services.stock_reserve(order_id=uuid.uuid4(), lines=[(book.pk, 1)])

    pages = [
        "/admin/catalog/book/",
        "/admin/catalog/book/?q=herbert",
        "/admin/catalog/book/?q=978-0-441-17271-9",
        "/admin/catalog/book/?active__exact=1&language=",
        f"/admin/catalog/book/?genres__id__exact={book.genres.get().pk}",
        "/admin/catalog/author/?q=frank",
        "/admin/catalog/genre/",
        "/admin/catalog/stock/?availability=reserved",
        "/admin/catalog/stockreservation/?state__exact=reserved",
        f"/admin/catalog/book/{book.pk}/change/",
        "/admin/catalog/book/add/",
        f"/admin/catalog/stock/{book.pk}/change/",
        f"/admin/catalog/stockreservation/{reservation.pk}/change/",
        "/admin/autocomplete/?app_label=catalog&model_name=bookauthor&field_name=author&term=fra",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
    assert "Dune" in admin_client.get("/admin/catalog/book/?q=978-0-441-17271-9").content.decode()
    assert "Dune" in admin_client.get("/admin/catalog/book/?q=herbert").content.decode()


def test_adding_a_book_in_the_admin_publishes_it(admin_client):
    first, second = author_create("Terry Pratchett"), author_create("Neil Gaiman")

    response = admin_client.post(
        "/admin/catalog/book/add/", book_form(title="Good Omens", authors=[first.pk, second.pk], isbn13="0-575-04800-X")
    )

    assert response.status_code == 302, response.context["adminform"].errors if response.context else response
    book = Book.objects.using("catalog").get(title="Good Omens")
    assert book.isbn13 == "9780575048003"
    [published] = outbox("catalog.BookPublished")
    assert published.payload["authors"] == ["Terry Pratchett", "Neil Gaiman"]
    assert stock_of(book) == (0, 0)


def test_an_invalid_book_is_refused_in_the_admin_without_an_event(admin_client):
    author = author_create()

    bad_isbn = admin_client.post("/admin/catalog/book/add/", book_form(title="X", authors=[author.pk], isbn13="123"))
    no_author = admin_client.post("/admin/catalog/book/add/", book_form(title="X", authors=[]))

    assert bad_isbn.status_code == 200 and "isbn13" in bad_isbn.context["adminform"].form.errors
    assert no_author.status_code == 200 and "A book needs at least one author." in no_author.content.decode()
    assert outbox() == []


def test_changing_a_book_in_the_admin_publishes_updated_and_withdrawn(admin_client):
    author = author_create("Frank Herbert")
    book = book_create(title="Dune", authors=[author], price="9.99")
    link = book.book_authors.get()
    data = book_form(title="Dune", authors=[author.pk], price="12.00", active=False)
    data.update(
        {"book_authors-INITIAL_FORMS": "1", "book_authors-0-id": str(link.pk), "book_authors-0-book": str(book.pk)}
    )

    response = admin_client.post(f"/admin/catalog/book/{book.pk}/change/", data)

    assert response.status_code == 302
    assert outbox_types() == ["catalog.BookPublished", "catalog.BookUpdated", "catalog.BookWithdrawn"]
    updated = outbox("catalog.BookUpdated")[0].payload
    assert (updated["price"], updated["active"]) == ("12.00", False)


def test_admin_actions_withdraw_and_reinstate_through_the_services(admin_client):
    books = [book_create(), book_create()]
    selection = {"_selected_action": [str(book.pk) for book in books]}

    admin_client.post("/admin/catalog/book/", {"action": "withdraw_selected", **selection})
    admin_client.post("/admin/catalog/book/", {"action": "reinstate_selected", **selection})

    assert len(outbox("catalog.BookWithdrawn")) == 2
    assert [m.payload["active"] for m in outbox("catalog.BookUpdated")] == [False, False, True, True]
    assert admin_client.get(f"/admin/catalog/book/{books[0].pk}/delete/").status_code == 403


def test_stock_and_author_edits_in_the_admin_publish_events(admin_client):
    author = author_create("Jon Doe")
    book = book_create(authors=[author], on_hand=2)
    services.stock_reserve(order_id=uuid.uuid4(), lines=[(book.pk, 2)])

    below_reserved = admin_client.post(f"/admin/catalog/stock/{book.pk}/change/", {"on_hand": "1"})
    assert below_reserved.status_code == 200 and stock_of(book) == (2, 2)

    counted = admin_client.post(f"/admin/catalog/stock/{book.pk}/change/", {"on_hand": "6"})
    renamed = admin_client.post(f"/admin/catalog/author/{author.pk}/change/", {"name": "John Doe"})

    assert counted.status_code == 302 and stock_of(book) == (6, 2)
    assert outbox("catalog.StockChanged")[-1].payload == {
        "book_id": book.pk,
        "on_hand": 6,
        "reserved": 2,
        "available": 4,
    }
    assert renamed.status_code == 302
    assert outbox("catalog.BookUpdated")[-1].payload["authors"] == ["John Doe"]
    assert Book.objects.using("catalog").get(pk=book.pk).price == Decimal("9.99")
