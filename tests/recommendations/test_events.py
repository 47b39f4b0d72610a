"""End to end through the event kernel: contract events published in the producers' transactions."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from messaging import publish
from messaging.dispatch import dispatch
from messaging.models import InboxEntry, OutboxMessage
from recommendations import selectors
from recommendations.models import ModelState, Purchase
from tests.recommendations.factories import book_published, order_cancelled, order_confirmed, withdrawn

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"]
)


def published(alias: str, *events) -> None:
    with transaction.atomic(using=alias):
        for event in events:
            publish(event)


def similar_ids(book_id: int) -> list[int]:
    return [r.book_id for r in selectors.recommendations_similar(book_id=book_id, limit=10)]


def test_order_and_catalog_events_reach_the_model():
    published(
        "catalog",
        book_published(101, "Gardening for Beginners", authors=("Monty Don",), genres=("gardening",)),
        book_published(102, "The Rose Grower", authors=("Vita Sackville-West",), genres=("gardening",)),
        book_published(103, "Stargazing", authors=("Patrick Moore",), genres=("astronomy",)),
    )
    assert similar_ids(103) == []
    assert similar_ids(101) == [102]

    confirmed = order_confirmed(uuid.uuid4(), 101, 103)
    published("orders", confirmed)
    assert similar_ids(103)[0] == 101
    assert Purchase.objects.using("recommendations").filter(order_id=confirmed.order_id).count() == 2

    published("orders", order_cancelled(confirmed))
    assert 101 not in similar_ids(103)

    published("catalog", withdrawn(102))
    assert 102 not in similar_ids(101)


def test_a_redelivered_event_is_skipped():
    published("catalog", book_published(201, "A"), book_published(202, "B"))
    published("orders", order_confirmed(uuid.uuid4(), 201, 202))
    message = OutboxMessage.objects.using("orders").get(event_type="orders.OrderConfirmed")
    version = ModelState.objects.using("recommendations").get().version

    dispatch(message.to_envelope(), ("recommendations",))

    assert ModelState.objects.using("recommendations").get().version == version
    assert InboxEntry.objects.using("recommendations").filter(event_id=message.event_id).count() == 1
    assert Purchase.objects.using("recommendations").count() == 2
