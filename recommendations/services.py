"""recommendations' write use-cases: learn purchases and books from events, rebuild the model.

Each use-case runs in ``transaction.atomic(using=DATABASE)``, takes the next
model version first (which serialises writers, so that journal versions follow commit
order), writes its own rows and one journal entry per change. The in-memory models of all processes pick the
journal up on their next read (see ``recommendations.store``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from recommendations import store
from recommendations.models import ModelChange, ModelSnapshot, Purchase, RecoBook
from recommendations.routers import DATABASE


def _nothing_changed() -> int:
    """Undo this use-case's version bump: a repeated event leaves no trace, not even a version.

    Only this use-case's block rolls back (a savepoint inside a handler's transaction), so
    the handler's inbox row still commits.
    """
    transaction.set_rollback(True, using=DATABASE)
    return 0


def _quantities_per_book(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Quantities per book (an order's lines, as events carry them: already checked by orders)."""
    quantities: dict[int, int] = {}
    for book_id, quantity in lines:
        quantities[book_id] = quantities.get(book_id, 0) + quantity
    return quantities


def purchases_record(
    *, order_id: uuid.UUID, customer_id: uuid.UUID, lines: Iterable[tuple[int, int]], purchased_at: datetime
) -> int:
    """Learn a confirmed order's lines ``(book_id, quantity)``; returns how many were learnt.

    An order already known (confirmed twice, or cancelled before its confirmation
    arrived) changes nothing and returns 0.
    """
    quantities = _quantities_per_book(lines)
    with transaction.atomic(using=DATABASE):
        version = store.next_version()
        # One query answers both "is this order known?" and "which of its books did the customer own?".
        known = Purchase.objects.filter(
            Q(order_id=order_id) | Q(customer_id=customer_id, book_id__in=quantities, cancelled=False)
        )
        rows = list(known.values_list("order_id", "book_id"))
        if any(known_order == order_id for known_order, _ in rows):
            return _nothing_changed()
        owned = {book_id for _, book_id in rows}
        Purchase.objects.bulk_create(
            Purchase(
                order_id=order_id,
                customer_id=customer_id,
                book_id=book_id,
                quantity=quantity,
                purchased_at=purchased_at,
            )
            for book_id, quantity in quantities.items()
        )
        ModelChange.objects.bulk_create(
            ModelChange(
                version=version,
                kind=ModelChange.Kind.PURCHASE,
                book_id=book_id,
                customer_id=customer_id,
                purchased_at=purchased_at,
                ownership_changed=book_id not in owned,
            )
            for book_id in quantities
        )
    return len(quantities)


def purchases_cancel(
    *, order_id: uuid.UUID, customer_id: uuid.UUID, lines: Iterable[tuple[int, int]], cancelled_at: datetime
) -> int:
    """Forget a confirmed order that was cancelled; returns how many lines were forgotten.

    If the confirmation has not arrived yet, the order is remembered as cancelled so
    that its confirmation, should it come later, teaches nothing.
    """
    with transaction.atomic(using=DATABASE):
        version = store.next_version()
        rows = list(Purchase.objects.filter(order_id=order_id))
        if not rows:
            Purchase.objects.bulk_create(
                Purchase(
                    order_id=order_id,
                    customer_id=customer_id,
                    book_id=book_id,
                    quantity=quantity,
                    purchased_at=cancelled_at,
                    cancelled=True,
                    cancelled_at=cancelled_at,
                )
                for book_id, quantity in _quantities_per_book(lines).items()
            )
            return 0
        live = [row for row in rows if not row.cancelled]
        if not live:
            return _nothing_changed()
        Purchase.objects.filter(pk__in=[row.pk for row in live]).update(cancelled=True, cancelled_at=cancelled_at)
        still_owned = set(
            Purchase.objects.filter(
                customer_id=live[0].customer_id, book_id__in=[row.book_id for row in live], cancelled=False
            ).values_list("book_id", flat=True)
        )
        ModelChange.objects.bulk_create(
            ModelChange(
                version=version,
                kind=ModelChange.Kind.CANCELLATION,
                book_id=row.book_id,
                customer_id=row.customer_id,
                purchased_at=row.purchased_at,
                ownership_changed=row.book_id not in still_owned,
            )
            for row in live
        )
    return len(live)


def book_upsert(
    *, book_id: int, title: str, authors: list[str], genres: list[str], language: str, active: bool
) -> bool:
    """Keep our copy of a book's public data; returns False if nothing we use changed (e.g. a price)."""
    copy = BookCopy(book_id=book_id, title=title, authors=authors, genres=genres, language=language, active=active)
    return books_upsert(books=[copy]) == 1


@dataclass(frozen=True)
class BookCopy:
    """The public data of a book that recommendations keeps (from catalog's book events)."""

    book_id: int
    title: str
    authors: list[str]
    genres: list[str]
    language: str
    active: bool


def books_upsert(*, books: Iterable[BookCopy]) -> int:
    """:func:`book_upsert` for many books, in their order, in a few statements; how many changed.

    The changes share one model version (one transaction), each changed book with its journal row.
    """
    latest = {book.book_id: book for book in books}  # a later copy of the same book wins, as one by one
    with transaction.atomic(using=DATABASE):
        stored = RecoBook.objects.in_bulk(list(latest))
        fields = ("title", "authors", "genres", "language", "active")
        new, changed = [], []
        for book_id, copy in latest.items():
            values = {
                "title": copy.title,
                "authors": list(copy.authors),
                "genres": list(copy.genres),
                "language": copy.language or "",
                "active": copy.active,
            }
            book = stored.get(book_id)
            if book is None:
                new.append(RecoBook(book_id=book_id, **values))
            elif any(getattr(book, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(book, name, value)
                book.updated_at = timezone.now()
                changed.append(book)
        if not (new or changed):
            return 0
        version = store.next_version()
        RecoBook.objects.bulk_create(new)
        RecoBook.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=500)
        ModelChange.objects.bulk_create(
            ModelChange(version=version, kind=ModelChange.Kind.BOOK, book_id=book.book_id) for book in [*new, *changed]
        )
    return len(new) + len(changed)


def book_withdraw(*, book_id: int) -> bool:
    """The book is no longer sold: it leaves every answer from the next request on."""
    book = RecoBook.objects.filter(book_id=book_id).first()
    if book is not None and not book.active:
        return False
    with transaction.atomic(using=DATABASE):
        version = store.next_version()
        if book is None:
            # Withdrawn before we heard of it: remember that (a later book event carries its own ``active``).
            RecoBook.objects.create(book_id=book_id, active=False)
        else:
            RecoBook.objects.filter(book_id=book_id).update(active=False, updated_at=timezone.now())
        ModelChange.objects.create(version=version, kind=ModelChange.Kind.BOOK, book_id=book_id)
    return True


@dataclass(frozen=True)
class RebuildResult:
    version: int
    purchase_lines: int
    snapshot: ModelSnapshot


def model_rebuild(*, progress: store.Progress | None = None) -> RebuildResult:
    """Rebuild the whole model from this module's purchase history and make every process reload it.

    The result equals what incremental updates produced (that is tested); use it to
    recover from a damaged snapshot or after changing how the model is computed.
    """
    engine, version, lines = store.build_from_database(progress)
    if progress:
        progress("saving snapshot", 0, 0)
    snapshot = store.save_snapshot(engine, version=version, generation=None)
    return RebuildResult(version=version, purchase_lines=lines, snapshot=snapshot)
