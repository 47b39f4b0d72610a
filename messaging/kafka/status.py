"""What ``messaging_status`` reports: consumer lag per partition, outbox backlog per module."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from django.db import connections
from django.db.models import Min
from django.utils import timezone

from messaging.conf import messaging_settings
from messaging.kafka.clients import admin_client
from messaging.kafka.groups import PartitionLag, describe_groups
from messaging.models import DeadLetter, OutboxMessage


def consumer_lag(
    groups_topics: dict[str, list[str]], *, bootstrap_servers: list[str] | None = None
) -> list[PartitionLag]:
    """Committed offset, log end and lag for every partition of the topics each group reads."""
    admin = admin_client(bootstrap_servers)
    try:
        views = describe_groups(admin, groups_topics)
    finally:
        admin.close()
    return [lag for group in sorted(views) for lag in views[group].lags()]


@dataclass(frozen=True)
class OutboxBacklog:
    module: str
    unpublished: int
    oldest_occurred_at: datetime | None
    parked_dead_letters: int
    oldest_running_transaction: str  # PostgreSQL: what may hold the relay back, if anything

    @property
    def oldest_age_seconds(self) -> float | None:
        if self.oldest_occurred_at is None:
            return None
        return (timezone.now() - self.oldest_occurred_at).total_seconds()


def outbox_backlog(module: str) -> OutboxBacklog:
    alias = messaging_settings.alias_for(module)
    waiting = OutboxMessage.objects.using(alias).filter(published_at__isnull=True, producer=module)
    summary = waiting.aggregate(oldest=Min("occurred_at"))
    parked = DeadLetter.objects.using(alias).filter(status=DeadLetter.Status.PARKED).count()
    return OutboxBacklog(
        module=module,
        unpublished=waiting.count(),
        oldest_occurred_at=summary["oldest"],
        parked_dead_letters=parked,
        oldest_running_transaction=_oldest_running_transaction(alias),
    )


def _oldest_running_transaction(alias: str) -> str:
    """This database's oldest transaction holding an id: the relay publishes nothing younger than it."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return ""
    with contextlib.suppress(Exception), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, datname, state, now() - xact_start FROM pg_stat_activity "
            "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database() "
            "ORDER BY age(backend_xid) DESC LIMIT 1"
        )
        row = cursor.fetchone()
        if row:
            pid, database, state, age = row
            return f"pid {pid} on {database} ({state}) for {age.total_seconds():.1f}s"
    return ""
