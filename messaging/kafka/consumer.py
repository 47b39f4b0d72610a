"""The consumer: one Kafka consumer group per subscribing module, applying events to its handlers.

For each polled batch of a partition, in partition order: parse the envelopes, then
:func:`messaging.dispatch.dispatch_batch` them to the module's handlers. Each handler applies
its share in one transaction with their inbox rows (a redelivered event is skipped); an event
that fails is rolled back alone (savepoint), retried with backoff on its own, and parked as a
dead letter (row + DLQ topic) if it keeps failing; the consumer goes on.
Only after that is the record's offset committed, so a crash between the database commit
and the offset commit redelivers the record, and the inbox makes that a no-op.

A record that is not an envelope at all is parked too (a dead-letter row that names no
handler, and the DLQ topic) and skipped: one bad record must not stop a module.

Liveness (see ``messaging.kafka.liveness``): the consumer joins its group only once its
metadata knows the partitions of every subscribed topic, rebuilds its client when its group
leaves partitions unread while it idles, and raises ``ConsumerStalled`` after
``CONSUMER_STALL_EXIT_SECONDS`` without progress, so that its process exits and is restarted.
``last_progress``, ``assigned`` and ``status`` show the rest of the process how it is doing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError, connections
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError

from messaging import metrics, tracing
from messaging.conf import messaging_settings
from messaging.delivery import Outcome
from messaging.dispatch import dispatch_batch
from messaging.envelope import Envelope
from messaging.kafka.dead_letters import UNPARSEABLE_HANDLER, DeadLetterQueue
from messaging.kafka.liveness import ConsumerStalled, GroupWatch
from messaging.kafka.topics import consumer_group, dead_letter_topic, ensure_topics, events_topic
from messaging.registry import subscribed_producers

logger = logging.getLogger(__name__)

__all__ = [
    "UNPARSEABLE_HANDLER",
    "ConsumerStalled",
    "ConsumerStats",
    "ModuleConsumer",
    "ProcessedCallback",
    "consumer_config",
]

ProcessedCallback = Callable[[object, Envelope | None, list[Outcome]], None]


@dataclass
class ConsumerStats:
    processed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    unparseable: int = 0
    rebuilds: int = 0  # Kafka clients thrown away because the member held nothing nobody else read
    started: float = field(default_factory=time.monotonic)


def consumer_config(module: str, bootstrap_servers: list[str] | None = None, **overrides) -> dict:
    config = {
        "bootstrap_servers": bootstrap_servers or messaging_settings.bootstrap_servers,
        "group_id": consumer_group(module),
        "client_id": f"quire-consumer-{module}",
        # The offset is committed by hand, after the handler's transaction.
        "enable_auto_commit": False,
        # A group's first start reads the topic from the beginning: events published
        # before any consumer existed are still owed to the handlers.
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,
        "fetch_max_wait_ms": 100,
        # A batch with retries and backoff must fit in max_poll_interval_ms.
        "max_poll_records": 50,
        "max_poll_interval_ms": 300_000,
        # A crashed member keeps its partitions until its session expires: keep that short
        # (the client's default, 45 s, stalled a module's events that long after a crash).
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
        "metadata_max_age_ms": 30_000,
        "bootstrap_timeout_ms": 10_000,
        "reconnect_backoff_max_ms": 2_000,
    }
    config.update(overrides)
    return config


class _CommitOnRevoke(AsyncConsumerRebalanceListener):
    """Commit what was processed on partitions this consumer is about to lose."""

    def __init__(self, owner: ModuleConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked):
        offsets = {tp: self.owner.pending.pop(tp) for tp in list(revoked) if tp in self.owner.pending}
        if offsets and self.owner.consumer is not None:
            try:
                await self.owner.consumer.commit_async(offsets)
            except Exception as error:  # the next owner re-applies them; the inbox skips them
                logger.warning("%s: commit on revoke failed: %r", self.owner.module, error)
        for tp in revoked:  # its next owner reports it now
            metrics.CONSUMER_LAG.labels(self.owner.module, tp.topic, str(tp.partition)).set(0)
        logger.info("%s: partitions revoked: %s", self.owner.module, sorted(map(tuple, revoked)))

    async def on_partitions_assigned(self, assigned):
        logger.info("%s: partitions assigned: %s", self.owner.module, sorted(map(tuple, assigned)))

    async def on_partitions_lost(self, lost):
        # Evicted from the group: committing would fail; the new owner replays from the last commit.
        for tp in lost:
            self.owner.pending.pop(tp, None)
            metrics.CONSUMER_LAG.labels(self.owner.module, tp.topic, str(tp.partition)).set(0)
        logger.warning("%s: partitions lost: %s", self.owner.module, sorted(map(tuple, lost)))


class ModuleConsumer:
    """Consumes, for one module, the events topics of the modules whose events it handles."""

    def __init__(
        self,
        module: str,
        *,
        bootstrap_servers: list[str] | None = None,
        consumer_overrides: dict | None = None,
        on_processed: ProcessedCallback | None = None,
        ensure_topics: bool = True,
        commit_interval: float = 0.1,
        dead_letters: DeadLetterQueue | None = None,
    ) -> None:
        if module not in messaging_settings.MODULES:
            raise ValueError(f"{module!r} is not a module")
        self.module = module
        self.alias = messaging_settings.alias_for(module)
        self.topics = sorted(events_topic(producer) for producer in subscribed_producers(module))
        self.bootstrap_servers = bootstrap_servers or messaging_settings.bootstrap_servers
        self.consumer_overrides = consumer_overrides or {}
        self.on_processed = on_processed
        self.ensure_topics = ensure_topics
        # Offsets are committed after the handlers' transactions, at most this often while
        # records keep coming (and always when idle, on shutdown and on rebalance): a commit is
        # a broker round trip, and what a crash makes re-read is skipped by the inbox anyway.
        self.commit_interval = commit_interval
        self._last_commit = 0.0
        self._lag_reported = 0.0
        self.stats = ConsumerStats()
        self.consumer: KafkaConsumer | None = None
        #: Offsets (next to read) of records fully processed but not yet committed.
        self.pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self._stop = threading.Event()
        # Where parked events are copied; one given by the caller is shared (and closed by it).
        self._owns_dead_letters = dead_letters is None
        self.dead_letters = dead_letters or DeadLetterQueue()
        self.idle_check_seconds = float(messaging_settings.CONSUMER_IDLE_CHECK_SECONDS)
        self.stall_exit_seconds = float(messaging_settings.CONSUMER_STALL_EXIT_SECONDS)
        # Liveness, read by other threads (run_consumer, health checks): plain attributes, set here only.
        #: time.monotonic() of the last record processed, or healthy idle poll.
        self.last_progress = time.monotonic()
        #: The partitions this member held after its last poll.
        self.assigned: frozenset[TopicPartition] = frozenset()
        #: What it is doing, in a few words ("consuming", "waiting for partitions of ...", ...).
        self.status = "starting"
        self.group_watch = GroupWatch(
            consumer_group(module), self.topics, self.bootstrap_servers, interval=self.idle_check_seconds
        )

    def stop(self) -> None:
        """Finish the batch in hand (one partition's polled records), commit, and return from :meth:`run`.

        Safe from a signal handler."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(
        self,
        *,
        max_messages: int | None = None,
        idle_exit: float | None = None,
        poll_timeout: float = 0.2,
    ) -> ConsumerStats:
        """Consume until :meth:`stop`, ``max_messages`` records, or ``idle_exit`` seconds without one."""
        if not self.topics:
            logger.info("%s handles no events: nothing to consume", self.module)
            return self.stats
        self._progressed("connecting")
        if not self._connect():
            return self.stats
        logger.info("%s: consuming %s as group %s", self.module, ", ".join(self.topics), consumer_group(self.module))
        last_record = time.monotonic()
        failures = 0
        try:
            while not self._stop.is_set():
                self._check_stalled()
                batch = self.consumer.poll(timeout_ms=int(poll_timeout * 1000))
                self.assigned = frozenset(self.consumer.assignment())
                if not batch:
                    self._commit()
                    self._report_idle_lag()
                    self._watch_idle()
                    if self.consumer is None:  # stopped while rebuilding it
                        break
                    if idle_exit is not None and time.monotonic() - last_record >= idle_exit:
                        break
                    continue
                last_record = time.monotonic()
                self.group_watch.busy()
                try:
                    done = self._process(batch, max_messages)
                    failures = 0
                except DatabaseError as error:
                    # The module's database is unreachable: nothing of the failed record was
                    # committed; read it again after a pause rather than skip it.
                    failures += 1
                    self.status = "database unreachable"
                    delay = min(0.5 * 2 ** (failures - 1), 30.0)
                    logger.warning("%s: database error (%s); retrying in %.1fs", self.module, error, delay)
                    connections[self.alias].close()
                    self._commit()
                    self._stop.wait(delay)
                    continue
                if done or time.monotonic() - self._last_commit >= self.commit_interval:
                    self._commit()
                if done:
                    break
        finally:
            if self.consumer is not None:
                self._commit()
                self.consumer.close(autocommit=False)
                self.consumer = None
            if self._owns_dead_letters:
                self.dead_letters.close()
            self.assigned = frozenset()
            self.status = "stopped"
        return self.stats

    def _progressed(self, status: str) -> None:
        self.last_progress = time.monotonic()
        self.status = status

    def _check_stalled(self) -> None:
        idle = time.monotonic() - self.last_progress
        if self.stall_exit_seconds > 0 and idle > self.stall_exit_seconds:
            raise ConsumerStalled(
                f"{self.module}: no progress for {idle:.0f}s ({self.status}); "
                f"more than MESSAGING_CONSUMER_STALL_EXIT_SECONDS={self.stall_exit_seconds:g}"
            )

    def _connect(self) -> bool:
        """Create the topics if missing and join the group, retrying while the broker is away.

        The group is joined (by the first poll) only once this client's metadata knows the
        partitions of every subscribed topic: a first join without them assigns nothing and
        needs the rejoin that kafka-python may never complete.
        """
        attempt = 0
        while not self._stop.is_set():
            self._check_stalled()
            attempt += 1
            try:
                if self.ensure_topics:
                    topics = [*self.topics, dead_letter_topic(self.module)]
                    ensure_topics(topics, bootstrap_servers=self.bootstrap_servers)
                config = consumer_config(self.module, self.bootstrap_servers, **self.consumer_overrides)
                self.consumer = KafkaConsumer(**config)
                self.consumer.subscribe(topics=self.topics, listener=_CommitOnRevoke(self))
                if self._await_partitions():
                    return True
            except (KafkaError, RuntimeError, OSError) as error:
                self._close_client()
                self.status = "Kafka unreachable"
                delay = min(0.5 * 2 ** (attempt - 1), 10.0)
                logger.warning("%s: Kafka unreachable (%r); retrying in %.1fs", self.module, error, delay)
                self._stop.wait(delay)
                continue
        self._close_client()
        return False

    def _await_partitions(self) -> bool:
        """Wait until the metadata knows a partition of every subscribed topic; False if stopped first."""
        logged = 0.0
        while not self._stop.is_set():
            self._check_stalled()
            # A metadata round trip after subscribe(): the coordinator's snapshot of the subscribed
            # topics' partitions is taken from it, so the first join assigns what exists.
            self.consumer.topics()
            missing = [topic for topic in self.topics if not self.consumer.partitions_for_topic(topic)]
            if not missing:
                return True
            self.status = f"waiting for partitions of {', '.join(missing)}"
            if time.monotonic() - logged >= 10:
                logged = time.monotonic()
                logger.warning("%s: %s before joining group %s", self.module, self.status, consumer_group(self.module))
            self._stop.wait(0.5)
        return False

    def _close_client(self) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):  # it is being thrown away
                self.consumer.close(autocommit=False)
            self.consumer = None
        self.assigned = frozenset()

    def _watch_idle(self) -> None:
        """After an empty poll: note progress, or rebuild the client if the group left partitions unread."""
        verdict = self.group_watch.after_empty_poll(assigned=self.assigned, coordinator_known=self._coordinator_known())
        if verdict.progressed:
            self._progressed(verdict.status)
        elif verdict.status:
            self.status = verdict.status
        if not verdict.rebuild:
            return
        self.stats.rebuilds += 1
        metrics.CONSUMER_REBUILDS.labels(self.module).inc()
        self._commit()
        self.pending.clear()  # a client that left its group cannot commit; the inbox skips the replay
        self._close_client()
        self._connect()

    def _coordinator_known(self) -> bool:
        # kafka-python has no public view of the group coordinator's reachability; without the
        # attribute (another version), assume it is known rather than report a false stall.
        coordinator = getattr(self.consumer, "_coordinator", None)
        unknown = getattr(coordinator, "coordinator_unknown", None)
        return unknown is None or not unknown()

    def _process(self, batch: dict, max_messages: int | None) -> bool:
        """Apply a polled batch, each partition's records as one delivery batch; True when the run should end.

        poll() has already moved every partition's position past its records, so whatever
        is left unprocessed (stop requested, limit reached, an error) is sought back to:
        the next poll, or the next owner after the commit, reads it again.
        """
        next_offsets = {tp: records[0].offset for tp, records in batch.items()}
        finished = False
        try:
            for tp, records in batch.items():
                if max_messages is not None:
                    records = records[: max(max_messages - self.stats.processed, 0)]
                self._handle_batch(records)
                if records:
                    next_offsets[tp] = records[-1].offset + 1
                    self.pending[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
                if self._stop.is_set() or (max_messages is not None and self.stats.processed >= max_messages):
                    finished = True
                    break
        finally:
            for tp, records in batch.items():
                if next_offsets[tp] <= records[-1].offset:
                    self.consumer.seek(tp, next_offsets[tp])
                self._report_lag(tp, next_offsets[tp])
        return finished

    def _handle_batch(self, records: list) -> None:
        """One partition's records: parsed, delivered in batches (messaging.dispatch.dispatch_batch), counted."""
        parsed = []
        for record in records:
            try:
                envelope = Envelope.from_dict(json.loads(record.value))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                metrics.EVENTS_HANDLED.labels(self.module, UNPARSEABLE_HANDLER, Outcome.DEAD_LETTERED.value).inc()
                self._park_unparseable(record, error)
                parsed.append((record, None))
                continue
            traceparent = next((value for name, value in record.headers or () if name == tracing.HEADER), None)
            if traceparent:  # the relay's span: this record's handlers run in its trace
                envelope = dataclasses.replace(envelope, traceparent=traceparent.decode(errors="replace"))
            parsed.append((record, envelope))
        envelopes = [envelope for _, envelope in parsed if envelope is not None]
        delivered = iter(dispatch_batch(envelopes, (self.module,), on_park=self.dead_letters.copy))
        for record, envelope in parsed:
            if envelope is None:
                outcomes = [Outcome.DEAD_LETTERED]  # counted as unparseable, when it was parked
            else:
                outcomes = next(delivered)
                self._count(outcomes)
            self.stats.processed += 1
            self._progressed("consuming")
            if self.on_processed is not None:
                self.on_processed(record, envelope, outcomes)

    def _report_lag(self, tp: TopicPartition, position: int | None) -> None:
        """Set ``quire_consumer_lag`` of one partition from the last fetch's high watermark."""
        with contextlib.suppress(KafkaError):  # not assigned (any more): nothing to say
            highwater = self.consumer.highwater(tp)
            if position is None:
                position = self.consumer.position(tp, timeout_ms=0)
            if highwater is not None and position is not None:
                metrics.CONSUMER_LAG.labels(self.module, tp.topic, str(tp.partition)).set(max(highwater - position, 0))

    def _report_idle_lag(self) -> None:
        """While idle, at most once a second: the lag of every partition held (new records, or 0)."""
        now = time.monotonic()
        if now - self._lag_reported < 1.0 or self.consumer is None:
            return
        self._lag_reported = now
        for tp in self.assigned:
            self._report_lag(tp, None)

    def _count(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome is Outcome.APPLIED:
                self.stats.applied += 1
            elif outcome is Outcome.DUPLICATE:
                self.stats.duplicates += 1
            elif outcome is Outcome.DEAD_LETTERED:
                self.stats.dead_lettered += 1

    def _park_unparseable(self, record, error: Exception) -> None:
        self.stats.unparseable += 1
        self.dead_letters.park_unparseable(self.module, self.alias, record, error)

    def _commit(self) -> None:
        if not self.pending or self.consumer is None:
            return
        offsets, self.pending = self.pending, {}
        self._last_commit = time.monotonic()
        try:
            self.consumer.commit(offsets=offsets, timeout_ms=5_000)
        except (CommitFailedError, KafkaError) as error:
            # Partitions still ours (the broker was unreachable) are committed next time; those a
            # rebalance took are re-read by their new owner, and the inbox skips what was applied.
            assigned = self.consumer.assignment()
            for tp, offset in offsets.items():
                if tp in assigned and tp not in self.pending:
                    self.pending[tp] = offset
            logger.warning("%s: offset commit failed (%r); retrying with the next commit", self.module, error)
