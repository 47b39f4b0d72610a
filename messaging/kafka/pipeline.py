"""One module's stream from outbox to topic, and the producer the relay sends every stream's batches with.

A :class:`ModulePipeline` owns all of a module's relay state: its lease, its outbox reader,
the cursor while a backlog streams, the batch being read ahead, the marks being written
behind, and the batch in flight. Each :meth:`ModulePipeline.step` reads a batch of ready rows,
sends it, waits for the broker's acknowledgement (``acks=all``) and only then marks the rows
published. The database says what is left to do, so a relay killed at any point starts again
where the outbox says and at worst publishes some rows twice, which inboxes turn into no-ops.

Under a backlog (full batches, PostgreSQL) the pipeline streams: the next batch is read and
the previous one marked on background connections, and one batch stays in flight while the
next is sent, so that waiting for the broker overlaps with sending.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NoReturn

from django.db import DatabaseError, connections
from kafka.errors import KafkaError

from messaging import metrics, tracing
from messaging.correlation import correlation
from messaging.kafka.lease import ModuleLease
from messaging.kafka.outbox import ModuleOutbox, OutboxRecord
from messaging.kafka.producers import Delivery, ProducerError, RelayProducer, make_relay_producer
from messaging.kafka.topics import ensure_topics

logger = logging.getLogger(__name__)


class RelayError(RuntimeError):
    """The broker did not take a batch; its rows stay unpublished and are sent again."""


@dataclass
class RelayStats:
    published: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return sum(self.published.values())


@dataclass
class Batch:
    """Rows handed to the producer, and the delivery (a future) of each record it was given."""

    rows: list[OutboxRecord]
    sent: list[tuple[int, Delivery]] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def acked(self) -> list[OutboxRecord]:
        """The rows the broker took (``sent`` is in the order of ``rows``)."""
        return [row for row, (_, future) in zip(self.rows, self.sent, strict=False) if future.succeeded()]

    @property
    def complete(self) -> bool:
        return self.error is None and len(self.sent) == len(self.rows) and all(f.succeeded() for _, f in self.sent)

    @property
    def cause(self) -> object:
        failed = next((future for _, future in self.sent if future.failed()), None)
        return self.error or (failed.exception if failed is not None else "not acknowledged in time")


class Sender:
    """The relay's one producer, made on first use (with the topics ensured), dropped after a failure.

    The producer is ``client``'s (``MESSAGING_RELAY_CLIENT``, see ``messaging.kafka.producers``); the
    records, their order and what counts as acknowledged are the same with either.
    """

    def __init__(
        self,
        topics: list[str],
        *,
        bootstrap_servers,
        overrides: dict,
        ensure: bool,
        stop: threading.Event,
        client: str = "kafka-python",
    ):
        self.topics = topics
        self.bootstrap_servers = bootstrap_servers
        self.overrides = overrides
        self.ensure = ensure
        self.client = client
        self._stop = stop
        self._producer: RelayProducer | None = None

    def send(self, topic: str, rows: list[OutboxRecord]) -> Batch:
        batch = Batch(rows)
        send = self._get_producer().send  # no broker at all: KafkaError, nothing sent
        try:
            for row in rows:
                headers = row.headers
                if row.traceparent:
                    names = dict(headers)
                    traceparent = tracing.producer_traceparent(
                        row.traceparent,
                        topic=topic,
                        event_type=names["event_type"].decode(),
                        event_id=names["event_id"].decode(),
                    )
                    headers = [*headers, (tracing.HEADER, traceparent.encode())]
                batch.sent.append((row.row_id, send(topic, key=row.key, value=row.value, headers=headers)))
        except KafkaError as error:  # e.g. no metadata for the topic within max_block_ms
            batch.error = error
        return batch

    def await_acks(self, sent: list[tuple[int, Delivery]], *, flush: bool = True) -> None:
        """Wait until every delivery is resolved; the producer fails them by its delivery timeout.

        Without ``flush`` only these records are waited for, not those sent after them.
        Deliveries still unresolved on return (deadline, stopping, or a producer that failed for
        good) count as failed: their rows stay unpublished and are sent again (a copy the broker
        did take is then a duplicate the inbox skips).
        """
        producer = self._producer
        if not sent or producer is None:
            return
        deadline = time.monotonic() + producer.delivery_timeout + 5
        try:
            if flush:
                while not all(delivery.is_done for _, delivery in sent):
                    if not producer.flush(timeout=1.0) and (time.monotonic() > deadline or self._stop.is_set()):
                        return
                return
            for _, delivery in sent:
                while not delivery.is_done:
                    producer.wait(delivery, timeout=1.0)
                    if not delivery.is_done and (time.monotonic() > deadline or self._stop.is_set()):
                        return
        except ProducerError as error:
            self._drop_broken(error)

    def poll(self) -> None:
        """Let the producer report what happened meanwhile (librdkafka's log lines and errors)."""
        if self._producer is not None:
            try:
                self._producer.poll()
            except ProducerError as error:
                self._drop_broken(error)

    def _drop_broken(self, error: ProducerError) -> None:
        # librdkafka raises a fatal error (e.g. its idempotence state broke) from poll()/flush():
        # this producer can deliver nothing more, so a new one sends the rows again.
        if not error.fatal:
            raise error
        logger.error("the relay's producer failed for good (%s); a new one sends the rows again", error)
        self.drop(timeout=0)

    def drop(self, *, timeout: float) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=timeout)

    def _get_producer(self) -> RelayProducer:
        if self._producer is None:
            producer = make_relay_producer(
                self.client,
                self.bootstrap_servers,
                client_id="quire-outbox-relay",
                allow_auto_create_topics=False,
                **self.overrides,
            )
            if self.ensure:
                try:
                    ensure_topics(self.topics, bootstrap_servers=self.bootstrap_servers)
                except Exception:
                    producer.close(timeout=0)
                    raise
            self._producer = producer
        return self._producer


class _Worker:
    """One background thread with its own database connection (Django's are per thread)."""

    def __init__(self, alias: str, name: str) -> None:
        self._alias = alias
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, function: Callable, *args) -> Future:
        return self._executor.submit(self._call, function, *args)

    def _call(self, function: Callable, *args):
        try:
            return function(*args)
        except DatabaseError:
            connections[self._alias].close()  # reconnect on the next call
            raise

    def close(self) -> None:
        # The worker thread's own connection, looked up in that thread: ``connections[alias]`` here
        # would be the caller's. Left open, it outlives the relay (a session on the database until
        # the garbage collector finds it; a test database then cannot be dropped).
        with contextlib.suppress(Exception):
            self._executor.submit(self._close_connection).result(timeout=30)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        connections[self._alias].close()


class ModulePipeline:
    """Everything the relay keeps for one module, and the steps that move its outbox to the topic."""

    def __init__(self, module: str, sender: Sender, stats: RelayStats) -> None:
        self.module = module
        self.lease = ModuleLease(module)
        self.outbox = ModuleOutbox(module)
        self.alias, self.topic, self.vendor = self.outbox.alias, self.outbox.topic, self.outbox.vendor
        self.sender = sender
        self.stats = stats
        #: While full batches stream out, they are marked published in the background and reading
        #: goes on after the last row sent; None when reading from what the database says.
        self.cursor: int | None = None
        self._in_flight: Batch | None = None  # sent, not yet acknowledged
        self._read_ahead: tuple[int, Future] | None = None  # (after id, rows being read)
        self._marks: list[Future] = []
        self._reader: _Worker | None = None
        self._marker: _Worker | None = None

    # --- the lease ----------------------------------------------------------------------
    @property
    def held(self) -> bool:
        return self.lease.held

    def acquire(self, *, retry_after: float = 0.0) -> bool:
        return self.lease.acquire(retry_after=retry_after)

    def fileno(self) -> int | None:
        return self.lease.fileno()

    def take_notifications(self) -> None:
        self.lease.take_notifications()

    # --- one step -----------------------------------------------------------------------
    @property
    def can_stream(self) -> bool:
        # SQLite allows one writer at a time: a second connection marking would only wait.
        return self.vendor == "postgresql"

    @property
    def has_in_flight(self) -> bool:
        return self._in_flight is not None

    def step(self, batch_size: int) -> tuple[int, bool, bool]:
        """Publish one batch: (rows sent, batch was full, rows are waiting on older transactions).

        While a backlog drains, a batch stays in flight until the next one has been sent.
        """
        rows, waiting = self._next_rows(batch_size)
        previous, self._in_flight = self._in_flight, None
        if not rows:
            if previous is not None:
                self._complete_now([previous])
            streaming = self.cursor is not None
            self.settle()
            # Rows behind the cursor (a younger transaction's, committed meanwhile) are read now.
            return 0, streaming, waiting
        full = len(rows) == batch_size
        if full and self.can_stream:  # a backlog: read the next batch while this one is sent
            self._reader = self._reader or _Worker(self.alias, f"outbox-reader-{self.module}")
            after_id = rows[-1].row_id
            self._read_ahead = (after_id, self._reader.submit(self.outbox.ready_rows, batch_size, after_id))
        batch = self.sender.send(self.topic, rows)
        metrics.RELAY_BATCHES.labels(self.module).inc()
        if full and self.can_stream and batch.error is None:
            self.cursor = rows[-1].row_id
            if previous is not None:
                self._complete_behind(previous, batch)
            self._in_flight = batch
        else:
            self._complete_now([b for b in (previous, batch) if b is not None])
            self.settle()
        return len(rows), full, waiting

    def _next_rows(self, limit: int) -> tuple[list[OutboxRecord], bool]:
        """Ready rows after the cursor, taken from the read-ahead if one matches."""
        if self._read_ahead is not None:
            (after_id, rows), self._read_ahead = self._read_ahead, None
            result = rows.result()
            if after_id == self.cursor:
                return result
        return self.outbox.ready_rows(limit, after_id=self.cursor)

    def _complete_now(self, batches: list[Batch]) -> None:
        """Wait for the broker on ``batches`` and mark what it took; RelayError if it did not take all."""
        for batch in batches:
            self.sender.await_acks(batch.sent, flush=True)
        if any(not batch.complete for batch in batches):
            self._fail(batches)
        self._mark([row for batch in batches for row in batch.acked])

    def _complete_behind(self, previous: Batch, current: Batch) -> None:
        """Streaming: wait for ``previous`` alone (``current`` stays in flight) and mark it in the background.

        On a failure everything is marked at once, ``current`` included, and the database state is read again.
        """
        self.sender.await_acks(previous.sent, flush=False)
        if not previous.complete:
            self.sender.await_acks(current.sent, flush=True)
            self._fail([previous, current])
        self._marker = self._marker or _Worker(self.alias, f"outbox-marker-{self.module}")
        self._marks = [mark for mark in self._marks if not mark.done() or mark.exception() is not None]
        acked = previous.acked
        self._marks.append(self._marker.submit(self.outbox.mark_published, [row.row_id for row in acked]))
        self._published(acked)

    def _mark(self, rows: Sequence[OutboxRecord]) -> None:
        self.outbox.mark_published([row.row_id for row in rows])
        self._published(rows)

    def _published(self, rows: Sequence[OutboxRecord]) -> None:
        """Count a batch the broker took, and say so in one line with its correlation ids."""
        if not rows:
            return
        self.stats.published[self.module] += len(rows)
        metrics.RELAY_EVENTS.labels(self.module).inc(len(rows))
        correlation_ids = sorted({row.correlation_id for row in rows if row.correlation_id})
        # A batch of one request's events is that request's line; a mixed one lists them all.
        with correlation(correlation_ids[0] if len(correlation_ids) == 1 else ""):
            logger.info(
                "%s: published %d event(s) to %s (outbox ids %d..%d)",
                self.module,
                len(rows),
                self.topic,
                rows[0].row_id,
                rows[-1].row_id,
                extra={"events": len(rows), "correlation_ids": correlation_ids[:100], "quire_module": self.module},
            )

    def _fail(self, batches: list[Batch]) -> NoReturn:
        failed = next(batch for batch in batches if not batch.complete)
        acked = [row for batch in batches for row in batch.acked]
        if acked:
            self._mark(acked)
        self.settle(suppress_errors=True)
        # A fresh producer next round: nothing of this one's state (pending batches, an epoch it
        # may have to bump) can then leak into the retry.
        self.sender.drop(timeout=0)
        total = sum(len(batch.rows) for batch in batches)
        raise RelayError(
            f"{self.topic}: the broker took {len(acked)} of {total} events ({failed.cause!r}); "
            "the rest stay in the outbox and are sent again"
        )

    # --- ending -------------------------------------------------------------------------
    def finish_in_flight(self) -> None:
        """Settle a batch left in flight (a failure elsewhere, or stopping): mark what the broker took."""
        batch, self._in_flight = self._in_flight, None
        if batch is not None:
            self.sender.await_acks(batch.sent, flush=True)
            with contextlib.suppress(DatabaseError):
                if batch.acked:
                    self._mark(batch.acked)
        self.settle(suppress_errors=True)

    def settle(self, *, suppress_errors: bool = False) -> None:
        """Wait for the background work; from now on read what the database says is unpublished."""
        self.cursor = None
        pending, self._marks = self._marks, []
        if self._read_ahead is not None:
            pending.append(self._read_ahead[1])
            self._read_ahead = None
        errors = [error for future in pending if (error := future.exception()) is not None]
        if errors and not suppress_errors:
            raise errors[0]

    def close(self) -> None:
        self.settle(suppress_errors=True)
        for worker in (self._marker, self._reader):
            if worker is not None:
                worker.close()
        self._marker = self._reader = None
        self.lease.release()
