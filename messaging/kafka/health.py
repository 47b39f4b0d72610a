"""Readiness of the Kafka side: does a broker of the cluster answer this process?"""

from __future__ import annotations

import dataclasses
import datetime
import threading

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from kafka.errors import KafkaError

from messaging.conf import messaging_settings
from messaging.kafka.clients import admin_client

_lock = threading.Lock()
_admin = None


def _cluster_description() -> dict:
    """One admin client per process, reused across probes; rebuilt after a failure."""
    global _admin
    with _lock:
        try:
            if _admin is None:
                _admin = admin_client(client_id="quire-health", request_timeout_ms=3_000, bootstrap_timeout_ms=3_000)
            return _admin.describe_cluster()
        except Exception:
            if _admin is not None:
                try:
                    _admin.close()
                finally:
                    _admin = None
            raise


@dataclasses.dataclass
class KafkaBroker(HealthCheck):
    """A broker answers a metadata request within the probe's timeout."""

    timeout = datetime.timedelta(seconds=5)

    @property
    def name(self) -> str:
        return "kafka"

    def run(self) -> None:
        try:
            cluster = _cluster_description()
        except (KafkaError, OSError) as error:
            servers = ",".join(messaging_settings.bootstrap_servers)
            raise ServiceUnavailable(f"no broker of {servers} answers: {type(error).__name__}") from error
        if not cluster.get("brokers"):
            raise ServiceUnavailable("the cluster reports no brokers")
