"""One trace follows a checkout's saga: orders -> catalog -> orders, with the real handlers.

The request's SERVER span is the parent of catalog's CONSUMER span of ``OrderPlaced``; the
``StockReserved`` that handler publishes carries that span's context (its outbox row, its Kafka
record), so orders' CONSUMER span confirming the order is its child, in the same trace. Spans are
recorded with the SDK's InMemorySpanExporter (``tests/messaging/test_tracing.py``'s fixture).
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connections
from opentelemetry.trace import SpanKind

from catalog import services as catalog_services
from config import topology
from messaging.kafka.consumer import ModuleConsumer
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.topics import ensure_topics, events_topic, module_topics
from messaging.models import OutboxMessage
from messaging.transports import get_transport
from orders import services
from orders.models import Order, Product
from tests.messaging.probes import use_kafka_transport
from tests.messaging.test_tracing import CALLER_TRACE, checkout_request, spans  # noqa: F401  (spans: fixture)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", *topology.MODULES])

RESERVE = "catalog.handlers.stock_reserve_on_order_placed"
CONFIRM = "orders.handlers.order_confirm_on_stock_reserved"


def book() -> int:
    author = catalog_services.author_create(name="Octavia E. Butler")
    return catalog_services.book_create(title="Kindred", authors=[author], price=Decimal("12.00"), on_hand=3).pk


def place_order(book_id: int) -> Order:
    placed = []
    checkout_request(
        lambda: placed.append(
            services.order_place(customer_id=uuid.uuid4(), lines=[services.LineRequest(book_id=book_id, quantity=1)])
        )
    )
    return placed[0]


def consumer_span(exporter, handler: str):
    (span,) = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.CONSUMER and s.attributes["quire.handler"] == handler
    ]
    return span


def traceparent_of(span) -> str:
    return f"00-{CALLER_TRACE}-{format(span.context.span_id, '016x')}-01"


def test_in_process_catalogs_answer_continues_the_trace_of_the_checkout(spans):  # noqa: F811
    book_id = book()
    spans.clear()  # the book's own events: not this trace

    order = place_order(book_id)

    order.refresh_from_db()
    assert order.state == "confirmed"
    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    reserve, confirm = consumer_span(spans, RESERVE), consumer_span(spans, CONFIRM)
    assert {format(s.context.trace_id, "032x") for s in (server, reserve, confirm)} == {CALLER_TRACE}
    assert reserve.parent.span_id == server.context.span_id
    reserved = OutboxMessage.objects.using("catalog").get(event_type="catalog.StockReserved")
    assert reserved.traceparent == traceparent_of(reserve)  # published while handling OrderPlaced
    assert confirm.parent.span_id == reserve.context.span_id


def consume_until(module: str, condition, message: str) -> None:
    """Run ``module``'s Kafka consumer until ``condition()`` holds, as run_consumer would."""
    consumer = ModuleConsumer(module)
    thread = threading.Thread(target=lambda: (consumer.run(), connections.close_all()), daemon=True)
    thread.start()
    try:
        wait_until(condition, timeout=60, message=message)
    finally:
        consumer.stop()
        thread.join(timeout=30)


@pytest.mark.kafka
@pytest.mark.postgres
def test_over_kafka_one_trace_spans_orders_catalog_and_orders_again(spans, settings):  # noqa: F811
    servers = use_kafka_transport(settings)
    ensure_topics(module_topics(topology.MODULES), bootstrap_servers=servers)
    try:
        book_id = book()
        with OutboxRelay(["catalog"]) as relay:
            relay.drain()
        consume_until("orders", Product.objects.filter(book_id=book_id).exists, "orders knowing the book")
        spans.clear()

        order = place_order(book_id)
        with OutboxRelay(["orders"]) as relay:
            assert relay.drain() == 1  # OrderPlaced
        consume_until(
            "catalog",
            OutboxMessage.objects.using("catalog").filter(event_type="catalog.StockReserved").exists,
            "catalog answering",
        )
        with OutboxRelay(["catalog"]) as relay:
            relay.drain()
        consume_until(
            "orders", lambda: Order.objects.get(pk=order.pk).state == "confirmed", "orders confirming the order"
        )
    finally:
        get_transport().close()

    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind == SpanKind.SERVER]
    reserve, confirm = consumer_span(spans, RESERVE), consumer_span(spans, CONFIRM)
    reserved = OutboxMessage.objects.using("catalog").get(event_type="catalog.StockReserved")
    producers = {s.attributes["messaging.message.id"]: s for s in finished if s.kind == SpanKind.PRODUCER}
    placed = OutboxMessage.objects.using("orders").get(event_type="orders.OrderPlaced")
    to_catalog, to_orders = producers[str(placed.event_id)], producers[str(reserved.event_id)]
    # request -> relay (orders) -> catalog's handler -> relay (catalog) -> orders' handler: one trace.
    chain = [server, to_catalog, reserve, to_orders, confirm]
    assert {format(s.context.trace_id, "032x") for s in chain} == {CALLER_TRACE}
    assert [s.parent.span_id for s in chain[1:]] == [s.context.span_id for s in chain[:-1]]
    assert to_orders.name == f"{events_topic('catalog')} publish"
    assert reserved.traceparent == traceparent_of(reserve)
