"""The product copy's bulk form (a batch of book events) has the effect of applying them one by one."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services
from orders.models import Product
from tests.orders.factories import new_book_id

pytestmark = pytest.mark.django_db(databases=["orders"])

FIELDS = ("title", "price", "currency", "active", "withdrawn", "available", "state_as_of", "stock_as_of")


def scenario(book_ids: list[int], start) -> list[services.ProductState]:
    """Known books with newer and older events, a new book twice, and a late stock level."""
    a, b, c = book_ids

    def state(book_id: int, seconds: int, **fields) -> services.ProductState:
        values = {"title": "Dune", "price": Decimal("9.99"), "currency": "eur", "active": True, "available": 3}
        return services.ProductState(book_id=book_id, as_of=start + timedelta(seconds=seconds), **{**values, **fields})

    services.product_state_apply(**state(a, 10).__dict__)
    services.product_state_apply(**state(b, 10).__dict__)
    services.product_stock_apply(book_id=b, available=7, as_of=start + timedelta(seconds=30))
    return [
        state(a, 20, price=Decimal("12.50"), title="Dune (new)"),  # newer: applied
        state(a, 5, price=Decimal("1.00")),  # older than what is applied: nothing
        state(b, 20, available=1),  # newer state, but the stock level is newer still
        state(c, 1, title="Emma"),  # unknown yet: created
        state(c, 2, title="Emma (2nd)", active=False),  # then changed within the same batch
    ]


def products(book_ids: list[int]) -> list[tuple]:
    return [tuple(getattr(Product.objects.get(book_id=i), name) for name in FIELDS) for i in book_ids]


def test_bulk_apply_has_the_effect_of_one_by_one():
    one_by_one, bulk = [new_book_id() for _ in range(3)], [new_book_id() for _ in range(3)]
    start = timezone.now()
    for state in scenario(one_by_one, start):
        services.product_state_apply(**state.__dict__)

    services.products_state_apply(states=scenario(bulk, start))

    assert products(bulk) == products(one_by_one)
    assert products(bulk)[0][:2] == ("Dune (new)", Decimal("12.50")) and products(bulk)[1][5] == 7
