"""Names on the broker, and creating the topics: per module one events topic, one dead-letter topic, one group.

All names start with ``MESSAGING["TOPIC_PREFIX"]`` (``KAFKA_TOPIC_PREFIX``), so that two
installations (or two test runs) can share one broker without seeing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from messaging.conf import messaging_settings
from messaging.kafka.clients import admin_client

DEFAULT_PARTITIONS = 3


def _prefix(prefix: str | None) -> str:
    return messaging_settings.TOPIC_PREFIX if prefix is None else prefix


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


@dataclass(frozen=True)
class TopicResult:
    topic: str
    created: bool
    partitions: int


def ensure_topics(
    topics: Iterable[str],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication_factor: int | None = None,
    bootstrap_servers: list[str] | None = None,
) -> list[TopicResult]:
    """Create the topics that do not exist yet; leave existing ones as they are.

    An existing topic keeps its partition count even if ``partitions`` differs: adding
    partitions would move keys to other partitions and break per-aggregate order.
    ``replication_factor`` defaults to min(3, number of brokers).
    """
    topics = list(dict.fromkeys(topics))
    admin = admin_client(bootstrap_servers)
    try:
        if replication_factor is None:
            replication_factor = min(3, len(admin.describe_cluster()["brokers"]))
        existing = _partition_counts(admin, topics)
        missing = [topic for topic in topics if topic not in existing]
        created = set()
        if missing:
            specs = {
                topic: {"num_partitions": partitions, "replication_factor": replication_factor} for topic in missing
            }
            response = admin.create_topics(specs, timeout_ms=10_000, raise_errors=False)
            for result in response["topics"]:
                if result["error_code"] == 0:
                    created.add(result["name"])
                elif result["error_code"] != TopicAlreadyExistsError.errno:  # a concurrent ensure won
                    raise RuntimeError(f"could not create topic {result['name']}: {result.get('error_message')}")
            admin.wait_for_topics(missing, timeout_ms=30_000)
            existing = _partition_counts(admin, topics)
    finally:
        admin.close()
    return [TopicResult(topic, topic in created, existing.get(topic, 0)) for topic in topics]


def _partition_counts(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    counts = {}
    for description in admin.describe_topics(topics):
        if description.get("error_code", 0) == 0 and description.get("partitions"):
            counts[description["name"]] = len(description["partitions"])
    return counts
