"""W3C trace context from an HTTP request through the outbox (and Kafka) into the handler's span.

The SDK's InMemorySpanExporter records the spans; the global tracer provider is swapped in for
the test and put back afterwards, so other tests run with tracing off, as by default.
"""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from config.tracing import TracingMiddleware
from messaging.kafka.consumer import ModuleConsumer
from messaging.kafka.relay import OutboxRelay
from messaging.kafka.topics import dead_letter_topic, ensure_topics, events_topic
from messaging.models import OutboxMessage
from messaging.transports import get_transport
from tests.messaging.probes import publish_probe, use_kafka_transport
from tests.support.kafka import read_records

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture
def spans(monkeypatch):
    """Tracing on, into memory, for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


def checkout_request(publish) -> None:
    """A request from a caller that sent a traceparent, whose view publishes one probe event."""

    def view(request):
        publish()
        return HttpResponse(status=201)

    request = RequestFactory().post("/api/orders/", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert TracingMiddleware(view)(request).status_code == 201


def by_kind(exporter: InMemorySpanExporter) -> dict[SpanKind, list]:
    found: dict[SpanKind, list] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.kind, []).append(span)
    return found


@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
def test_in_process_the_handlers_span_is_a_child_of_the_request(spans, probe_handler):
    checkout_request(lambda: publish_probe(7))

    assert [event.probe_id for event in probe_handler.received] == [7]
    row = OutboxMessage.objects.using("catalog").get()
    kinds = by_kind(spans)
    (server,), (consumer,) = kinds[SpanKind.SERVER], kinds[SpanKind.CONSUMER]
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert format(server.parent.span_id, "016x") == CALLER_SPAN
    assert row.traceparent == f"00-{CALLER_TRACE}-{format(server.context.span_id, '016x')}-01"
    assert consumer.context.trace_id == server.context.trace_id
    assert consumer.parent.span_id == server.context.span_id
    assert consumer.attributes["quire.handler"] == "orders.handlers.probe"
    assert consumer.attributes["quire.outcome"] == "applied"


@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
def test_without_tracing_the_outbox_row_has_no_trace_context(probe_handler):
    publish_probe(8)  # no span is current, and no SDK is installed: nothing to carry

    assert OutboxMessage.objects.using("catalog").get().traceparent is None


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.django_db(databases=["catalog", "orders"], transaction=True)
@pytest.mark.usefixtures("relay_client")
def test_over_kafka_one_trace_spans_request_relay_and_consumer(spans, probe_handler, settings):
    servers = use_kafka_transport(settings)
    ensure_topics([events_topic("catalog"), dead_letter_topic("orders")], bootstrap_servers=servers)
    try:
        checkout_request(lambda: publish_probe(9))
        with OutboxRelay(["catalog"]) as relay:
            assert relay.drain() == 1
        ModuleConsumer("orders").run(max_messages=1)
    finally:
        get_transport().close()

    assert [event.probe_id for event in probe_handler.received] == [9]
    kinds = by_kind(spans)
    (server,), (producer,), (consumer,) = kinds[SpanKind.SERVER], kinds[SpanKind.PRODUCER], kinds[SpanKind.CONSUMER]
    assert {format(s.context.trace_id, "032x") for s in (server, producer, consumer)} == {CALLER_TRACE}
    assert producer.parent.span_id == server.context.span_id
    assert producer.name == f"{events_topic('catalog')} publish"
    assert consumer.parent.span_id == producer.context.span_id
    (record,) = read_records(",".join(servers), events_topic("catalog"))
    sent = f"00-{CALLER_TRACE}-{format(producer.context.span_id, '016x')}-01"
    assert dict(record.headers)["traceparent"] == sent.encode()


def test_the_response_names_the_trace_the_request_was_recorded_under(spans):
    request = RequestFactory().get("/api/", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})

    response = TracingMiddleware(lambda request: HttpResponse())(request)

    # W3C's traceresponse header: what gunicorn's access line takes its trace id from (config/logs.py).
    (server,) = spans.get_finished_spans()
    assert response["traceresponse"] == f"00-{CALLER_TRACE}-{format(server.context.span_id, '016x')}-01"
