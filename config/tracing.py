"""OpenTelemetry tracing, off by default: ``OTEL_ENABLED=true`` installs the SDK in every process.

With it on, each process (gunicorn worker, relay, consumer, command) has a tracer provider
named ``OTEL_SERVICE_NAME`` (default ``quire-<SERVICE>``) that exports spans in batches with
the OTLP/HTTP exporter; its endpoint, headers and timeout are the SDK's standard variables
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``
...) and the sampler ``OTEL_TRACES_SAMPLER`` (parent-based, always on, by default).

:class:`TracingMiddleware` opens the SERVER span of each request, continuing the caller's
``traceparent`` header; the messaging kernel carries the context on from there
(``messaging/tracing.py``): outbox row, Kafka record header, the handler's CONSUMER span.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)
_propagator = TraceContextTextMapPropagator()


def install(*, service_name: str, processor: SpanProcessor | None = None) -> TracerProvider:
    """Make an SDK tracer provider the process's global one (once); spans go to ``processor``.

    Without ``processor``: batches to the OTLP/HTTP exporter configured by the OTEL_* variables.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    logger.info("tracing on: spans of %s exported over OTLP", service_name)
    return provider


class TracingMiddleware:
    """One SERVER span per request, child of the caller's ``traceparent`` (W3C) if it sent one."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.tracer = trace.get_tracer("quire.web")

    def __call__(self, request):
        parent = _propagator.extract({"traceparent": request.headers.get("traceparent", "")})
        with self.tracer.start_as_current_span(
            request.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path},
        ) as span:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            if match is not None and match.route:
                span.update_name(f"{request.method} /{match.route}")
                span.set_attribute("http.route", f"/{match.route}")
            span.set_attribute("http.response.status_code", response.status_code)
            if response.has_header("X-Correlation-ID"):
                span.set_attribute("quire.correlation_id", response["X-Correlation-ID"])
            # W3C Trace Context's response header: the caller (and gunicorn's access line, written
            # after this span ended) learns the trace the request was recorded under.
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)  # this span is the current one: its traceparent
            if "traceparent" in carrier:
                response["traceresponse"] = carrier["traceparent"]
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response
