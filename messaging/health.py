"""Readiness checks the kernel can answer: is a module's outbox being drained?

An outbox row that stays unpublished means the relay (or, in one process, in-process
delivery) is not doing its job, although every request may still succeed: the one symptom
of a stalled pipeline that a web process can see for itself.
"""

from __future__ import annotations

import dataclasses
import datetime

from django.db import DatabaseError
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from messaging.models import OutboxMessage


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
