"""``messaging_settings``: the kernel's configuration, read from Django's settings alone.

As DRF's ``api_settings`` does, the kernel reads ``django.conf.settings`` and nothing else: the
composition root (``config/settings.py``) fills ``MESSAGING`` (which modules exist, which this
process serves, each module's database alias, the transport and its tuning) and
``KAFKA_BOOTSTRAP_SERVERS``. So ``messaging`` never imports ``config``, and a test's
``override_settings`` (pytest-django's ``settings``) takes effect at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    "TRANSPORT": "inprocess",
    "TOPIC_PREFIX": "quire",
    "MAX_ATTEMPTS": 5,
    "BACKOFF_SECONDS": 0.2,
    "BACKOFF_MAX_SECONDS": 10.0,
    "RELAY_BATCH_SIZE": 500,
    # The Kafka client of the relay's producer (messaging/kafka/producers.py): "kafka-python" or
    # "confluent" (librdkafka, through the confluent-kafka package).
    "RELAY_CLIENT": "kafka-python",
    # Consumer liveness (messaging/kafka/consumer.py): idle seconds before asking the broker whether
    # the group left partitions unowned; seconds without progress before the consumer gives up;
    # a file whose mtime run_consumer keeps at its consumers' oldest progress ("" for none).
    "CONSUMER_IDLE_CHECK_SECONDS": 5.0,
    "CONSUMER_STALL_EXIT_SECONDS": 120.0,
    "CONSUMER_HEARTBEAT_FILE": "",
    # Relay liveness (messaging/kafka/relay.py): seconds of failing rounds before the relay gives up;
    # a file whose mtime run_relay keeps at its last successful round ("" for none).
    "RELAY_STALL_EXIT_SECONDS": 120.0,
    "RELAY_HEARTBEAT_FILE": "",
    "MODULES": (),  # every module of the project
    "SERVED_MODULES": None,  # the modules this process serves; None: all of MODULES
    "SERVICE": "all",  # how the process was started (SERVICE=...), for messages to the operator
    "DATABASES": {},  # module -> database alias; a module missing here uses the alias named after it
}

#: Transport name -> class. Named by path, so the transport layer needs no import of the Kafka
#: adapter above it (and loads kafka-python only in a process that uses it).
TRANSPORT_CLASSES = {
    "inprocess": "messaging.transports.inprocess.InProcessTransport",
    "kafka": "messaging.kafka.transport.KafkaTransport",
}


class MessagingSettings:
    """``MESSAGING`` with defaults, plus the module helpers every part of the kernel needs."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"MESSAGING has no setting {name!r}")
        if name not in self._cache:
            value = getattr(settings, "MESSAGING", {}).get(name, DEFAULTS[name])
            if name in ("MODULES", "SERVED_MODULES") and value is not None:
                value = tuple(value)
            self._cache[name] = value
        return self._cache[name]

    @property
    def served_modules(self) -> tuple[str, ...]:
        served = self.SERVED_MODULES
        return self.MODULES if served is None else served

    @property
    def bootstrap_servers(self) -> list[str]:
        return list(getattr(settings, "KAFKA_BOOTSTRAP_SERVERS", []))

    def module_of(self, dotted_path: str) -> str | None:
        """The module that owns a dotted Python path or app label, if any."""
        head = dotted_path.split(".", 1)[0]
        return head if head in self.MODULES else None

    def alias_for(self, module: str) -> str:
        """The database alias that holds ``module``'s tables (and its outbox, inbox, dead letters)."""
        return self.DATABASES.get(module, module)

    def transport_class(self, name: str) -> type:
        return import_string(TRANSPORT_CLASSES[name])

    def reload(self) -> None:
        self._cache.clear()


messaging_settings = MessagingSettings()


def _reload(*, setting: str, **kwargs) -> None:
    if setting in ("MESSAGING", "KAFKA_BOOTSTRAP_SERVERS"):
        messaging_settings.reload()


setting_changed.connect(_reload)
