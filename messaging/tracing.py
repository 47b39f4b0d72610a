"""W3C trace context across the event pipeline: request -> outbox row -> Kafka record -> handler.

Tracing is off unless the composition root installs an OpenTelemetry SDK tracer provider
(``OTEL_ENABLED=true``, see ``config/tracing.py``); the kernel only uses the API. Off, nothing
here records a span and :func:`current_traceparent` is "" (so the outbox column stays empty and
no header is added): the pipeline pays nothing for it.

On, publishing stores the current span's ``traceparent`` in the outbox row; the relay sends each
record in a PRODUCER span that is its child and puts that span's context in the record's
``traceparent`` header; delivery runs each handler in a CONSUMER span whose parent is the
envelope's traceparent. Events a handler publishes carry its span on: one checkout is one trace
across the services it touches. The in-process transport goes through the same delivery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

HEADER = "traceparent"
_propagator = TraceContextTextMapPropagator()


def enabled() -> bool:
    """True when a recording tracer provider is installed (the API's default one records nothing)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def current_traceparent() -> str:
    """The ``traceparent`` of the current span, or "" without a valid (sampled or not) span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(HEADER, "")


def _parent(traceparent: str | None) -> otel_context.Context | None:
    return _propagator.extract({HEADER: traceparent}) if traceparent else None


@contextlib.contextmanager
def span(name: str, *, kind: SpanKind, traceparent: str | None, attributes: dict) -> Iterator[trace.Span]:
    """A span whose parent is ``traceparent`` (a root span without one), current while the block runs.

    Without tracing: no span at all (not even a no-op one), the cheapest path for every event.
    """
    if not enabled():
        yield trace.INVALID_SPAN
        return
    tracer = trace.get_tracer("quire.messaging")
    with tracer.start_as_current_span(name, context=_parent(traceparent), kind=kind, attributes=attributes) as current:
        yield current


def producer_traceparent(traceparent: str | None, *, topic: str, event_type: str, event_id: str) -> str:
    """The relay's ``publish`` span of one record (child of the row's context); its traceparent.

    Without tracing the stored value is passed on as it is (the chain is not broken by a relay
    that does not record).
    """
    if not traceparent or not enabled():
        return traceparent or ""
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "publish",
        "messaging.destination.name": topic,
        "messaging.message.id": event_id,
        "quire.event_type": event_type,
    }
    with span(f"{topic} publish", kind=SpanKind.PRODUCER, traceparent=traceparent, attributes=attributes):
        return current_traceparent()
