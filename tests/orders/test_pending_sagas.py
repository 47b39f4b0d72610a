"""Checkouts whose saga never settles are found and moved on (one process: in-process events, every database).

An order stays pending when its OrderPlaced never reaches catalog (lost to an outage, a crash)
or catalog's answer never comes back. ``orders_resolve_pending`` finds the orders pending longer
than the timeout, announces OrderPlaced again a bounded number of times, then rejects the order
with a reason; ``/metrics`` shows how many are overdue. The services topology is drilled in
tests/faults/test_pending_sagas.py.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from catalog import services as catalog_services
from catalog.models import Stock, StockReservation
from messaging.dispatch import dispatch
from messaging.models import OutboxMessage
from orders import services
from orders.models import Order
from tests.orders.factories import customer_token

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "accounts", "catalog", "orders", "recommendations"]
)

TIMEOUT = 300.0


@pytest.fixture(autouse=True)
def _timeout(settings):
    settings.ORDERS_PENDING_TIMEOUT_SECONDS = TIMEOUT
    settings.ORDERS_PENDING_MAX_REANNOUNCEMENTS = 2


def book(on_hand: int) -> int:
    author = catalog_services.author_create(name="Ursula K. Le Guin")
    created = catalog_services.book_create(
        title="The Dispossessed", authors=[author], price=Decimal("11.00"), on_hand=on_hand
    )
    return created.pk  # orders learned it through the in-process events


def lose_announcements() -> None:
    """Inside an orders transaction: its OrderPlaced rows are marked delivered before anyone received them."""
    OutboxMessage.objects.using("orders").filter(event_type="orders.OrderPlaced", published_at__isnull=True).update(
        published_at=timezone.now()
    )


def order_with_lost_announcement(book_id: int, quantity: int = 1) -> Order:
    """A checkout whose OrderPlaced is lost on its way (an outage, a crash)."""
    with transaction.atomic(using="orders"):
        order = services.order_place(
            customer_id=uuid.uuid4(), lines=[services.LineRequest(book_id=book_id, quantity=quantity)]
        )
        lose_announcements()
    return order


def age(order: Order, seconds: float) -> None:
    """The order (and its last re-announcement) happened ``seconds`` earlier."""
    earlier = timezone.now() - timedelta(seconds=seconds)
    Order.objects.filter(pk=order.pk).update(
        created_at=earlier, reannounced_at=earlier if order.reannounced_at or order.reannounced_count else None
    )
    order.refresh_from_db()


def resolve(*args: str, lost: bool = False) -> str:
    """Run the command; with ``lost`` the announcements it makes are lost too (catalog out of reach)."""
    output = io.StringIO()
    with transaction.atomic(using="orders"):
        call_command("orders_resolve_pending", *args, stdout=output)
        if lost:
            lose_announcements()
    return output.getvalue()


def as_customer(order: Order) -> dict:
    """Headers of the order's customer."""
    _, token = customer_token(order.customer_id)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def gauge(name: str) -> float:
    page = Client().get("/metrics").content.decode()
    match = re.search(rf"^{name} (\S+)$", page, re.M)
    assert match, f"{name} not on /metrics"
    return float(match.group(1))


def counted(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_order_whose_announcement_was_lost_is_announced_again_and_confirmed():
    reannounced = counted("quire_orders_pending_resolved_total", action="reannounced")
    book_id = book(on_hand=5)
    order = order_with_lost_announcement(book_id, 2)
    assert Order.objects.get(pk=order.pk).state == "pending"
    assert not StockReservation.objects.filter(order_id=order.id).exists()

    assert "0 order(s) pending longer" in resolve()  # young: nothing to do yet
    assert gauge("quire_orders_pending_overdue") == 0
    age(order, TIMEOUT + 1)
    assert gauge("quire_orders_pending_overdue") == 1
    assert gauge("quire_orders_pending_oldest_seconds") >= TIMEOUT

    output = resolve()

    assert f"order {order.id}: reannounced" in output
    order.refresh_from_db()
    assert (order.state, order.reannounced_count) == ("confirmed", 1)
    assert Stock.objects.get(book_id=book_id).reserved == 2
    assert OutboxMessage.objects.using("orders").filter(event_type="orders.OrderPlaced").count() == 2
    assert gauge("quire_orders_pending_overdue") == 0
    assert counted("quire_orders_pending_resolved_total", action="reannounced") == reannounced + 1


def test_an_order_nobody_answers_is_rejected_after_the_bounded_reannouncements():
    before = {
        "reannounced": counted("quire_orders_pending_resolved_total", action="reannounced"),
        "rejected": counted("quire_orders_pending_resolved_total", action="rejected"),
        "settled": counted("quire_checkout_settle_seconds_count", outcome="rejected"),
        "settle_time": counted("quire_checkout_settle_seconds_sum", outcome="rejected"),
    }
    book_id = book(on_hand=5)
    order = order_with_lost_announcement(book_id)
    for attempt in (1, 2):  # catalog out of reach: every re-announcement is lost too
        age(order, TIMEOUT + 1)
        assert f"order {order.id}: reannounced" in resolve(lost=True)
        order.refresh_from_db()
        assert (order.state, order.reannounced_count) == ("pending", attempt)
        # the next one only a timeout after the last: its answer may still be on its way
        assert "1 waiting" in resolve(lost=True)

    age(order, TIMEOUT + 1)
    output = resolve()

    assert f"order {order.id}: rejected" in output
    # Counted as resolved, and settled like any rejection: the saga's time from checkout to the rejection.
    assert counted("quire_orders_pending_resolved_total", action="reannounced") == before["reannounced"] + 2
    assert counted("quire_orders_pending_resolved_total", action="rejected") == before["rejected"] + 1
    assert counted("quire_checkout_settle_seconds_count", outcome="rejected") == before["settled"] + 1
    assert counted("quire_checkout_settle_seconds_sum", outcome="rejected") - before["settle_time"] >= TIMEOUT
    order.refresh_from_db()
    assert (order.state, order.rejection_reason) == ("rejected", services.NOT_CONFIRMED_IN_TIME)
    assert {line.rejection_reason for line in order.lines.all()} == {services.NOT_CONFIRMED_IN_TIME}
    rejected = OutboxMessage.objects.using("orders").get(event_type="orders.OrderRejected")
    assert rejected.payload["reasons"] == [
        {"book_id": book_id, "reason": "not_confirmed_in_time", "requested": 1, "available": 5}
    ]
    # catalog was asked to release what it may hold, which also keeps a late OrderPlaced from reserving.
    assert StockReservation.objects.get(order_id=order.id).state == "cancelled"
    assert order.release_requested_at is not None
    # The first announcement, arriving at last, reserves nothing.
    original = OutboxMessage.objects.using("orders").filter(event_type="orders.OrderPlaced").order_by("id").first()
    dispatch(original.to_envelope(), ("catalog",))
    assert StockReservation.objects.get(order_id=order.id).state == "cancelled"
    assert Stock.objects.get(book_id=book_id).reserved == 0
    assert Client().get(f"/api/orders/{order.id}/", **as_customer(order)).json()["lines"][0]["rejection"]["reason"] == (
        services.NOT_CONFIRMED_IN_TIME
    )
    assert "0 order(s)" in resolve()


def test_the_dry_run_lists_overdue_orders_and_changes_nothing():
    order = order_with_lost_announcement(book(on_hand=1))
    age(order, TIMEOUT + 1)

    output = resolve("--dry-run")

    assert f"overdue: order {order.id}" in output and "1 order(s) pending longer than 300s" in output
    order.refresh_from_db()
    assert (order.state, order.reannounced_count) == ("pending", 0)


def test_a_bad_setting_is_refused_with_what_to_set():
    with pytest.raises(Exception, match="ORDERS_PENDING_TIMEOUT_SECONDS"):
        resolve("--timeout", "0")
