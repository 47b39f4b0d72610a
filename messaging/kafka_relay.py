"""The outbox relay: publish each served module's outbox to its Kafka topic, in order, without loss.

One relay runs per module database at a time (a PostgreSQL advisory lock; a second relay
waits as a hot standby). Each round it reads a batch of unpublished rows in id order,
sends them all, waits for the broker's acknowledgement (``acks=all``) and only then marks
them published. It keeps no state of its own: the outbox says what is left to do, so a
relay that is killed at any point starts again where the database says and at worst
publishes some rows twice, which consumers' inboxes turn into no-ops.

The polling trap: ids are taken at insert, rows become visible at commit, so a
transaction that inserted early and commits late would make a naive "id > last" reader
skip its rows, or a "published_at IS NULL" reader publish them behind younger ones. On
PostgreSQL each row records its transaction id, and the relay publishes only the leading
rows (by id) whose transactions are older than every transaction of that database still
running (from the read's snapshot): until the late transaction ends, the rows after it
wait. SQLite allows one writer at a time, so there insert order is commit order.

Under a backlog the relay streams: it reads the next batch and marks the previous one on
background connections, and keeps one batch in flight while sending the next. See
docs/messaging.md for all of it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import BooleanField, TextField, Value
from django.db.models.functions import Cast
from django.utils import timezone
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from config import topology
from messaging.models import OutboxMessage
from messaging.topics import events_topic
from messaging.transports.kafka import make_producer

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "messaging_outbox"  # sent by the outbox insert trigger (migration 0002)

#: Cluster-wide guard: a row is settled when its transaction is older than every transaction
#: still running anywhere on the PostgreSQL cluster (transaction ids are cluster-wide).
_SETTLED_CLUSTER_SQL = (
    "transaction_id IS NULL OR transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"
)

#: Database-scoped guard: only transactions that could write this outbox (those of this
#: database) hold rows back, so a long transaction in another database of the same cluster
#: does not. %s: the next transaction id before ``_LOCAL_RUNNING_SQL`` looked, and the
#: (32-bit) ids of this database's transactions it saw running; any transaction of the read's
#: snapshot that is either of those, or younger than that bound (unknown, so assumed local),
#: holds back rows of younger transactions.
_SETTLED_LOCAL_SQL = """transaction_id IS NULL OR transaction_id < (
    SELECT coalesce(min(running::text::bigint), 9223372036854775807)
    FROM pg_snapshot_xip(pg_current_snapshot()) AS running
    WHERE running::text::bigint >= %s OR (running::text::bigint %% 4294967296) = ANY(%s::bigint[])
)"""

#: Run before the read, in its own statement: the snapshot's xmax is taken before the
#: activity is looked at, so a local transaction older than that bound and still running at
#: the read was running (and listed) here too.
_LOCAL_RUNNING_SQL = """
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
       coalesce(array_agg(xid), '{}')
FROM (
    SELECT backend_xid::text::bigint AS xid FROM pg_stat_activity
    WHERE datname = current_database() AND backend_xid IS NOT NULL
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database = current_database()
) AS local_running
"""

#: Seeing other sessions' transaction ids in pg_stat_activity takes a superuser or
#: pg_read_all_stats; without it the relay falls back to the cluster-wide guard.
_SEES_ALL_ACTIVITY_SQL = (
    "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') "
    "FROM pg_roles WHERE rolname = current_user"
)

_COLUMNS = (
    "id",
    "event_id",
    "event_type",
    "event_version",
    "aggregate_id",
    "producer",
    "correlation_id",
    "occurred_at",
    "payload_json",
    "settled",
)


class RelayError(RuntimeError):
    """The broker did not take a batch; its rows stay unpublished and are sent again."""


class RelayBusy(RuntimeError):
    """Another relay holds a module's outbox."""


@dataclass
class RelayStats:
    published: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return sum(self.published.values())


def relay_lock_key(module: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``, one per module."""
    digest = hashlib.blake2b(f"quire.outbox-relay.{module}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def record_value(
    *,
    event_id,
    event_type: str,
    event_version: int,
    aggregate_id: str,
    producer: str,
    correlation_id: str,
    occurred_at: datetime,
    payload_json: str,
) -> bytes:
    """The Kafka record value: ``Envelope.to_dict()`` as JSON, the payload spliced in as stored.

    Splicing the stored JSON text avoids decoding and re-encoding every payload, which is
    most of the relay's CPU per event; ``Envelope.from_dict`` reads the result.
    """
    head = _encode_json(
        {
            "event_id": str(event_id),
            "event_type": event_type,
            "event_version": event_version,
            "aggregate_id": aggregate_id,
            "producer": producer,
            "correlation_id": correlation_id,
            "occurred_at": occurred_at.isoformat(),
        }
    )
    return f'{head[:-1]},"payload":{payload_json}}}'.encode()


# One encoder for every record: json.dumps() with arguments builds a new one per call.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class OutboxRecord(NamedTuple):
    """One outbox row, ready to send."""

    row_id: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


#: ``record_value`` computed by PostgreSQL, on its own CPU, in the query that reads the rows
#: (the relay's Python thread is what limits its rate). to_json() escapes the strings; the
#: connection's time zone is UTC, so occurred_at reads back as the same instant.
_VALUE_SQL = (
    """'{"event_id":"' || event_id::text"""
    """ || '","event_type":' || to_json(event_type)::text"""
    """ || ',"event_version":' || event_version::text"""
    """ || ',"aggregate_id":' || to_json(aggregate_id)::text"""
    """ || ',"producer":' || to_json(producer)::text"""
    """ || ',"correlation_id":' || to_json(correlation_id)::text"""
    """ || ',"occurred_at":' || to_json(occurred_at)::text"""
    """ || ',"payload":' || payload::text || '}'"""
)


@functools.lru_cache(maxsize=1024)
def _type_headers(event_type: str, event_version: int) -> tuple[tuple[str, bytes], ...]:
    return (("event_type", event_type.encode()), ("event_version", str(event_version).encode()))


class ModuleOutbox:
    """One module's outbox, and this relay's exclusive hold on it."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.alias = topology.alias_for_module(module)
        self.topic = events_topic(module)
        self.vendor = connections[self.alias].vendor
        self._lock_connection = None  # PostgreSQL: holds the advisory lock and LISTENs
        self._lock_file = None  # SQLite file: holds an flock
        self._next_attempt = 0.0
        self._sees_all_activity: bool | None = None  # PostgreSQL: may use the database-scoped guard
        self._table = connections[self.alias].ops.quote_name(OutboxMessage._meta.db_table)
        #: While full batches stream out, they are marked published by a background thread
        #: and reading goes on after the last row sent; None when the database is up to date.
        self.cursor: int | None = None
        self._marker: _Worker | None = None
        self._marks: list[Future] = []
        self._reader: _Worker | None = None
        self._read_ahead: tuple[int, Future] | None = None  # (after id, rows being read)

    # --- exclusive hold -----------------------------------------------------------
    @property
    def held(self) -> bool:
        return self._lock_connection is not None or self._lock_file is not None

    def acquire(self, *, retry_after: float = 0.0) -> bool:
        """Take the module's relay lock if free; True if this relay now holds it.

        After a miss, further calls within ``retry_after`` seconds answer False without
        asking the database (a standby must not open a connection per round).
        """
        if self.held:
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        self._next_attempt = now + retry_after
        if self.vendor == "postgresql":
            return self._acquire_postgresql()
        return self._acquire_file()

    def _acquire_postgresql(self) -> bool:
        wrapper = connections[self.alias]
        with wrapper.wrap_database_errors:
            connection = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            connection.autocommit = True
            with wrapper.wrap_database_errors, connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [relay_lock_key(self.module)])
                if not cursor.fetchone()[0]:
                    connection.close()
                    return False
                # LISTEN before the first read: a commit in between still wakes us.
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception:
            connection.close()
            raise
        self._lock_connection = connection
        return True

    def _acquire_file(self) -> bool:
        import fcntl

        name = str(connections[self.alias].settings_dict["NAME"])
        if name.startswith("file:") or name == ":memory:":
            self._lock_file = True  # an in-memory database: no other process can reach it
            return True
        handle = open(f"{name}.relay.lock", "a+b")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def release(self) -> None:
        if self._lock_connection is not None:
            with contextlib.suppress(Exception):
                self._lock_connection.close()  # ends the session: PostgreSQL frees its lock
            self._lock_connection = None
        if self._lock_file is not None:
            if self._lock_file is not True:
                self._lock_file.close()
            self._lock_file = None

    def fileno(self) -> int | None:
        """A socket that becomes readable when a commit on this database notifies, if any."""
        return self._lock_connection.fileno() if self._lock_connection is not None else None

    def take_notifications(self) -> None:
        """Read pending notifications; a dead connection means the lock is lost too."""
        if self._lock_connection is None:
            return
        try:
            with connections[self.alias].wrap_database_errors:
                self._lock_connection.poll()
        except DatabaseError:
            logger.warning("%s: lost the relay lock (its database connection dropped)", self.module)
            self.release()
            raise
        self._lock_connection.notifies.clear()

    # --- rows -----------------------------------------------------------------------
    def ready_rows(self, limit: int, after_id: int | None = None) -> tuple[list[OutboxRecord], bool]:
        """The leading unpublished rows that may go now, as records, and whether later rows are waiting.

        Rows are read in id order; the first row whose transaction is not yet older than
        every running one stops the batch, so nothing is published ahead of it.
        """
        if self.vendor == "postgresql":
            rows = self._ready_rows_postgresql(limit, after_id)
        else:
            rows = list(
                OutboxMessage.objects.using(self.alias)
                .filter(published_at__isnull=True, producer=self.module, id__gt=after_id or 0)
                .order_by("id")
                .annotate(payload_json=Cast("payload", TextField()), settled=Value(True, output_field=BooleanField()))
                .values_list(*_COLUMNS)[:limit]
            )
            rows = [
                (
                    row_id,
                    aggregate_id,
                    event_type,
                    event_version,
                    str(event_id),
                    record_value(
                        event_id=event_id,
                        event_type=event_type,
                        event_version=event_version,
                        aggregate_id=aggregate_id,
                        producer=producer,
                        correlation_id=correlation_id,
                        occurred_at=occurred_at,
                        payload_json=payload,
                    ),
                    settled,
                )
                for (
                    row_id,
                    event_id,
                    event_type,
                    event_version,
                    aggregate_id,
                    producer,
                    correlation_id,
                    occurred_at,
                    payload,
                    settled,
                ) in rows
            ]
        records = []
        for row_id, aggregate_id, event_type, event_version, event_id, value, settled in rows:
            if not settled:
                return records, True
            headers = [*_type_headers(event_type, event_version), ("event_id", event_id.encode())]
            records.append(OutboxRecord(row_id, aggregate_id.encode(), value, headers))
        return records, False

    def _ready_rows_postgresql(self, limit: int, after_id: int | None) -> list[tuple]:
        # Plain SQL: the relay runs this for every round, and compiling the equivalent ORM
        # query cost more CPU than the rest of a small round together.
        with connections[self.alias].cursor() as cursor:
            if self._sees_all_activity is None:
                cursor.execute(_SEES_ALL_ACTIVITY_SQL)
                row = cursor.fetchone()
                self._sees_all_activity = bool(row and row[0])
                if not self._sees_all_activity:
                    logger.warning(
                        "%s: the database role cannot see other sessions' transactions (grant it "
                        "pg_read_all_stats); any long transaction on the PostgreSQL server holds the relay back",
                        self.module,
                    )
            if self._sees_all_activity:
                cursor.execute(_LOCAL_RUNNING_SQL)
                next_transaction_id, local_running = cursor.fetchone()
                settled, params = _SETTLED_LOCAL_SQL, [next_transaction_id, list(local_running)]
            else:
                settled, params = _SETTLED_CLUSTER_SQL, []
            cursor.execute(
                f"SELECT id, aggregate_id, event_type, event_version, event_id::text, "
                f"convert_to({_VALUE_SQL}, 'UTF8'), ({settled}) FROM {self._table} "
                f"WHERE published_at IS NULL AND producer = %s AND id > %s ORDER BY id LIMIT %s",
                [*params, self.module, after_id or 0, limit],
            )
            return [(*row[:5], bytes(row[5]), row[6]) for row in cursor.fetchall()]

    # --- streaming a backlog: read ahead and mark behind, both in the background ------
    # Reading the next 500 rows and marking the last 500 published each cost about as much
    # time as a fifth of sending them; on their own threads (PostgreSQL does the work, the
    # GIL is free meanwhile) they overlap with sending. A failed mark only leaves rows
    # unpublished, so they are sent again: duplicates, which consumers skip.
    @property
    def can_stream(self) -> bool:
        # SQLite allows one writer at a time: a second connection marking would only wait.
        return self.vendor == "postgresql"

    def next_rows(self, limit: int) -> tuple[list[OutboxRecord], bool]:
        """:meth:`ready_rows` after the cursor, taken from the read-ahead if one matches."""
        if self._read_ahead is not None:
            (after_id, rows), self._read_ahead = self._read_ahead, None
            result = rows.result()
            if after_id == self.cursor:
                return result
        return self.ready_rows(limit, after_id=self.cursor)

    def read_ahead(self, limit: int, *, after_id: int) -> None:
        if self.can_stream:
            self._reader = self._reader or _Worker(self.alias, f"outbox-reader-{self.module}")
            self._read_ahead = (after_id, self._reader.submit(self.ready_rows, limit, after_id))

    def mark_published_later(self, ids: Sequence[int]) -> None:
        """Mark ``ids`` in the background (reading goes on after the cursor meanwhile)."""
        self._marker = self._marker or _Worker(self.alias, f"outbox-marker-{self.module}")
        self._marks = [mark for mark in self._marks if not mark.done() or mark.exception() is not None]
        self._marks.append(self._marker.submit(self.mark_published, list(ids)))

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
        self.release()

    def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        if self.vendor == "postgresql":
            with connections[self.alias].cursor() as cursor:
                cursor.execute(
                    f"UPDATE {self._table} SET published_at = %s WHERE id = ANY(%s)", [timezone.now(), list(ids)]
                )
            return
        OutboxMessage.objects.using(self.alias).filter(id__in=ids).update(published_at=timezone.now())


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
        with contextlib.suppress(Exception):
            self._executor.submit(connections[self._alias].close).result(timeout=30)
        self._executor.shutdown(wait=True)


@dataclass
class _Batch:
    """Rows handed to the producer, and the futures of the records it was given."""

    rows: list[OutboxRecord]
    sent: list[tuple[int, Future]] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def acked(self) -> list[int]:
        return [row_id for row_id, future in self.sent if future.succeeded()]

    @property
    def complete(self) -> bool:
        return self.error is None and len(self.sent) == len(self.rows) and all(f.succeeded() for _, f in self.sent)

    @property
    def cause(self) -> object:
        failed = next((future for _, future in self.sent if future.failed()), None)
        return self.error or (failed.exception if failed is not None else "not acknowledged in time")


class OutboxRelay:
    """Carries the outboxes of ``modules`` to Kafka. Not thread-safe: one thread drives it."""

    def __init__(
        self,
        modules: Sequence[str],
        *,
        bootstrap_servers: list[str] | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        standby_interval: float = 1.0,
        linger: float = 0.01,
        producer_overrides: dict | None = None,
        ensure_topics: bool = True,
    ) -> None:
        if not modules:
            raise ValueError("the relay needs at least one module")
        self.outboxes = [ModuleOutbox(module) for module in modules]
        self.bootstrap_servers = bootstrap_servers or settings.KAFKA_BOOTSTRAP_SERVERS
        self.batch_size = batch_size or settings.MESSAGING["RELAY_BATCH_SIZE"]
        # Notifications wake a PostgreSQL relay at once; the poll is only a safety net there.
        # SQLite has no notifications, so it is polled often.
        all_postgresql = all(outbox.vendor == "postgresql" for outbox in self.outboxes)
        self.poll_interval = poll_interval if poll_interval is not None else (1.0 if all_postgresql else 0.1)
        self.standby_interval = standby_interval
        # Under a steady stream every commit notifies; a round per notification would pay
        # the fixed cost of a round (three queries, a broker round trip) per event. So a
        # round that follows a non-empty one within ``linger`` seconds waits out the rest
        # of it and carries everything that committed meanwhile. A lone event after a quiet
        # spell goes at once; a full batch (catching up) goes on at once.
        self.linger = linger
        self.producer_overrides = producer_overrides or {}
        self.ensure_topics = ensure_topics
        self.stats = RelayStats(published={outbox.module: 0 for outbox in self.outboxes})
        self._producer: KafkaProducer | None = None
        self._in_flight: dict[str, _Batch] = {}  # module -> batch sent, not yet acknowledged
        self._stop = threading.Event()
        # stop() writes here so that a relay waiting in select() returns at once.
        self._wakeup_read, self._wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_write, False)

    # --- lifecycle --------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish the batch in hand and return (safe from a signal handler)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wakeup_write, b"x")

    def close(self) -> None:
        if self._in_flight:
            self._finish_in_flight()
        self._drop_producer(timeout=5)
        for outbox in self.outboxes:
            outbox.close()
        for fd in (self._wakeup_read, self._wakeup_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> OutboxRelay:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- one pass ---------------------------------------------------------------------
    def drain(self) -> int:
        """Publish every row that is ready now, for each held module; raises on failure."""
        published = 0
        for outbox in self.outboxes:
            if not outbox.acquire():
                raise RelayBusy(f"another relay holds the {outbox.module} outbox")
            while True:
                count, full, _ = self.relay_batch(outbox)
                published += count
                if not full:
                    break
        return published

    def relay_batch(self, outbox: ModuleOutbox) -> tuple[int, bool, bool]:
        """Publish one batch: (rows sent, batch was full, rows are waiting on older transactions).

        While a backlog drains (full batches, PostgreSQL), a batch stays in flight until the
        next one has been sent: waiting for the broker's acknowledgement then overlaps with
        sending instead of stalling the pipeline after every batch.
        """
        rows, waiting = outbox.next_rows(self.batch_size)
        previous = self._in_flight.pop(outbox.module, None)
        if not rows:
            if previous is not None:
                self._complete(outbox, [previous])
            streaming = outbox.cursor is not None
            outbox.settle()
            # Rows behind the cursor (a younger transaction's, committed meanwhile) are read now.
            return 0, streaming, waiting
        full = len(rows) == self.batch_size
        if full:  # a backlog: read the next batch while this one is sent
            outbox.read_ahead(self.batch_size, after_id=rows[-1].row_id)
        batch = self._send(outbox, rows)
        if full and outbox.can_stream and batch.error is None:
            outbox.cursor = rows[-1].row_id
            if previous is not None:
                self._complete(outbox, [previous], later=True, also_in_flight=batch)
            self._in_flight[outbox.module] = batch
        else:
            self._complete(outbox, [b for b in (previous, batch) if b is not None])
            outbox.settle()
        return len(rows), full, waiting

    def _send(self, outbox: ModuleOutbox, rows: list[OutboxRecord]) -> _Batch:
        batch = _Batch(rows)
        topic, send = outbox.topic, self._get_producer().send  # no broker at all: KafkaError, nothing sent
        try:
            for row_id, key, value, headers in rows:
                batch.sent.append((row_id, send(topic, key=key, value=value, headers=headers)))
        except KafkaError as error:  # e.g. no metadata for the topic within max_block_ms
            batch.error = error
        return batch

    def _complete(
        self, outbox: ModuleOutbox, batches: list[_Batch], *, later: bool = False, also_in_flight: _Batch | None = None
    ) -> None:
        """Wait for the broker on ``batches`` and mark what it took; RelayError if it did not take all.

        ``later`` marks in the background (streaming); on a failure everything is marked at
        once, including a batch still ``also_in_flight``, and the database state is read again.
        """
        for batch in batches:
            self._await_acks(batch.sent, flush=also_in_flight is None)
        failed = next((batch for batch in batches if not batch.complete), None)
        if failed is None:
            acked = [row_id for batch in batches for row_id in batch.acked]
            if later:
                outbox.mark_published_later(acked)
            else:
                outbox.mark_published(acked)
            self.stats.published[outbox.module] += len(acked)
            return
        if also_in_flight is not None:
            self._await_acks(also_in_flight.sent, flush=True)
            batches = [*batches, also_in_flight]
        acked = [row_id for batch in batches for row_id in batch.acked]
        if acked:
            outbox.mark_published(acked)
            self.stats.published[outbox.module] += len(acked)
        outbox.settle(suppress_errors=True)
        # A fresh producer next round: nothing of this one's state (pending batches, an epoch it
        # may have to bump) can then leak into the retry.
        self._drop_producer(timeout=0)
        total = sum(len(batch.rows) for batch in batches)
        raise RelayError(
            f"{outbox.topic}: the broker took {len(acked)} of {total} events ({failed.cause!r}); "
            "the rest stay in the outbox and are sent again"
        )

    def _finish_in_flight(self) -> None:
        """Settle batches left in flight (a failure elsewhere, or stopping): mark what the broker took."""
        for outbox in self.outboxes:
            batch = self._in_flight.pop(outbox.module, None)
            if batch is not None:
                self._await_acks(batch.sent, flush=True)
                with contextlib.suppress(DatabaseError):
                    if batch.acked:
                        outbox.mark_published(batch.acked)
                        self.stats.published[outbox.module] += len(batch.acked)
            outbox.settle(suppress_errors=True)

    def _await_acks(self, sent: list[tuple[int, Future]], *, flush: bool = True) -> None:
        """Wait until every future is resolved; the producer fails them by delivery_timeout_ms.

        Without ``flush`` only these records are waited for, not those sent after them.
        Futures still unresolved on return (deadline, or stopping) count as failed: their rows
        stay unpublished and are sent again (a copy the broker did take is then a duplicate
        the inbox skips).
        """
        if not sent or self._producer is None:
            return
        deadline = time.monotonic() + self._producer.config["delivery_timeout_ms"] / 1000 + 5
        if flush:
            while not all(future.is_done for _, future in sent):
                try:
                    self._producer.flush(timeout=1.0)
                except KafkaTimeoutError:
                    if time.monotonic() > deadline or self._stop.is_set():
                        return
            return
        for _, future in sent:
            while not future.is_done:
                with contextlib.suppress(KafkaError):
                    future.get(timeout=1.0)
                if not future.is_done and (time.monotonic() > deadline or self._stop.is_set()):
                    return

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            producer = make_producer(
                self.bootstrap_servers,
                client_id="quire-outbox-relay",
                allow_auto_create_topics=False,
                **self.producer_overrides,
            )
            if self.ensure_topics:
                from messaging.kafka_admin import ensure_topics

                try:
                    ensure_topics([outbox.topic for outbox in self.outboxes], bootstrap_servers=self.bootstrap_servers)
                except Exception:
                    producer.close(timeout=0)
                    raise
            self._producer = producer
        return self._producer

    def _drop_producer(self, *, timeout: float) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                self._producer.close(timeout=timeout)
            self._producer = None

    # --- the loop -----------------------------------------------------------------------
    def run(
        self,
        *,
        once: bool = False,
        max_failures: int | None = None,
        on_progress: Callable[[RelayStats], None] | None = None,
        progress_interval: float = 10.0,
    ) -> RelayStats:
        """Relay until :meth:`stop` (or, with ``once``, until nothing is ready).

        Failures (broker or database unreachable) are retried with backoff; the rows stay
        in the outbox meanwhile. ``max_failures`` consecutive failures raise instead.
        """
        consecutive_failures = 0
        held_back_delay = 0.005
        last_busy_round = -1.0  # when the last round that published (without filling a batch) began
        next_progress = time.monotonic() + progress_interval
        while not self._stop.is_set():
            if on_progress is not None and time.monotonic() >= next_progress:
                on_progress(self.stats)
                next_progress = time.monotonic() + progress_interval
            try:
                held = self._acquire_free()
                if not held:
                    if once:
                        raise RelayBusy("another relay holds every outbox this process serves")
                    self._stop.wait(self.standby_interval)
                    continue
                linger_left = last_busy_round + self.linger - time.monotonic()
                if linger_left > 0:
                    self._stop.wait(linger_left)
                round_started = time.monotonic()
                more, waiting, published = False, False, 0
                for outbox in held:
                    outbox.take_notifications()
                    count, full, blocked = self.relay_batch(outbox)
                    more, waiting, published = more or full, waiting or blocked, published + count
                last_busy_round = round_started if published and not more else -1.0
                consecutive_failures = 0
            except (KafkaError, RelayError, DatabaseError, OSError) as error:
                consecutive_failures += 1
                self.stats.failures += 1
                self._finish_in_flight()
                self._recover_connections()
                if max_failures is not None and consecutive_failures >= max_failures:
                    raise
                delay = min(0.5 * 2 ** (consecutive_failures - 1), 10.0)
                logger.warning("relay round failed (%s); retrying in %.1fs", error, delay)
                self._stop.wait(delay)
                continue
            if more:
                continue
            if once:
                if waiting:
                    logger.info("rows remain behind a transaction still running; a later run publishes them")
                break
            # Rows held back by an older running transaction: no notification comes when it
            # ends (unless it publishes), so look again soon, backing off while it lasts.
            held_back_delay = min(held_back_delay * 2, self.poll_interval) if waiting else 0.005
            self._wait(held, held_back_delay if waiting else self.poll_interval)
        if on_progress is not None:
            on_progress(self.stats)
        return self.stats

    def _acquire_free(self) -> list[ModuleOutbox]:
        held = []
        for outbox in self.outboxes:
            was_held = outbox.held
            if outbox.acquire(retry_after=self.standby_interval):
                if not was_held:
                    logger.info("%s: relaying the outbox to %s", outbox.module, outbox.topic)
                held.append(outbox)
        return held

    def _recover_connections(self) -> None:
        for outbox in self.outboxes:
            connection = connections[outbox.alias]
            if connection.connection is not None and not connection.is_usable():
                connection.close()  # the next query reconnects

    def _wait(self, held: list[ModuleOutbox], timeout: float) -> None:
        sockets = [fd for fd in (outbox.fileno() for outbox in held) if fd is not None]
        if len(sockets) < len(held):  # some outbox is polled (SQLite)
            timeout = min(timeout, self.poll_interval)
        with contextlib.suppress(InterruptedError, OSError, ValueError):
            readable, _, _ = select.select([self._wakeup_read, *sockets], [], [], timeout)
            if self._wakeup_read in readable:
                os.read(self._wakeup_read, 64)
