"""The database itself refuses impossible stock and malformed books, whatever the code does."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from catalog.models import Book, Stock

from .factories import book_create

pytestmark = pytest.mark.django_db(databases=["catalog"])


def _refused(**changes) -> bool:
    book = book_create(on_hand=2)
    try:
        with transaction.atomic(using="catalog"):
            Stock.objects.using("catalog").filter(book=book).update(**changes)
    except IntegrityError:
        return True
    return False


def test_on_hand_cannot_go_below_zero():
    assert _refused(on_hand=F("on_hand") - 3)


def test_reserved_cannot_go_below_zero():
    assert _refused(reserved=-1)


def test_reserved_cannot_exceed_on_hand():
    assert _refused(reserved=3)


def test_a_consistent_stock_change_is_accepted():
    assert not _refused(reserved=2)


@pytest.mark.parametrize(
    "changes",
    [{"price": Decimal("-0.01")}, {"currency": "eur"}, {"currency": "EU"}, {"isbn13": "123"}],
)
def test_a_book_with_a_negative_price_bad_currency_or_malformed_isbn_is_refused(changes):
    book = book_create()
    with pytest.raises(IntegrityError), transaction.atomic(using="catalog"):
        Book.objects.using("catalog").filter(pk=book.pk).update(**changes)
