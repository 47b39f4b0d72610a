"""/health/live/ and /health/ready/: what a supervisor (Kubernetes, compose, the gateway) asks.

- live: the process answers HTTP. No dependency is consulted, so a database outage never
  gets a healthy process restarted.
- ready: the process can do its work: each served module's database (and ``default``)
  answers, the broker answers when events go through Kafka, and no module's outbox holds an
  event older than ``HEALTH_OUTBOX_MAX_AGE_SECONDS`` (the relay is draining it). Where
  ``run_service`` runs a relay or a consumer beside this web server, their heartbeats are younger
  than their stall limits and the consumer groups leave no partition without a member
  (``messaging.kafka.health.readiness_checks``).

Both answer JSON naming each check and its state, 200 when all pass and 503 otherwise,
without authentication and outside /api/. The checks are django-health-check's (databases)
and Quire's own (outbox age, broker), written on its ``HealthCheck`` base.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views import View
from health_check.checks import Database
from health_check.exceptions import HealthCheckException

from config import topology
from messaging.health import OutboxAge


def _name(check) -> str:
    return getattr(check, "name", None) or f"database:{check.alias}"


def readiness_checks() -> list:
    """The checks of this process's configuration: its databases, its outboxes, its broker."""
    aliases = [topology.alias_for_module(module) for module in settings.SERVED_MODULES]
    checks: list = [Database(alias="default"), *(Database(alias=alias) for alias in aliases)]
    checks += [OutboxAge(alias=alias, max_age_seconds=settings.HEALTH_OUTBOX_MAX_AGE_SECONDS) for alias in aliases]
    if settings.EVENT_TRANSPORT == "kafka":
        from messaging.kafka import health as kafka_health

        checks += kafka_health.readiness_checks()
    return checks


@dataclass(frozen=True)
class Result:
    name: str
    error: str | None
    seconds: float
    details: dict


def run_checks(checks) -> list[Result]:
    """Run each check in this thread, so its database connections are this request's and closed with it.

    (The library's async runner hands sync checks to a thread pool, whose connections outlive the
    request.) Each check bounds its own time: client timeouts for Kafka, the database's for SQL.
    """
    results = []
    for check in checks:
        started = time.monotonic()
        try:
            check.run()
        except HealthCheckException as error:
            message = str(error)
        except Exception as error:  # a check must never turn the probe into a 500
            message = f"unexpected {type(error).__name__}"
        else:
            message = None
        # What a check saw beyond pass or fail (a heartbeat's age, a group's state), when it says.
        details = dict(getattr(check, "details", None) or {})
        results.append(Result(_name(check), message, round(time.monotonic() - started, 4), details))
    return results


def _report(results: list[Result]) -> JsonResponse:
    checks = {
        result.name: (
            {"status": "ok", "seconds": result.seconds}
            if result.error is None
            else {"status": "failing", "error": result.error, "seconds": result.seconds}
        )
        | result.details
        for result in results
    }
    healthy = all(result.error is None for result in results)
    response = JsonResponse(
        {"status": "ok" if healthy else "unavailable", "service": settings.SERVICE, "checks": checks},
        status=200 if healthy else 503,
    )
    add_never_cache_headers(response)
    return response


class LiveView(View):
    def get(self, request):
        response = JsonResponse({"status": "ok", "service": settings.SERVICE, "checks": {"process": {"status": "ok"}}})
        add_never_cache_headers(response)
        return response


class ReadyView(View):
    def get(self, request):
        return _report(run_checks(readiness_checks()))
