"""The Kafka transport, as a web process sees it: the relay process publishes, consumer processes apply.

In this topology a web process only writes outbox rows; ``run_relay`` carries them to Kafka
(``messaging.kafka.relay``) and ``run_consumer`` hands them to handlers
(``messaging.kafka.consumer``), which also copies dead letters to the DLQ topic. What the
transport protocol still asks of a process is waking the relay, and PostgreSQL does that
itself (a trigger's NOTIFY at commit); SQLite is polled.
"""

from __future__ import annotations


class KafkaTransport:
    """The transport of the services topology."""

    def wake(self, alias: str) -> None:
        """Nothing to do here: the relay process publishes.

        On PostgreSQL the outbox insert's trigger already sent a NOTIFY that reaches the
        relay at commit; on SQLite the relay polls. Either way this process's request is
        not held up by the broker, and a broker outage never fails a write.
        """

    def on_process_start(self) -> None:
        """Nothing left behind to pick up in this process: the relay owns the outbox."""

    def close(self) -> None:
        """Nothing to release: this transport holds no connection (the consumer owns its DLQ producer)."""
