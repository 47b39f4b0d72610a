"""Every change to a book or its stock publishes its event, in the same transaction (outbox rows)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from catalog import services
from catalog.models import Book

from .factories import author_create, book_create, genre_create, outbox, outbox_types, stock_of

pytestmark = pytest.mark.django_db(databases=["catalog"])


def test_book_create_publishes_its_full_state():
    rowling, grandpre = author_create("J.K. Rowling"), author_create("Mary GrandPré")
    fantasy = genre_create("Fantasy")
    book = book_create(
        title="Harry Potter and the Philosopher's Stone",
        authors=[rowling, grandpre],
        genres=[fantasy],
        isbn13="9780439554930",
        language="eng",
        publication_year=1997,
        price="8.99",
        currency="GBP",
        on_hand=7,
    )

    [message] = outbox("catalog.BookPublished")
    assert message.aggregate_id == str(book.pk)
    assert message.payload == {
        "book_id": book.pk,
        "isbn13": "9780439554930",
        "title": "Harry Potter and the Philosopher's Stone",
        "authors": ["J.K. Rowling", "Mary GrandPré"],
        "genres": ["Fantasy"],
        "language": "eng",
        "publication_year": 1997,
        "price": "8.99",
        "currency": "GBP",
        "active": True,
        "available": 7,
    }
    assert stock_of(book) == (7, 0)


def test_book_update_publishes_the_new_state_only_when_it_changes():
    book = book_create(title="Dune", price="9.99", authors=["Frank Herbert"])
    other = author_create("Brian Herbert")

    services.book_update(book=book, price=Decimal("10.50"))
    services.book_update(book=book, price=Decimal("10.50"))  # no change: no event
    services.book_update(book=book, authors=[other])
    services.book_update(book=book, description="Spice.")  # not part of the public state

    updates = outbox("catalog.BookUpdated")
    assert [(m.payload["price"], m.payload["authors"]) for m in updates] == [
        ("10.50", ["Frank Herbert"]),
        ("10.50", ["Brian Herbert"]),
    ]
    assert Book.objects.using("catalog").get(pk=book.pk).search_document == "dune brian herbert"


def test_withdraw_publishes_updated_and_withdrawn_once_and_reinstate_publishes_updated():
    book = book_create()

    services.book_withdraw(book=book)
    services.book_withdraw(book=book)
    services.book_reinstate(book=book)

    assert outbox_types() == [
        "catalog.BookPublished",
        "catalog.BookUpdated",
        "catalog.BookWithdrawn",
        "catalog.BookUpdated",
    ]
    updates = outbox("catalog.BookUpdated")
    assert [m.payload["active"] for m in updates] == [False, True]
    assert outbox("catalog.BookWithdrawn")[0].payload == {"book_id": book.pk}


def test_renaming_an_author_or_genre_republishes_their_books():
    author, genre = author_create("Jon Doe"), genre_create("Sci Fi")
    first = book_create(authors=[author], genres=[genre])
    second = book_create(authors=[author])

    services.author_update(author=author, name="John Doe")
    services.genre_update(genre=genre, name="Science Fiction")

    updates = outbox("catalog.BookUpdated")
    assert sorted(m.payload["book_id"] for m in updates[:2]) == [first.pk, second.pk]
    assert all(m.payload["authors"] == ["John Doe"] for m in updates[:2])
    assert [(m.payload["book_id"], m.payload["genres"]) for m in updates[2:]] == [(first.pk, ["Science Fiction"])]
    assert "john doe" in Book.objects.using("catalog").get(pk=first.pk).search_document


def test_stock_set_and_adjust_publish_stock_changed():
    book = book_create(on_hand=3)

    services.stock_set(book=book, on_hand=5)
    services.stock_set(book=book, on_hand=5)  # unchanged: no event
    services.stock_adjust(book=book, delta=-2)

    assert [(m.payload["on_hand"], m.payload["available"]) for m in outbox("catalog.StockChanged")] == [(5, 5), (3, 3)]


def test_stock_cannot_be_set_or_adjusted_below_what_is_reserved():
    book = book_create(on_hand=3)
    services.stock_reserve(order_id=uuid.uuid4(), lines=[(book.pk, 2)])

    with pytest.raises(ValidationError) as set_error:
        services.stock_set(book=book, on_hand=1)
    with pytest.raises(ValidationError) as adjust_error:
        services.stock_adjust(book=book, delta=-2)

    assert "on_hand" in set_error.value.message_dict
    assert "delta" in adjust_error.value.message_dict
    assert stock_of(book) == (3, 2)


def test_invalid_books_are_refused_with_the_field_named():
    author = author_create()
    with pytest.raises(ValidationError) as isbn_error:
        services.book_create(title="X", authors=[author], price=Decimal("1.00"), isbn13="9780306406158")
    with pytest.raises(ValidationError) as author_error:
        services.book_create(title="X", authors=[], price=Decimal("1.00"))
    book_create(isbn13="9780306406157")
    with pytest.raises(ValidationError) as duplicate_error:
        services.book_create(title="Y", authors=[author], price=Decimal("1.00"), isbn13="9780306406157")

    assert "isbn13" in isbn_error.value.message_dict
    assert "authors" in author_error.value.message_dict
    assert "isbn13" in duplicate_error.value.message_dict
    assert len(outbox("catalog.BookPublished")) == 1
