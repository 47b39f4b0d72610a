"""An order's life: pending → confirmed | rejected → paid → shipped, or cancelled; the saga's events."""

from __future__ import annotations

import uuid

import pytest

from catalog.contracts import StockReserved
from messaging.delivery import Outcome
from orders.models import Order, PaymentAttempt
from tests.orders.factories import (
    DECLINED_CARD,
    VALID_CARD,
    confirmed_order,
    customer_client,
    deliver,
    envelope_of,
    outbox,
    paid_order,
    place_order,
    product,
    reject,
    reserve,
    staff_client,
)

pytestmark = pytest.mark.django_db(databases=["orders", "default"])


def url(order: Order, action: str = "") -> str:
    return f"/api/orders/{order.id}/" + (f"{action}/" if action else "")


def state_of(order: Order) -> str:
    return Order.objects.get(pk=order.id).state


# --- confirm / reject (catalog's answer) ------------------------------------------------------


def test_stock_reserved_confirms_a_pending_order_and_records_order_confirmed():
    client, customer_id = customer_client()
    book = product(price="3.00")
    order = place_order(customer_id, (book, 2))

    assert reserve(order) == [Outcome.APPLIED]

    body = client.get(url(order)).json()
    assert body["state"] == "confirmed" and body["confirmed_at"]
    assert body["actions"] == ["pay", "cancel"]
    [message] = outbox("orders.OrderConfirmed", aggregate_id=order.id)
    assert message.payload["lines"] == [{"book_id": book.book_id, "quantity": 2, "unit_price": "3.00"}]
    assert message.payload["customer_id"] == str(customer_id)


def test_stock_rejected_rejects_the_order_with_reasons_the_customer_sees():
    client, customer_id = customer_client()
    scarce = product(title="Scarce")
    order = place_order(customer_id, (scarce, 5))

    assert reject(order, reason="insufficient_stock", available=2) == [Outcome.APPLIED]

    body = client.get(url(order)).json()
    assert body["state"] == "rejected" and body["actions"] == []
    assert body["lines"][0]["rejection"] == {
        "reason": "insufficient_stock",
        "message": "Not enough copies in stock.",
        "requested": 5,
        "available": 2,
    }
    [message] = outbox("orders.OrderRejected", aggregate_id=order.id)
    assert message.payload["reasons"] == [
        {"book_id": scarce.book_id, "reason": "insufficient_stock", "requested": 5, "available": 2}
    ]


def test_the_same_stock_reserved_event_twice_is_applied_once():
    _, customer_id = customer_client()
    order = place_order(customer_id, (product(), 1))
    envelope = envelope_of(
        StockReserved(order_id=order.id, lines=[{"book_id": order.lines.get().book_id, "quantity": 1}])
    )

    assert deliver(None, envelope=envelope) == [Outcome.APPLIED]
    assert deliver(None, envelope=envelope) == [Outcome.DUPLICATE]

    assert len(outbox("orders.OrderConfirmed", aggregate_id=order.id)) == 1


def test_a_second_stock_reserved_with_a_new_id_changes_nothing():
    _, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    assert reserve(order) == [Outcome.APPLIED]

    assert state_of(order) == "confirmed"
    assert len(outbox("orders.OrderConfirmed", aggregate_id=order.id)) == 1


def test_stock_rejected_after_confirmation_is_ignored():
    _, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    reject(order)

    assert state_of(order) == "confirmed"
    assert outbox("orders.OrderRejected") == []


def test_stock_reserved_for_an_unknown_order_is_parked_as_a_dead_letter():
    from messaging.models import DeadLetter

    event = StockReserved(order_id=uuid.uuid4(), lines=[{"book_id": 1, "quantity": 1}])

    assert deliver(event) == [Outcome.DEAD_LETTERED]
    assert DeadLetter.objects.using("orders").filter(event_type="catalog.StockReserved").count() == 1


# --- pay ------------------------------------------------------------------------------------


def test_pay_a_confirmed_order():
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(price="7.50"), 2))

    response = client.post(url(order, "pay"), VALID_CARD, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "paid" and body["paid_at"] and body["payment_reference"].startswith("sim_")
    [message] = outbox("orders.OrderPaid", aggregate_id=order.id)
    assert message.payload == {
        "order_id": str(order.id),
        "customer_id": str(customer_id),
        "amount": "15.00",
        "currency": "EUR",
    }
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.outcome, attempt.card_last4, attempt.card_brand) == ("approved", "4242", "visa")


def test_a_declined_card_is_402_and_the_order_stays_confirmed():
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    response = client.post(url(order, "pay"), DECLINED_CARD, format="json")

    assert response.status_code == 402
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "card_declined"
    assert state_of(order) == "confirmed"
    assert outbox("orders.OrderPaid") == []
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.outcome, attempt.decline_code) == ("declined", "card_declined")

    # Another card then works.
    assert client.post(url(order, "pay"), VALID_CARD, format="json").status_code == 200


def test_insufficient_funds_card_is_declined():
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    response = client.post(url(order, "pay"), {**VALID_CARD, "card_number": "4000000000009995"}, format="json")

    assert response.status_code == 402 and response.json()["code"] == "insufficient_funds"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"card_number": "4242424242424241"}, "card_number"),  # Luhn fails
        ({"card_number": "4242-abc"}, "card_number"),
        ({"expiry": "13/30"}, "expiry"),
        ({"expiry": "1230"}, "expiry"),
        ({"expiry": "01/20"}, "expiry"),  # in the past
        ({"cvc": "12"}, "cvc"),
        ({"cvc": "12a"}, "cvc"),
        ({"amount": "0.01"}, "amount"),  # a client cannot say how much it pays
    ],
)
def test_card_details_are_validated(changes, field):
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    response = client.post(url(order, "pay"), {**VALID_CARD, **changes}, format="json")

    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == {field}
    assert state_of(order) == "confirmed"
    assert not PaymentAttempt.objects.exists()


def test_a_pending_order_cannot_be_paid_yet():
    client, customer_id = customer_client()
    order = place_order(customer_id, (product(), 1))

    response = client.post(url(order, "pay"), VALID_CARD, format="json")

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["state"], body["action"]) == ("illegal_transition", "pending", "pay")
    assert "waiting" in body["detail"]


def test_an_order_is_paid_once():
    client, customer_id = customer_client()
    order = paid_order(customer_id, (product(), 1))

    response = client.post(url(order, "pay"), VALID_CARD, format="json")

    assert response.status_code == 409 and response.json()["detail"] == "The order is already paid."
    assert len(outbox("orders.OrderPaid")) == 1


# --- ship ---------------------------------------------------------------------------------


def test_staff_ship_a_paid_order():
    _, customer_id = customer_client()
    order = paid_order(customer_id, (product(), 3))

    response = staff_client().post(url(order, "ship"))

    assert response.status_code == 200
    assert response.json()["state"] == "shipped" and response.json()["shipped_at"]
    [message] = outbox("orders.OrderShipped", aggregate_id=order.id)
    assert message.payload["lines"][0]["quantity"] == 3


def test_a_customer_cannot_ship_even_their_own_order():
    client, customer_id = customer_client()
    order = paid_order(customer_id, (product(), 1))

    assert client.post(url(order, "ship")).status_code == 403
    assert state_of(order) == "paid"


def test_an_unpaid_order_cannot_ship():
    _, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))

    response = staff_client().post(url(order, "ship"))

    assert response.status_code == 409
    assert response.json()["detail"] == "Only paid orders can be shipped; this one is confirmed."


def test_shipping_an_unknown_order_is_404():
    assert staff_client().post(f"/api/orders/{uuid.uuid4()}/ship/").status_code == 404


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_pending_order_tells_catalog_nothing_was_held():
    client, customer_id = customer_client()
    order = place_order(customer_id, (product(), 1))

    response = client.post(url(order, "cancel"))

    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    [message] = outbox("orders.OrderCancelled", aggregate_id=order.id)
    assert message.payload["was_confirmed"] is False


def test_cancel_a_confirmed_order_releases_its_stock():
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 2))

    assert client.post(url(order, "cancel")).status_code == 200

    [message] = outbox("orders.OrderCancelled", aggregate_id=order.id)
    assert message.payload["was_confirmed"] is True
    assert message.payload["lines"][0]["quantity"] == 2


@pytest.mark.parametrize("make", ["paid", "shipped", "rejected", "cancelled"])
def test_only_pending_or_confirmed_orders_can_be_cancelled(make):
    client, customer_id = customer_client()
    book = product()
    if make == "rejected":
        order = place_order(customer_id, (book, 1))
        reject(order)
    elif make == "cancelled":
        order = place_order(customer_id, (book, 1))
        client.post(url(order, "cancel"))
    else:
        order = paid_order(customer_id, (book, 1))
        if make == "shipped":
            staff_client().post(url(order, "ship"))
    events_before = len(outbox("orders.OrderCancelled"))

    response = client.post(url(order, "cancel"))

    assert response.status_code == 409
    assert response.json()["state"] == make and response.json()["action"] == "cancel"
    assert state_of(order) == make
    assert len(outbox("orders.OrderCancelled")) == events_before


def test_stock_reserved_after_a_cancel_while_pending_asks_catalog_to_release_once():
    client, customer_id = customer_client()
    order = place_order(customer_id, (product(), 2))
    client.post(url(order, "cancel"))

    assert reserve(order) == [Outcome.APPLIED]
    assert reserve(order) == [Outcome.APPLIED]  # a redelivery under a new event id

    assert state_of(order) == "cancelled"
    assert outbox("orders.OrderConfirmed") == []
    cancellations = [m.payload["was_confirmed"] for m in outbox("orders.OrderCancelled", aggregate_id=order.id)]
    assert cancellations == [False, True]


def test_stock_reserved_after_a_cancel_of_a_confirmed_order_asks_nothing_more():
    client, customer_id = customer_client()
    order = confirmed_order(customer_id, (product(), 1))
    client.post(url(order, "cancel"))

    reserve(order)

    assert [m.payload["was_confirmed"] for m in outbox("orders.OrderCancelled")] == [True]


def test_stock_rejected_after_a_cancel_changes_nothing():
    client, customer_id = customer_client()
    order = place_order(customer_id, (product(), 1))
    client.post(url(order, "cancel"))

    reject(order)

    assert state_of(order) == "cancelled"
    assert outbox("orders.OrderRejected") == []


# --- who sees what ------------------------------------------------------------------------------


def test_another_customers_order_does_not_exist_for_you():
    _, alice_id = customer_client()
    bob, _ = customer_client()
    order = confirmed_order(alice_id, (product(), 1))

    assert bob.get(url(order)).status_code == 404
    assert bob.post(url(order, "pay"), VALID_CARD, format="json").status_code == 404
    assert bob.post(url(order, "cancel")).status_code == 404
    assert state_of(order) == "confirmed"


def test_customers_list_only_their_own_orders_newest_first_paginated():
    alice, alice_id = customer_client()
    _, bob_id = customer_client()
    book = product()
    mine = [place_order(alice_id, (book, 1)) for _ in range(3)]
    place_order(bob_id, (book, 1))

    response = alice.get("/api/orders/?limit=2")

    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 3
    assert [o["id"] for o in page["results"]] == [str(mine[2].id), str(mine[1].id)]
    assert page["next"]
    assert [o["id"] for o in alice.get(page["next"]).json()["results"]] == [str(mine[0].id)]


def test_orders_can_be_listed_by_state():
    client, customer_id = customer_client()
    book = product()
    confirmed = confirmed_order(customer_id, (book, 1))
    place_order(customer_id, (book, 1))

    assert [o["id"] for o in client.get("/api/orders/?state=confirmed").json()["results"]] == [str(confirmed.id)]
    bad = client.get("/api/orders/?state=lost")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "state"


def test_staff_see_every_order_and_anonymous_none():
    from rest_framework.test import APIClient

    book = product()
    orders = [place_order(uuid.uuid4(), (book, 1)) for _ in range(2)]
    staff = staff_client()

    assert staff.get("/api/orders/").json()["count"] == 2
    assert staff.get(url(orders[0])).status_code == 200
    assert APIClient().get("/api/orders/").status_code == 401
    assert APIClient().get(url(orders[0])).status_code == 401
