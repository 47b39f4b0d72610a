"""catalog's side of the checkout saga: reserve all or nothing, release on cancel, sell on ship,
idempotent and tolerant of events arriving in any order."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.utils import timezone

from catalog import errors, services
from catalog.models import Stock, StockReservation
from messaging import Envelope, publish
from messaging.delivery import Outcome, deliver
from messaging.models import OutboxMessage
from messaging.registry import subscription
from orders.contracts import OrderCancelled, OrderLine, OrderPlaced, OrderShipped

from .factories import book_create, outbox, outbox_types, stock_of

pytestmark = pytest.mark.django_db(databases=["catalog"])

CUSTOMER = uuid.uuid4()
RESERVE = "catalog.handlers.stock_reserve_on_order_placed"
RELEASE = "catalog.handlers.stock_release_on_order_cancelled"
SELL = "catalog.handlers.stock_sell_on_order_shipped"


def order_lines(*lines: tuple[int, int]) -> list[OrderLine]:
    return [OrderLine(book_id=book_id, quantity=quantity, unit_price=Decimal("1.00")) for book_id, quantity in lines]


def placed(order_id: uuid.UUID, *lines: tuple[int, int]) -> OrderPlaced:
    order_lines_ = order_lines(*lines)
    return OrderPlaced(
        order_id=order_id,
        customer_id=CUSTOMER,
        lines=order_lines_,
        total=sum((line.unit_price * line.quantity for line in order_lines_), Decimal("0")),
        currency="EUR",
    )


def cancelled(order_id: uuid.UUID, *lines: tuple[int, int], was_confirmed: bool = True) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id, customer_id=CUSTOMER, lines=order_lines(*lines), was_confirmed=was_confirmed
    )


def shipped(order_id: uuid.UUID, *lines: tuple[int, int]) -> OrderShipped:
    return OrderShipped(order_id=order_id, customer_id=CUSTOMER, lines=order_lines(*lines))


def envelope_of(event) -> Envelope:
    return Envelope(
        event_type=event.event_type,
        event_version=event.event_version,
        aggregate_id=event.aggregate_id,
        producer=event.producer(),
        payload=event.to_payload(),
        occurred_at=timezone.now(),
    )


def handle(handler: str, event) -> Outcome:
    """Deliver as the transports do: inbox row, handler and its events in one catalog transaction."""
    return deliver(envelope_of(event), subscription(handler))


def state_of(order_id: uuid.UUID) -> str | None:
    reservation = StockReservation.objects.using("catalog").filter(order_id=order_id).first()
    return reservation.state if reservation else None


def test_an_order_that_can_be_served_reserves_every_line():
    first, second = book_create(on_hand=5), book_create(on_hand=2)
    order = uuid.uuid4()

    assert handle(RESERVE, placed(order, (first.pk, 2), (second.pk, 2))) == Outcome.APPLIED

    assert (stock_of(first), stock_of(second)) == ((5, 2), (2, 2))
    [reserved] = outbox("catalog.StockReserved")
    assert reserved.payload == {
        "order_id": str(order),
        "lines": [{"book_id": first.pk, "quantity": 2}, {"book_id": second.pk, "quantity": 2}],
    }
    assert [(m.payload["book_id"], m.payload["available"]) for m in outbox("catalog.StockChanged")] == [
        (first.pk, 3),
        (second.pk, 0),
    ]
    reservation = StockReservation.objects.using("catalog").get(order_id=order)
    assert reservation.state == "reserved"
    assert sorted(reservation.lines.values_list("book_id", "quantity")) == [(first.pk, 2), (second.pk, 2)]


def test_one_line_short_reserves_nothing_at_all():
    first, second = book_create(on_hand=5), book_create(on_hand=2)
    order = uuid.uuid4()

    handle(RESERVE, placed(order, (first.pk, 2), (second.pk, 3)))

    assert (stock_of(first), stock_of(second)) == ((5, 0), (2, 0))
    [rejected] = outbox("catalog.StockRejected")
    assert rejected.payload["lines"] == [
        {"book_id": second.pk, "requested": 3, "available": 2, "reason": "insufficient_stock"}
    ]
    assert outbox("catalog.StockChanged") == [] and outbox("catalog.StockReserved") == []
    assert state_of(order) == "rejected"


def test_every_refused_line_carries_its_reason():
    fine, withdrawn, short = book_create(on_hand=5), book_create(on_hand=5), book_create(on_hand=1)
    services.book_withdraw(book=withdrawn)
    unknown_book = fine.pk + withdrawn.pk + short.pk + 1000

    services.stock_reserve(
        order_id=uuid.uuid4(),
        lines=[(fine.pk, 1), (withdrawn.pk, 1), (short.pk, 4), (unknown_book, 2)],
    )

    [rejected] = outbox("catalog.StockRejected")
    assert {
        line["book_id"]: (line["reason"], line["requested"], line["available"]) for line in rejected.payload["lines"]
    } == {
        withdrawn.pk: ("withdrawn", 1, 5),
        short.pk: ("insufficient_stock", 4, 1),
        unknown_book: ("unknown_book", 2, 0),
    }
    assert stock_of(fine) == (5, 0)


def test_lines_for_the_same_book_count_together():
    book = book_create(on_hand=3)

    services.stock_reserve(order_id=uuid.uuid4(), lines=[(book.pk, 2), (book.pk, 2)])

    assert outbox("catalog.StockRejected")[0].payload["lines"][0]["requested"] == 4
    assert stock_of(book) == (3, 0)


def test_the_last_copies_go_to_the_first_order():
    book = book_create(on_hand=3)
    first, second = uuid.uuid4(), uuid.uuid4()

    handle(RESERVE, placed(first, (book.pk, 2)))
    handle(RESERVE, placed(second, (book.pk, 2)))

    assert (state_of(first), state_of(second)) == ("reserved", "rejected")
    assert outbox("catalog.StockRejected")[0].payload["lines"][0]["available"] == 1
    assert stock_of(book) == (3, 2)


def test_cancelling_releases_the_reservation_once():
    book = book_create(on_hand=4)
    order = uuid.uuid4()
    handle(RESERVE, placed(order, (book.pk, 3)))

    handle(RELEASE, cancelled(order, (book.pk, 3)))
    handle(RELEASE, cancelled(order, (book.pk, 3)))  # re-sent under a new event id

    assert stock_of(book) == (4, 0)
    assert state_of(order) == "released"
    assert [m.payload["reserved"] for m in outbox("catalog.StockChanged")] == [3, 0]


def test_a_cancel_for_a_pending_order_still_releases_what_catalog_holds():
    # orders cancels while our StockReserved is on its way: was_confirmed is false, yet copies are held.
    book = book_create(on_hand=2)
    order = uuid.uuid4()
    handle(RESERVE, placed(order, (book.pk, 1)))

    handle(RELEASE, cancelled(order, (book.pk, 1), was_confirmed=False))

    assert stock_of(book) == (2, 0)


def test_shipping_turns_the_reservation_into_a_sale_once():
    book = book_create(on_hand=4)
    order = uuid.uuid4()
    handle(RESERVE, placed(order, (book.pk, 3)))

    handle(SELL, shipped(order, (book.pk, 3)))
    handle(SELL, shipped(order, (book.pk, 3)))
    handle(RELEASE, cancelled(order, (book.pk, 3)))  # too late: sold goods are not released

    assert stock_of(book) == (1, 0)
    assert state_of(order) == "sold"
    assert [(m.payload["on_hand"], m.payload["reserved"]) for m in outbox("catalog.StockChanged")] == [(4, 3), (1, 0)]


def test_the_same_order_placed_event_delivered_twice_reserves_once():
    book = book_create(on_hand=5)
    order = uuid.uuid4()
    envelope = envelope_of(placed(order, (book.pk, 2)))

    assert deliver(envelope, subscription(RESERVE)) == Outcome.APPLIED
    assert deliver(envelope, subscription(RESERVE)) == Outcome.DUPLICATE
    # And the same order announced again under a new event id (orders re-announces an order that
    # stays pending: catalog's answer may have been lost): held once, answered again.
    assert handle(RESERVE, placed(order, (book.pk, 2))) == Outcome.APPLIED

    assert stock_of(book) == (5, 2)
    answers = outbox("catalog.StockReserved")
    assert len(answers) == 2
    assert (
        answers[0].payload
        == answers[1].payload
        == {"order_id": str(order), "lines": [{"book_id": book.pk, "quantity": 2}]}
    )


def test_an_order_announced_again_after_a_refusal_is_refused_again_and_one_cancelled_gets_no_answer():
    book = book_create(on_hand=1)
    refused, cancelled_first = uuid.uuid4(), uuid.uuid4()
    handle(RESERVE, placed(refused, (book.pk, 2)))
    handle(RELEASE, cancelled(cancelled_first, (book.pk, 1), was_confirmed=False))

    handle(RESERVE, placed(refused, (book.pk, 2)))
    handle(RESERVE, placed(cancelled_first, (book.pk, 1)))

    answers = outbox("catalog.StockRejected")
    assert [m.payload for m in answers] == [answers[0].payload] * 2
    assert answers[0].payload["lines"] == [
        {"book_id": book.pk, "requested": 2, "available": 1, "reason": "insufficient_stock"}
    ]
    assert not outbox("catalog.StockReserved")
    assert stock_of(book) == (1, 0)


def test_a_cancel_that_overtakes_its_order_makes_the_late_order_reserve_nothing():
    book = book_create(on_hand=5)
    order = uuid.uuid4()

    handle(RELEASE, cancelled(order, (book.pk, 2), was_confirmed=False))
    handle(RESERVE, placed(order, (book.pk, 2)))

    assert stock_of(book) == (5, 0)
    assert state_of(order) == "cancelled"
    assert outbox_types() == ["catalog.BookPublished"]


def test_shipping_an_order_catalog_never_reserved_is_parked_for_an_operator():
    book = book_create(on_hand=5)

    with pytest.raises(errors.ReservationStateError):
        services.stock_sell(order_id=uuid.uuid4())
    assert handle(SELL, shipped(uuid.uuid4(), (book.pk, 1))) == Outcome.DEAD_LETTERED
    assert stock_of(book) == (5, 0)


ALL_DATABASES = ["default", "accounts", "catalog", "orders", "recommendations"]


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_an_order_placed_by_orders_reaches_catalog_through_the_outbox():
    book = book_create(on_hand=3)
    order = uuid.uuid4()

    with transaction.atomic(using="orders"):
        publish(placed(order, (book.pk, 2)))

    assert stock_of(book) == (3, 2)
    reserved = OutboxMessage.objects.using("catalog").get(event_type="catalog.StockReserved")
    assert reserved.payload["order_id"] == str(order)
    assert reserved.published_at is not None  # handed on to orders in turn


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_concurrent_orders_never_oversell():
    if connections["catalog"].vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and concurrent writers (make test starts one)")
    book = book_create(on_hand=5)
    orders = [uuid.uuid4() for _ in range(12)]
    start = threading.Barrier(len(orders))
    errors: list[BaseException] = []

    def place(order_id: uuid.UUID) -> None:
        try:
            start.wait()
            for _ in range(20):  # a deadlock or serialization failure is retried, as the consumer would
                try:
                    services.stock_reserve(order_id=order_id, lines=[(book.pk, 1)])
                    return
                except errors.StockConflict:
                    continue
        except BaseException as error:  # reported to the test thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=place, args=(order_id,)) for order_id in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    states = list(StockReservation.objects.using("catalog").values_list("state", flat=True))
    assert sorted(states) == ["rejected"] * 7 + ["reserved"] * 5
    stock = Stock.objects.using("catalog").get(book=book)
    assert (stock.on_hand, stock.reserved) == (5, 5)
