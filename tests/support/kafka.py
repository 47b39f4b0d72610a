"""The Kafka broker of a test run: where it is, a run's own topics, reading them, a broker of one's own.

The broker is ``scripts/dev/kafka.sh``'s (started if need be) unless the caller's
``KAFKA_BOOTSTRAP_SERVERS`` names one. A harness gives its shop a topic prefix of its own, so
its topics and consumer groups are its alone, and deletes them afterwards (:func:`delete_prefixed`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from tests.support.processes import dev_server, free_port, run, tail


def bootstrap() -> str:
    """The bootstrap servers: the caller's ``KAFKA_BOOTSTRAP_SERVERS`` if set, else the dev broker's."""
    found = dev_server("kafka.sh")
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or found["KAFKA_BOOTSTRAP_SERVERS"]


def _admin(servers: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=servers.split(","), request_timeout_ms=10_000)


def delete_prefixed(servers: str, prefix: str) -> None:
    """Best effort: delete the topics and consumer groups named ``<prefix>.*`` (of no use after the run)."""
    try:
        admin = _admin(servers)
        try:
            topics = [topic for topic in admin.list_topics() if topic.startswith(prefix + ".")]
            if topics:
                admin.delete_topics(topics)
            groups = [g["group_id"] for g in admin.list_groups() if g["group_id"].startswith(prefix + ".")]
            if groups:
                admin.delete_groups(groups)
        finally:
            admin.close()
    except Exception as error:  # the broker may be gone already (a private one); the run's result stands
        print(f"could not delete {prefix}.* on {servers}: {error!r}", file=sys.stderr)


@contextlib.contextmanager
def from_the_beginning(servers: str | list[str], topic: str) -> Iterator[tuple[KafkaConsumer, list[TopicPartition]]]:
    """A consumer of no group, assigned every partition of ``topic`` at its first offset (closed after)."""
    if isinstance(servers, str):
        servers = servers.split(",")
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        assert partitions, f"topic {topic} does not exist"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        consumer.close()


def read_records(servers: str, topic: str) -> list:
    """Every record on ``topic`` now (from the beginning up to the current end of each partition)."""
    with from_the_beginning(servers, topic) as (consumer, partitions):
        ends = consumer.end_offsets(partitions)
        records: list = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end within 30s"
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records


def envelope_fields(record) -> dict:
    """A record's value: the event envelope as the relay wrote it (a dict)."""
    return json.loads(record.value)


def committed_offsets(servers: str, group: str) -> dict[tuple[str, int], int]:
    """The offsets ``group`` committed, per (topic, partition)."""
    admin = _admin(servers)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group) or {}
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


class PrivateKafka:
    """A second single-node broker (``scripts/dev/kafka.sh`` with its own state dir and free ports).

    A test may stop it without disturbing the shared broker other tests use. The jars of the
    shared state dir are linked in, so no download is needed; without them ``kafka.sh`` resolves
    them from the local Maven repository.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.env = {name: value for name, value in os.environ.items() if name != "KAFKA_BOOTSTRAP_SERVERS"}
        self.env.update(
            QUIRE_STATE_DIR=str(state_dir),
            QUIRE_KAFKA_PORT=str(self.port),
            QUIRE_KAFKA_CONTROLLER_PORT=str(self.controller_port),
            QUIRE_KAFKA_HEAP_OPTS="-Xms128m -Xmx512m",
        )
        self._link_shared_jars()

    def _link_shared_jars(self) -> None:
        shared_root = Path(os.environ.get("QUIRE_STATE_DIR") or Path.home() / ".cache" / "quire")
        shared = shared_root / "kafka" / "jars"
        marker = shared / ".quire-kafka-version"
        if not marker.is_file():
            return
        jars = self.state_dir / "kafka" / "jars"
        jars.mkdir(parents=True)
        for jar in shared.glob("*.jar"):
            (jars / jar.name).symlink_to(jar)
        shutil.copy(marker, jars / marker.name)  # kafka.sh trusts the jars while the pom matches it

    def start(self) -> None:
        run(["bash", "scripts/dev/kafka.sh", "start"], self.env, timeout=600)

    def stop(self) -> None:
        run(["bash", "scripts/dev/kafka.sh", "stop"], self.env, timeout=600)

    @contextlib.contextmanager
    def running(self) -> Iterator[PrivateKafka]:
        """Started for the block; then stopped and its state directory deleted."""
        try:
            self.start()
            yield self
        finally:
            self.stop()
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def log_tail(self) -> str:
        return tail(self.state_dir / "kafka" / "logs" / "server.log", 30)
