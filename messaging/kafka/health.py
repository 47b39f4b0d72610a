"""Readiness and scrape-time metrics of the Kafka side: the broker, the relay and consumer, the consumer groups.

- :class:`KafkaBroker`: a broker of the cluster answers this process.
- :class:`HeartbeatAge`: the relay's or consumer's heartbeat file (``MESSAGING_<ROLE>_HEARTBEAT_FILE``,
  which ``run_service`` assigns to its children and tells its web server) recorded progress within
  the role's stall limit: "alive and stuck" shows before the process's own stall exit (or the
  supervisor's kill) has restarted it.
- :class:`ConsumerGroup`: the broker's view of a served module's group leaves no partition of its
  topics without a member (the stall kafka-python can leave a member in: joined, holding nothing).
- :class:`KafkaCollector`: the gauges of ``/metrics`` read from the broker and the heartbeat files at
  scrape time: lag per partition from the group's committed offsets (a member holding nothing, or a
  dead one, reports no lag of its own), partitions assigned and unowned, progress ages.

The group views come from :func:`group_views`, cached for :data:`GROUP_VIEW_MAX_AGE_SECONDS` per
process, so that neither probes nor scrapes hammer the broker (four requests per refresh, on one
admin client kept for the process).
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily

from messaging.conf import messaging_settings
from messaging.kafka.clients import admin_client
from messaging.kafka.groups import GroupView, describe_groups
from messaging.kafka.liveness import REBALANCING_STATES, heartbeat_age
from messaging.kafka.topics import consumer_group, events_topic
from messaging.registry import subscribed_producers

#: Seconds a broker view of the groups is reused: probes every few seconds per worker, and scrapes, share one.
GROUP_VIEW_MAX_AGE_SECONDS = 5.0
#: A heartbeat's limit when the role's own stall exit is off (0): an idle but well relay or consumer beats every second.
DEFAULT_HEARTBEAT_MAX_AGE_SECONDS = 120.0
ROLES = ("relay", "consumer")

T = TypeVar("T")
_lock = threading.Lock()
_admin = None
_failure: tuple[list[str], float, Exception] | None = None  # (servers, when, error) of the last failed call
_views: tuple[tuple, float, dict[str, GroupView] | Exception] | None = None  # (key, when, views or error)


def _with_admin(call: Callable[..., T]) -> T:
    """Run ``call(admin)`` on the process's one admin client, made on first use and rebuilt after a failure.

    For :data:`GROUP_VIEW_MAX_AGE_SECONDS` after a failure the same error is raised again at once:
    with the broker away, each check of a probe would otherwise wait out its own connection timeout,
    and the probe its deadline.
    """
    global _admin, _failure
    servers = messaging_settings.bootstrap_servers
    with _lock:
        recent = _failure is not None and time.monotonic() - _failure[1] <= GROUP_VIEW_MAX_AGE_SECONDS
        if recent and _failure[0] == servers:
            raise _failure[2]
        _failure = None
        try:
            if _admin is not None and _admin.config["bootstrap_servers"] != servers:
                _close_admin()  # the settings changed (a test): a client of the new cluster
            if _admin is None:
                _admin = admin_client(
                    servers, client_id="quire-health", request_timeout_ms=3_000, bootstrap_timeout_ms=3_000
                )
            return call(_admin)
        except (KafkaError, OSError) as error:
            _failure = (servers, time.monotonic(), error)
            _close_admin()
            raise
        except Exception:
            _close_admin()
            raise


def _close_admin() -> None:
    global _admin
    if _admin is not None:
        try:
            _admin.close()
        finally:
            _admin = None


def served_groups() -> dict[str, list[str]]:
    """Group -> topics it reads, of each served module whose handlers handle other modules' events."""
    groups = {}
    for module in messaging_settings.served_modules:
        producers = subscribed_producers(module)
        if producers:
            groups[consumer_group(module)] = sorted(events_topic(producer) for producer in producers)
    return groups


def group_views(max_age: float = GROUP_VIEW_MAX_AGE_SECONDS) -> dict[str, GroupView]:
    """The broker's view of :func:`served_groups`, at most ``max_age`` seconds old; raises what the broker raised.

    A failure is cached like an answer: a broker that is away is asked again only after ``max_age``.
    """
    global _views
    groups = served_groups()
    key = (tuple(messaging_settings.bootstrap_servers), tuple((g, tuple(t)) for g, t in sorted(groups.items())))
    now = time.monotonic()
    cached = _views
    if cached is None or cached[0] != key or now - cached[1] > max_age:
        try:
            result: dict[str, GroupView] | Exception = _with_admin(lambda admin: describe_groups(admin, groups))
        except (KafkaError, OSError) as error:
            result = error
        cached = _views = (key, time.monotonic(), result)
    if isinstance(cached[2], Exception):
        raise cached[2]
    return cached[2]


def forget_group_views() -> None:
    """Drop the cached view and failure (tests: the next call asks the broker)."""
    global _views, _failure
    _views = _failure = None


def _unreachable(error: Exception) -> ServiceUnavailable:
    servers = ",".join(messaging_settings.bootstrap_servers)
    return ServiceUnavailable(f"no broker of {servers} answers: {type(error).__name__}")


@dataclasses.dataclass
class KafkaBroker(HealthCheck):
    """A broker answers a metadata request within the probe's timeout."""

    timeout = datetime.timedelta(seconds=5)

    @property
    def name(self) -> str:
        return "kafka"

    def run(self) -> None:
        try:
            cluster = _with_admin(lambda admin: admin.describe_cluster())
        except (KafkaError, OSError) as error:
            raise _unreachable(error) from error
        if not cluster.get("brokers"):
            raise ServiceUnavailable("the cluster reports no brokers")


def heartbeat_limit(role: str) -> float:
    """The age past which a role's heartbeat means stuck: its stall limit (or 120 s when its stall exit is off)."""
    return float(getattr(messaging_settings, f"{role.upper()}_STALL_EXIT_SECONDS")) or DEFAULT_HEARTBEAT_MAX_AGE_SECONDS


def heartbeat_file(role: str) -> str:
    return getattr(messaging_settings, f"{role.upper()}_HEARTBEAT_FILE")


@dataclasses.dataclass
class HeartbeatAge(HealthCheck):
    """The relay's or the consumer's last progress (its heartbeat file's mtime) is younger than its stall limit."""

    role: str
    #: What the report shows beside the state (the age, also when it is fine): set by run().
    details: dict = dataclasses.field(default_factory=dict, init=False, repr=False)
    timeout = datetime.timedelta(seconds=1)

    @property
    def name(self) -> str:
        return self.role

    def run(self) -> None:
        path, limit = heartbeat_file(self.role), heartbeat_limit(self.role)
        age = heartbeat_age(path)
        if age is None:
            raise ServiceUnavailable(f"no heartbeat at {path}: the {self.role} has not started (or cannot write it)")
        self.details = {"age_seconds": round(age, 1), "limit_seconds": limit}
        if age > limit:
            raise ServiceUnavailable(
                f"last progress {age:.0f}s ago (limit {limit:g}s, MESSAGING_{self.role.upper()}_STALL_EXIT_SECONDS): "
                f"the {self.role} is stuck or restarting"
            )


@dataclasses.dataclass
class ConsumerGroup(HealthCheck):
    """Every partition of the topics a served module's group reads has a member (or the group is rebalancing)."""

    group: str
    details: dict = dataclasses.field(default_factory=dict, init=False, repr=False)
    timeout = datetime.timedelta(seconds=5)

    @property
    def name(self) -> str:
        return f"consumer-group:{self.group}"

    def run(self) -> None:
        try:
            view = group_views()[self.group]
        except (KafkaError, OSError) as error:
            # A broker away, or one that cannot answer for groups yet (a new cluster's coordinator).
            servers = ",".join(messaging_settings.bootstrap_servers)
            raise ServiceUnavailable(f"{servers} did not describe the group: {type(error).__name__}") from error
        self.details = {"state": view.state, "members": view.members, "unowned_partitions": len(view.unowned)}
        if view.unowned and view.state not in REBALANCING_STATES:
            topics = ", ".join(sorted({tp.topic for tp in view.unowned}))
            raise ServiceUnavailable(
                f"{len(view.unowned)} of {len(view.partitions)} partition(s) of {topics} have no member "
                f"({view.members} member(s), group {view.state or 'unknown'}): the consumer is not reading them"
            )


def readiness_checks() -> list[HealthCheck]:
    """The Kafka side of ``/health/ready/``: the broker, and the relay and consumer this process's supervisor runs.

    ``run_service`` tells its web server which children it runs by the heartbeat files it gives
    them (``MESSAGING_<ROLE>_HEARTBEAT_FILE``, empty for a role it does not run): a web-only
    process (a Kubernetes web pod) is not taken out of service because a consumer elsewhere stalls;
    that consumer's own pod turns unready, and ``/metrics`` shows the group everywhere.
    """
    checks: list[HealthCheck] = [KafkaBroker()]
    checks += [HeartbeatAge(role) for role in ROLES if heartbeat_file(role)]
    if heartbeat_file("consumer"):
        checks += [ConsumerGroup(group) for group in served_groups()]
    return checks


class KafkaCollector:
    """Scrape-time gauges from the broker (the served modules' groups) and the relay's and consumer's heartbeats."""

    def collect(self):
        up = GaugeMetricFamily("quire_kafka_up", "1 if the broker answered this scrape's question about the groups.")
        lag = GaugeMetricFamily(
            "quire_consumer_group_lag",
            "Records of a partition past the group's committed offset (log end minus committed), read from the broker.",
            labels=["module", "topic", "partition"],
        )
        assigned = GaugeMetricFamily(
            "quire_consumer_assigned_partitions",
            "Partitions of the module's topics that a member of its consumer group holds, read from the broker.",
            labels=["module"],
        )
        unowned = GaugeMetricFamily(
            "quire_consumer_unowned_partitions",
            "Partitions of the module's topics that no member of its consumer group holds (0 while rebalancing).",
            labels=["module"],
        )
        progress = GaugeMetricFamily(
            "quire_last_progress_seconds",
            "Seconds since the relay's or consumer's last progress (its heartbeat file), where this service runs it.",
            labels=["role"],
        )
        for role in ROLES:
            path = heartbeat_file(role)
            age = heartbeat_age(path) if path else None
            if age is not None:
                progress.add_metric([role], age)
        yield progress
        modules = {consumer_group(module): module for module in messaging_settings.served_modules}
        if not served_groups():
            return
        try:
            views = group_views()
        except (KafkaError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for group, view in views.items():
            module = modules[group]
            for partition in view.lags():
                lag.add_metric([module, partition.topic, str(partition.partition)], max(partition.lag, 0))
            assigned.add_metric([module], len(view.owned))
            unowned.add_metric([module], 0 if view.state in REBALANCING_STATES else len(view.unowned))
        yield from (up, lag, assigned, unowned)
