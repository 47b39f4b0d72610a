"""OTEL_ENABLED=true switches tracing on in every process: the middleware in the stack, the SDK's provider installed.

Off by default: no middleware and the API's no-op provider, so no span is ever made
(tests/messaging/test_tracing.py proves what the spans carry once it is on).
"""

from __future__ import annotations

import json

from tests.config.test_configuration_errors import start_django

REPORT = """
import json, django
django.setup()
from django.conf import settings
from opentelemetry import trace
provider = trace.get_tracer_provider()
print(json.dumps({
    "middleware": settings.MIDDLEWARE,
    "provider": type(provider).__module__ + "." + type(provider).__name__,
    "service_name": getattr(provider, "resource", None) and provider.resource.attributes.get("service.name"),
}))
"""


def tracing_of(tmp_path, **env) -> dict:
    result = start_django(tmp_path, REPORT, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_otel_enabled_installs_the_middleware_and_the_sdk_provider(tmp_path):
    report = tracing_of(tmp_path, OTEL_ENABLED="true", OTEL_SERVICE_NAME="quire-test-shop")

    middleware = report["middleware"]
    # Outside the correlation id's middleware, so that a request's log lines carry its trace id.
    assert middleware.index("config.tracing.TracingMiddleware") < middleware.index(
        "messaging.correlation.CorrelationIdMiddleware"
    )
    assert report["provider"] == "opentelemetry.sdk.trace.TracerProvider"
    assert report["service_name"] == "quire-test-shop"


def test_tracing_is_off_by_default(tmp_path):
    report = tracing_of(tmp_path)

    assert "config.tracing.TracingMiddleware" not in report["middleware"]
    assert not report["provider"].startswith("opentelemetry.sdk.")
