"""orders keeps its own copy of catalog's books from catalog's events, whatever their order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from catalog.contracts import BookUpdated, BookWithdrawn, StockChanged
from messaging import publish
from messaging.delivery import Outcome
from orders.models import Product
from tests.orders.factories import book_published, deliver, envelope_of, new_book_id

pytestmark = pytest.mark.django_db(databases=["orders"])


def book_updated(book_id: int, **changes) -> BookUpdated:
    return BookUpdated(**{**book_published(book_id=book_id).model_dump(), **changes})


def test_book_published_creates_a_product_for_sale():
    book_id = new_book_id()

    assert deliver(book_published(book_id=book_id, price="9.99", available=3)) == [Outcome.APPLIED]

    product = Product.objects.get(book_id=book_id)
    assert (product.title, product.price, product.currency, product.available) == ("Dune", Decimal("9.99"), "EUR", 3)
    assert product.for_sale


def test_book_updated_changes_price_and_title():
    book_id = new_book_id()
    start = timezone.now()
    deliver(book_published(book_id=book_id), occurred_at=start)

    deliver(book_updated(book_id, price=Decimal("14.00"), title="Dune (new)"), occurred_at=start + timedelta(seconds=1))

    product = Product.objects.get(book_id=book_id)
    assert (product.title, product.price) == ("Dune (new)", Decimal("14.00"))


def test_a_stale_book_update_does_not_overwrite_a_newer_one():
    book_id = new_book_id()
    start = timezone.now()
    deliver(book_updated(book_id, price=Decimal("20.00")), occurred_at=start + timedelta(seconds=2))

    deliver(book_published(book_id=book_id, price="9.99"), occurred_at=start)  # delivered late

    assert Product.objects.get(book_id=book_id).price == Decimal("20.00")


def test_stock_changed_before_book_published_creates_a_partial_row_not_for_sale():
    book_id = new_book_id()
    start = timezone.now()

    deliver(StockChanged(book_id=book_id, on_hand=8, reserved=1, available=7), occurred_at=start + timedelta(seconds=1))

    partial = Product.objects.get(book_id=book_id)
    assert partial.available == 7
    assert not partial.is_known and not partial.for_sale

    # The book itself arrives later, carrying an older stock figure: its state applies, its stock does not.
    deliver(book_published(book_id=book_id, available=3), occurred_at=start)
    product = Product.objects.get(book_id=book_id)
    assert product.for_sale
    assert product.available == 7


def test_a_stale_stock_change_is_ignored_and_a_newer_one_applies():
    book_id = new_book_id()
    start = timezone.now()
    deliver(book_published(book_id=book_id, available=3), occurred_at=start)
    deliver(StockChanged(book_id=book_id, on_hand=5, reserved=0, available=5), occurred_at=start + timedelta(seconds=2))

    deliver(StockChanged(book_id=book_id, on_hand=4, reserved=0, available=4), occurred_at=start + timedelta(seconds=1))
    assert Product.objects.get(book_id=book_id).available == 5

    deliver(StockChanged(book_id=book_id, on_hand=9, reserved=2, available=7), occurred_at=start + timedelta(seconds=3))
    assert Product.objects.get(book_id=book_id).available == 7


def test_book_withdrawn_takes_the_book_off_sale_and_a_late_update_does_not_bring_it_back():
    book_id = new_book_id()
    start = timezone.now()
    deliver(book_published(book_id=book_id), occurred_at=start)
    deliver(BookWithdrawn(book_id=book_id), occurred_at=start + timedelta(seconds=2))

    deliver(book_updated(book_id, price=Decimal("1.00")), occurred_at=start + timedelta(seconds=1))

    product = Product.objects.get(book_id=book_id)
    assert product.withdrawn and not product.for_sale
    assert product.price == Decimal("9.99")


def test_a_book_published_again_after_withdrawal_is_for_sale_again():
    book_id = new_book_id()
    start = timezone.now()
    deliver(BookWithdrawn(book_id=book_id), occurred_at=start)  # withdrawal seen before the book: partial row
    assert not Product.objects.get(book_id=book_id).for_sale

    deliver(book_published(book_id=book_id), occurred_at=start + timedelta(seconds=1))

    assert Product.objects.get(book_id=book_id).for_sale


def test_an_inactive_book_is_known_but_not_for_sale():
    book_id = new_book_id()
    deliver(book_published(book_id=book_id, active=False))
    product = Product.objects.get(book_id=book_id)
    assert product.is_known and not product.for_sale


def test_the_same_event_delivered_twice_is_applied_once():
    book_id = new_book_id()
    start = timezone.now()
    first = envelope_of(book_updated(book_id, price=Decimal("11.00")), occurred_at=start)

    assert deliver(None, envelope=first) == [Outcome.APPLIED]
    deliver(book_updated(book_id, price=Decimal("12.00")), occurred_at=start + timedelta(seconds=1))
    assert deliver(None, envelope=first) == [Outcome.DUPLICATE]

    assert Product.objects.get(book_id=book_id).price == Decimal("12.00")


@pytest.mark.django_db(transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"])
def test_catalog_events_published_through_the_outbox_reach_the_product_copy():
    book_id = new_book_id()
    with transaction.atomic(using="catalog"):
        publish(book_published(book_id=book_id, price="7.25", available=2))
        publish(StockChanged(book_id=book_id, on_hand=6, reserved=0, available=6))

    product = Product.objects.get(book_id=book_id)
    assert (product.price, product.available) == (Decimal("7.25"), 6)
    assert product.for_sale

    with transaction.atomic(using="catalog"):
        publish(BookWithdrawn(book_id=book_id))
    assert not Product.objects.get(book_id=book_id).for_sale
