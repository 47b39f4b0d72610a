"""What the kernel can tell an operator from the database: is each module's outbox being drained?

- :class:`OutboxAge`, a readiness check for ``/health/ready/``;
- :class:`OutboxCollector`, the scrape-time gauges of ``/metrics`` (backlog, oldest age, dead letters).

An outbox row that stays unpublished means the relay (or, in one process, in-process
delivery) is not doing its job, although every request may still succeed: the one symptom
of a stalled pipeline that a web process can see for itself.
"""

from __future__ import annotations

import dataclasses
import datetime

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from prometheus_client.core import GaugeMetricFamily

from messaging.models import DeadLetter, OutboxMessage


def oldest_unpublished_age(alias: str) -> float | None:
    """Seconds since the oldest unpublished outbox row of ``alias`` occurred, or None if none waits."""
    oldest = (
        OutboxMessage.objects.using(alias)
        .filter(published_at__isnull=True)
        .order_by("id")  # served by the partial index on unpublished rows
        .values_list("occurred_at", flat=True)
        .first()
    )
    return None if oldest is None else max((timezone.now() - oldest).total_seconds(), 0.0)


@dataclasses.dataclass
class OutboxAge(HealthCheck):
    """The oldest unpublished event of one module's outbox is younger than ``max_age_seconds``."""

    alias: str
    max_age_seconds: float
    timeout = datetime.timedelta(seconds=3)

    @property
    def name(self) -> str:
        return f"outbox:{self.alias}"

    def run(self) -> None:
        try:
            age = oldest_unpublished_age(self.alias)
        except DatabaseError as error:
            raise ServiceUnavailable(f"outbox unreadable: {type(error).__name__}") from error
        if age is not None and age > self.max_age_seconds:
            raise ServiceUnavailable(
                f"oldest unpublished event waits {age:.0f}s (limit {self.max_age_seconds:g}s): is the relay running?"
            )


class OutboxCollector:
    """Scrape-time gauges of each served module's outbox and dead letters, read from its database."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases  # module -> database alias

    def collect(self):
        backlog = GaugeMetricFamily("quire_outbox_unpublished", "Outbox rows not yet published.", labels=["module"])
        oldest = GaugeMetricFamily(
            "quire_outbox_oldest_unpublished_seconds",
            "Age of the oldest unpublished outbox row (0 when none waits).",
            labels=["module"],
        )
        parked = GaugeMetricFamily(
            "quire_dead_letters_parked", "Dead letters waiting for an operator.", labels=["module"]
        )
        up = GaugeMetricFamily(
            "quire_database_up", "1 if the module's database answered this scrape.", labels=["module"]
        )
        now = timezone.now()
        for module, alias in self.aliases.items():
            try:
                waiting = (
                    OutboxMessage.objects.using(alias)
                    .filter(published_at__isnull=True)
                    .aggregate(count=Count("id"), oldest=Min("occurred_at"))
                )
                dead = DeadLetter.objects.using(alias).filter(status=DeadLetter.Status.PARKED).count()
            except DatabaseError:
                up.add_metric([module], 0)
                continue
            up.add_metric([module], 1)
            backlog.add_metric([module], waiting["count"])
            age = (now - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0.0
            oldest.add_metric([module], max(age, 0.0))
            parked.add_metric([module], dead)
        yield from (backlog, oldest, parked, up)
