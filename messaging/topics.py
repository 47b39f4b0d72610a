"""Names on the broker: one events topic and one dead-letter topic per module, one group per consumer.

All names start with ``settings.MESSAGING["TOPIC_PREFIX"]`` (``KAFKA_TOPIC_PREFIX``), so
that two installations (or two test runs) can share one broker without seeing each other.
"""

from __future__ import annotations

from django.conf import settings


def _prefix(prefix: str | None) -> str:
    return settings.MESSAGING["TOPIC_PREFIX"] if prefix is None else prefix


def events_topic(module: str, prefix: str | None = None) -> str:
    """Where ``module``'s outbox is published, e.g. ``quire.catalog.events``."""
    return f"{_prefix(prefix)}.{module}.events"


def dead_letter_topic(module: str, prefix: str | None = None) -> str:
    """Where the events ``module``'s handlers parked are copied, e.g. ``quire.orders.dlq``."""
    return f"{_prefix(prefix)}.{module}.dlq"


def consumer_group(module: str, prefix: str | None = None) -> str:
    """The consumer group of ``module``'s handlers, e.g. ``quire.orders``."""
    return f"{_prefix(prefix)}.{module}"


def module_topics(modules: tuple[str, ...] | list[str], prefix: str | None = None) -> list[str]:
    """Every topic ``modules`` own: their events topics and their dead-letter topics."""
    return [topic for module in modules for topic in (events_topic(module, prefix), dead_letter_topic(module, prefix))]
