"""Plain factory functions for catalog tests."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from catalog import services
from catalog.models import Author, Book, BookAuthor, Genre, Stock
from catalog.routers import DATABASE
from messaging.models import OutboxMessage

_sequence = itertools.count(1)


def author_create(name: str | None = None) -> Author:
    return services.author_create(name=name or f"Author {next(_sequence)}")


def genre_create(name: str | None = None) -> Genre:
    return services.genre_create(name=name or f"Genre {next(_sequence)}")


def book_create(
    *,
    title: str | None = None,
    authors: list[Author] | list[str] | None = None,
    price: str | Decimal = "9.99",
    on_hand: int = 10,
    **fields,
) -> Book:
    """A book made through the service (so with its stock row and its BookPublished)."""
    resolved = [
        a if isinstance(a, Author) else Author.objects.using(DATABASE).get_or_create(name=a)[0]
        for a in (authors or [author_create()])
    ]
    return services.book_create(
        title=title or f"Book {next(_sequence)}", authors=resolved, price=Decimal(str(price)), on_hand=on_hand, **fields
    )


def books_bulk_create(count: int, *, author: Author | None = None, on_hand: int = 1) -> list[Book]:
    """Many plain books quickly, bypassing the services (no events): for pagination tests."""
    author = author or author_create()
    books = Book.objects.using(DATABASE).bulk_create(
        Book(
            title=f"Bulk {index:04d}",
            price=Decimal("5.00") + index,
            currency="EUR",
            publication_year=1900 + index % 50,
            search_document=f"bulk {index:04d} {author.name.casefold()}",
        )
        for index in range(count)
    )
    Stock.objects.using(DATABASE).bulk_create(Stock(book=book, on_hand=on_hand) for book in books)
    BookAuthor.objects.using(DATABASE).bulk_create(BookAuthor(book=book, author=author) for book in books)
    return books


def staff_user(username: str = "clerk"):
    user_model = get_user_model()
    user, _ = user_model.objects.using("default").get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True}
    )
    return user


def client(kind: str = "anonymous") -> APIClient:
    """``anonymous``, ``customer`` (a JWT like accounts issues) or ``staff`` (a Django staff user)."""
    api = APIClient()
    api.default_format = "json"
    if kind == "customer":
        token = AccessToken()
        token["sub"] = str(uuid.uuid4())
        token["role"] = "customer"
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    elif kind == "staff":
        api.force_authenticate(user=staff_user())
    return api


def outbox(event_type: str | None = None) -> list[OutboxMessage]:
    messages = OutboxMessage.objects.using(DATABASE).order_by("id")
    if event_type:
        messages = messages.filter(event_type=event_type)
    return list(messages)


def outbox_types() -> list[str]:
    return [message.event_type for message in outbox()]


def error_fields(body: dict) -> set[str | None]:
    return {error["field"] for error in body.get("errors", [])}


def stock_of(book: Book) -> tuple[int, int]:
    stock = Stock.objects.using(DATABASE).get(book=book)
    return stock.on_hand, stock.reserved
