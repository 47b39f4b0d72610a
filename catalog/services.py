"""catalog's write use-cases. Each runs in one transaction on the catalog database and
records its events there (the outbox), so an event exists exactly when its change does.

Book events carry the whole public state of the book (:class:`catalog.contracts.BookState`);
a ``BookUpdated`` is published whenever any of those fields changes, from whatever path
(API, admin, import, an author's rename).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from catalog.contracts import (
    BookPublished,
    BookUpdated,
    BookWithdrawn,
    RejectedLine,
    ReservedLine,
    StockChanged,
    StockRejected,
    StockReserved,
)
from catalog.errors import ReservationStateError, StockConflict
from catalog.models import Author, Book, BookAuthor, Genre, ReservationLine, Stock, StockReservation
from catalog.routers import DATABASE
from messaging import publish

logger = logging.getLogger(__name__)

#: Book fields a staff member (API or admin) may change with book_update.
BOOK_EDITABLE_FIELDS = (
    "title",
    "isbn13",
    "language",
    "publication_year",
    "description",
    "cover_url",
    "price",
    "currency",
)


# --- snapshots -------------------------------------------------------------------------


def search_document_of(title: str, author_names: Iterable[str]) -> str:
    """What ``?search=`` matches: title and author names, case-folded."""
    return " ".join([title, *author_names]).casefold()


def book_names(book_ids: Iterable[int]) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Author names (in credited order) and genre names (alphabetical) of many books, in two queries."""
    ids = list(book_ids)
    authors: dict[int, list[str]] = defaultdict(list)
    genres: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return authors, genres
    for book_id, name in (
        BookAuthor.objects.filter(book_id__in=ids)
        .order_by("book_id", "position", "id")
        .values_list("book_id", "author__name")
    ):
        authors[book_id].append(name)
    for book_id, name in (
        Book.genres.through.objects.filter(book_id__in=ids)
        .order_by("genre__name")
        .values_list("book_id", "genre__name")
    ):
        genres[book_id].append(name)
    return authors, genres


def book_states(book_ids: Iterable[int]) -> dict[int, dict]:
    """The public state (BookState fields) of many books, in three queries."""
    ids = list(book_ids)
    if not ids:
        return {}
    authors, genres = book_names(ids)
    states = {}
    for book in Book.objects.filter(id__in=ids).select_related("stock"):
        stock = getattr(book, "stock", None)
        states[book.id] = book_state(
            book, authors=authors[book.id], genres=genres[book.id], available=stock.available if stock else 0
        )
    return states


def book_state(book: Book, *, authors: list[str], genres: list[str], available: int) -> dict:
    return {
        "book_id": book.id,
        "isbn13": book.isbn13,
        "title": book.title,
        "authors": list(authors),
        "genres": sorted(genres),
        "language": book.language,
        "publication_year": book.publication_year,
        "price": Decimal(book.price).quantize(Decimal("0.01")),
        "currency": book.currency,
        "active": book.active,
        "available": max(available, 0),
    }


def _stock_changed(stock: Stock) -> StockChanged:
    return StockChanged(
        book_id=stock.book_id, on_hand=stock.on_hand, reserved=stock.reserved, available=stock.available
    )


# --- authors and genres ---------------------------------------------------------------


def _clean(instance, *, field_names: Sequence[str] | None = None) -> None:
    exclude = None
    if field_names is not None:
        exclude = [f.name for f in instance._meta.concrete_fields if f.name not in field_names]
    instance.full_clean(exclude=exclude)


def author_create(*, name: str) -> Author:
    """Add an author. No event: no book changed."""
    author = Author(name=" ".join(name.split()))
    _clean(author)
    with transaction.atomic(using=DATABASE):
        author.save()
    return author


def author_update(*, author: Author, name: str) -> Author:
    """Rename an author; every book crediting them publishes ``BookUpdated`` (author names are
    part of a book's public state)."""
    name = " ".join(name.split())
    with transaction.atomic(using=DATABASE):
        author = Author.objects.select_for_update().get(pk=author.pk)
        if author.name == name:
            return author
        author.name = name
        _clean(author)
        author.save(update_fields=["name"])
        _refresh_books(Book.objects.filter(book_authors__author=author).values_list("id", flat=True))
    return author


def genre_create(*, name: str, slug: str = "") -> Genre:
    """Add a genre (its slug made from the name unless given). No event: no book changed."""
    name = " ".join(name.split())
    genre = Genre(name=name, slug=slug or slugify(name))
    _clean(genre)
    with transaction.atomic(using=DATABASE):
        genre.save()
    return genre


def genre_update(*, genre: Genre, name: str | None = None, slug: str | None = None) -> Genre:
    """Rename a genre; its books publish ``BookUpdated`` when the name changed."""
    with transaction.atomic(using=DATABASE):
        genre = Genre.objects.select_for_update().get(pk=genre.pk)
        renamed = name is not None and " ".join(name.split()) != genre.name
        if name is not None:
            genre.name = " ".join(name.split())
        if slug is not None:
            genre.slug = slug
        _clean(genre)
        genre.save()
        if renamed:
            _refresh_books(Book.objects.filter(genres=genre).values_list("id", flat=True))
    return genre


def _refresh_books(book_ids: Iterable[int]) -> None:
    """Recompute search documents and publish the new state of books whose related names changed."""
    ids = sorted(set(book_ids))
    if not ids:
        return
    states = book_states(ids)
    books = {b.id: b for b in Book.objects.select_for_update().filter(id__in=ids).order_by("id")}
    for book_id in ids:
        book = books[book_id]
        book.search_document = search_document_of(book.title, states[book_id]["authors"])
        book.save(update_fields=["search_document", "updated_at"])
        publish(BookUpdated(**states[book_id]))


# --- books ------------------------------------------------------------------------------


def _check_related(*, authors: Sequence[Author] | None, genres: Sequence[Genre] | None) -> None:
    errors = {}
    if authors is not None:
        if not authors:
            errors["authors"] = ["A book needs at least one author."]
        elif len({a.pk for a in authors}) != len(authors):
            errors["authors"] = ["An author is listed twice."]
    if genres is not None and len({g.pk for g in genres}) != len(genres):
        errors["genres"] = ["A genre is listed twice."]
    if errors:
        raise ValidationError(errors)


def _save_unique(book: Book, **save_kwargs) -> None:
    """Save, turning a lost race on a unique column into the same error full_clean gives."""
    try:
        with transaction.atomic(using=DATABASE):
            book.save(**save_kwargs)
    except IntegrityError as error:
        if "isbn13" in str(error):
            raise ValidationError({"isbn13": ["A book with this ISBN-13 already exists."]}) from error
        raise


def book_create(
    *,
    title: str,
    authors: Sequence[Author],
    price: Decimal,
    currency: str = "EUR",
    genres: Sequence[Genre] = (),
    isbn13: str | None = None,
    language: str = "",
    publication_year: int | None = None,
    description: str = "",
    cover_url: str = "",
    on_hand: int = 0,
    goodreads_book_id: int | None = None,
) -> Book:
    """Add a book with its stock (``on_hand`` copies, none reserved) and publish ``BookPublished``."""
    authors, genres = list(authors), list(genres)
    _check_related(authors=authors, genres=genres)
    if on_hand < 0:
        raise ValidationError({"on_hand": ["Stock on hand cannot be negative."]})
    book = Book(
        title=title.strip(),
        isbn13=isbn13 or None,
        language=language,
        publication_year=publication_year,
        description=description,
        cover_url=cover_url,
        price=price,
        currency=currency,
        goodreads_book_id=goodreads_book_id,
        search_document=search_document_of(title.strip(), (a.name for a in authors)),
    )
    _clean(book)
    with transaction.atomic(using=DATABASE):
        _save_unique(book)
        BookAuthor.objects.bulk_create(
            BookAuthor(book=book, author=author, position=position) for position, author in enumerate(authors)
        )
        book.genres.set(genres)
        Stock.objects.create(book=book, on_hand=on_hand, reserved=0)
        publish(
            BookPublished(
                **book_state(
                    book, authors=[a.name for a in authors], genres=[g.name for g in genres], available=on_hand
                )
            )
        )
    return book


def book_update(
    *,
    book: Book,
    authors: Sequence[Author] | None = None,
    genres: Sequence[Genre] | None = None,
    active: bool | None = None,
    **fields,
) -> Book:
    """Change a book's data; publish ``BookUpdated`` (its full new state) if its public state changed.

    ``fields`` are among :data:`BOOK_EDITABLE_FIELDS`; ``authors``/``genres`` replace the lists;
    ``active=False`` withdraws the book (see :func:`book_withdraw`), ``active=True`` reinstates it.
    """
    unknown = set(fields) - set(BOOK_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"book_update() cannot change {', '.join(sorted(unknown))}")
    authors = list(authors) if authors is not None else None
    genres = list(genres) if genres is not None else None
    _check_related(authors=authors, genres=genres)
    with transaction.atomic(using=DATABASE):
        book = Book.objects.select_for_update().get(pk=book.pk)
        before = book_states([book.pk])[book.pk]
        if "isbn13" in fields:
            fields["isbn13"] = fields["isbn13"] or None
        if "title" in fields:
            fields["title"] = fields["title"].strip()
        for name, value in fields.items():
            setattr(book, name, value)
        if authors is not None:
            BookAuthor.objects.filter(book=book).delete()
            BookAuthor.objects.bulk_create(
                BookAuthor(book=book, author=author, position=position) for position, author in enumerate(authors)
            )
        if genres is not None:
            book.genres.set(genres)
        author_names = [a.name for a in authors] if authors is not None else before["authors"]
        book.search_document = search_document_of(book.title, author_names)
        withdrawn = False
        if active is not None and active != book.active:
            book.active = active
            book.withdrawn_at = None if active else timezone.now()
            withdrawn = not active
        _clean(book)
        _save_unique(book)
        after = book_states([book.pk])[book.pk]
        if after != before:
            publish(BookUpdated(**after))
        if withdrawn:
            publish(BookWithdrawn(book_id=book.pk))
    return book


def book_withdraw(*, book: Book) -> Book:
    """Stop selling a book: hidden from the public list, refused by new reservations.

    Publishes ``BookUpdated`` (``active`` false) and ``BookWithdrawn``; a book already
    withdrawn publishes nothing. Stock and existing reservations are left as they are.
    """
    return book_update(book=book, active=False)


def book_reinstate(*, book: Book) -> Book:
    """Sell a withdrawn book again; publishes ``BookUpdated`` (``active`` true)."""
    return book_update(book=book, active=True)


# --- stock ------------------------------------------------------------------------------


def stock_set(*, book: Book, on_hand: int) -> Stock:
    """Set the copies on hand after a count; publishes ``StockChanged`` if it changed.

    Refused below the copies already reserved for orders.
    """
    with transaction.atomic(using=DATABASE):
        stock, _ = Stock.objects.select_for_update().get_or_create(book_id=book.pk)
        if on_hand < stock.reserved:
            raise ValidationError(
                {"on_hand": [f"Cannot be less than the {stock.reserved} copies reserved for orders."]}
            )
        if on_hand == stock.on_hand:
            return stock
        stock.on_hand = on_hand
        stock.save(update_fields=["on_hand", "updated_at"])
        publish(_stock_changed(stock))
    return stock


def stock_adjust(*, book: Book, delta: int) -> Stock:
    """Add (delivery) or remove (damage, loss) copies on hand; publishes ``StockChanged``.

    Refused if it would leave fewer copies than are reserved.
    """
    if delta == 0:
        return Stock.objects.get(book_id=book.pk)
    with transaction.atomic(using=DATABASE):
        Stock.objects.get_or_create(book_id=book.pk)
        updated = Stock.objects.filter(book_id=book.pk, on_hand__gte=F("reserved") - delta).update(
            on_hand=F("on_hand") + delta, updated_at=timezone.now()
        )
        stock = Stock.objects.get(book_id=book.pk)
        if not updated:
            raise ValidationError(
                {"delta": [f"Would leave fewer copies ({stock.on_hand + delta}) than reserved ({stock.reserved})."]}
            )
        publish(_stock_changed(stock))
    return stock


# --- the checkout saga -----------------------------------------------------------------------


def _quantities_in_lock_order(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Quantities per book, each checked positive, sorted by book id: the order stock rows are
    locked in, so two reservations never wait on each other in opposite orders (no deadlock)."""
    merged: dict[int, int] = defaultdict(int)
    for book_id, quantity in lines:
        if quantity <= 0:
            raise ValueError(f"quantity for book {book_id} must be positive, not {quantity}")
        merged[book_id] += quantity
    return dict(sorted(merged.items()))


def stock_reserve(*, order_id: uuid.UUID, lines: Iterable[tuple[int, int]]) -> StockReservation:
    """Hold stock for every line of an order, or for none of them.

    Publishes ``StockReserved`` (and ``StockChanged`` per book), or ``StockRejected`` with
    the reason for each line that cannot be served (``unknown_book``, ``withdrawn``,
    ``insufficient_stock``). An order catalog has already answered, or whose cancellation
    arrived first, is left as it is: the call is idempotent. An order announced again (orders
    re-announces an order that stays pending: the answer may have been lost) while its stock is
    still held or refused gets the same answer again; orders applies an answer once.

    Stock never goes below zero: rows are locked in book-id order, each update is guarded
    by ``on_hand - reserved >= quantity``, and the database checks ``reserved <= on_hand``.
    """
    wanted = _quantities_in_lock_order(lines)
    with transaction.atomic(using=DATABASE):
        existing = StockReservation.objects.select_for_update().filter(order_id=order_id).first()
        if existing is not None:
            logger.info("order %s already handled by catalog (%s): nothing to reserve", order_id, existing.state)
            _answer_again(existing)
            return existing
        books = Book.objects.in_bulk(list(wanted))
        stocks = {
            stock.book_id: stock
            for stock in Stock.objects.select_for_update().filter(book_id__in=list(wanted)).order_by("book_id")
        }
        rejected = []
        for book_id, quantity in wanted.items():
            book, stock = books.get(book_id), stocks.get(book_id)
            available = stock.available if stock else 0
            reason = None
            if book is None:
                reason = "unknown_book"
            elif not book.active:
                reason = "withdrawn"
            elif available < quantity:
                reason = "insufficient_stock"
            if reason:
                rejected.append(
                    RejectedLine(book_id=book_id, requested=quantity, available=max(available, 0), reason=reason)
                )
        if rejected:
            reservation = StockReservation.objects.create(
                order_id=order_id,
                state=StockReservation.State.REJECTED,
                rejection=[line.model_dump() for line in rejected],
            )
            publish(StockRejected(order_id=order_id, lines=rejected))
            return reservation
        now = timezone.now()
        for book_id, quantity in wanted.items():
            held = Stock.objects.filter(book_id=book_id, on_hand__gte=F("reserved") + quantity).update(
                reserved=F("reserved") + quantity, updated_at=now
            )
            if not held:
                raise StockConflict(f"stock of book {book_id} changed while reserving order {order_id}")
        reservation = StockReservation.objects.create(order_id=order_id, state=StockReservation.State.RESERVED)
        ReservationLine.objects.bulk_create(
            ReservationLine(reservation=reservation, book_id=book_id, quantity=quantity)
            for book_id, quantity in wanted.items()
        )
        publish(
            StockReserved(
                order_id=order_id,
                lines=[ReservedLine(book_id=book_id, quantity=quantity) for book_id, quantity in wanted.items()],
            )
        )
        for stock in Stock.objects.filter(book_id__in=list(wanted)).order_by("book_id"):
            publish(_stock_changed(stock))
    return reservation


def _answer_again(reservation: StockReservation) -> None:
    """Publish once more what catalog answered for this order, while that answer still stands."""
    if reservation.state == StockReservation.State.RESERVED:
        lines = [ReservedLine(book_id=line.book_id, quantity=line.quantity) for line in reservation.lines.all()]
        publish(StockReserved(order_id=reservation.order_id, lines=lines))
    elif reservation.state == StockReservation.State.REJECTED:
        lines = [RejectedLine(**line) for line in reservation.rejection]
        publish(StockRejected(order_id=reservation.order_id, lines=lines))


def stock_release(*, order_id: uuid.UUID) -> StockReservation:
    """An order was cancelled: give its reserved copies back (``StockChanged`` per book).

    If catalog has not seen the order yet, the cancellation is remembered, so that the
    ``OrderPlaced`` arriving later reserves nothing. Idempotent.
    """
    with transaction.atomic(using=DATABASE):
        reservation = StockReservation.objects.select_for_update().filter(order_id=order_id).first()
        if reservation is None:
            return StockReservation.objects.create(order_id=order_id, state=StockReservation.State.CANCELLED)
        if reservation.state == StockReservation.State.SOLD:
            logger.warning("order %s was cancelled after its stock was sold: nothing released", order_id)
            return reservation
        if reservation.state != StockReservation.State.RESERVED:
            return reservation
        _move_reserved_stock(reservation, sell=False)
        reservation.state = StockReservation.State.RELEASED
        reservation.save(update_fields=["state", "updated_at"])
    return reservation


def stock_sell(*, order_id: uuid.UUID) -> StockReservation:
    """An order was shipped: its reserved copies leave the warehouse (``on_hand`` and
    ``reserved`` both drop; ``StockChanged`` per book). Idempotent.

    Raises :class:`ReservationStateError` if catalog holds no reservation for the order,
    so the event is parked for an operator rather than silently lost.
    """
    with transaction.atomic(using=DATABASE):
        reservation = StockReservation.objects.select_for_update().filter(order_id=order_id).first()
        if reservation is not None and reservation.state == StockReservation.State.SOLD:
            return reservation
        if reservation is None or reservation.state != StockReservation.State.RESERVED:
            state = reservation.state if reservation else "none"
            raise ReservationStateError(f"order {order_id} was shipped but catalog's reservation is {state}")
        _move_reserved_stock(reservation, sell=True)
        reservation.state = StockReservation.State.SOLD
        reservation.save(update_fields=["state", "updated_at"])
    return reservation


def _move_reserved_stock(reservation: StockReservation, *, sell: bool) -> None:
    lines = list(reservation.lines.order_by("book_id"))
    book_ids = [line.book_id for line in lines]
    # Lock in book-id order, as reservations do.
    list(Stock.objects.select_for_update().filter(book_id__in=book_ids).order_by("book_id"))
    now = timezone.now()
    for line in lines:
        changes = {"reserved": F("reserved") - line.quantity, "updated_at": now}
        if sell:
            changes["on_hand"] = F("on_hand") - line.quantity
        moved = Stock.objects.filter(book_id=line.book_id, reserved__gte=line.quantity).update(**changes)
        if not moved:
            raise StockConflict(f"book {line.book_id} holds fewer reserved copies than order {reservation.order_id}")
    for stock in Stock.objects.filter(book_id__in=book_ids).order_by("book_id"):
        publish(_stock_changed(stock))
