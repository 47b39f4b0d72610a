"""Reading a module's outbox in commit order, as Kafka records: the polling-trap guard.

The polling trap: ids are taken at insert, rows become visible at commit, so a
transaction that inserted early and commits late would make a naive "id > last" reader
skip its rows, or a "published_at IS NULL" reader publish them behind younger ones. On
PostgreSQL each row records its transaction id, and the reader returns only the leading
rows (by id) whose transactions are older than every transaction of that database still
running (from the read's snapshot): until the late transaction ends, the rows after it
wait. SQLite allows one writer at a time, so there insert order is commit order.

Both databases give rows in one shape (:class:`_Row`); on PostgreSQL the record value is
computed by the query itself. See docs/messaging.md for all of it.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.db import connections
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from messaging.conf import messaging_settings
from messaging.kafka.topics import events_topic
from messaging.models import ENVELOPE_FIELDS, OutboxMessage

logger = logging.getLogger(__name__)

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

#: The columns :func:`record_value` takes, by name (SQLite computes the value in Python): the
#: envelope's, with the payload as the JSON text it is stored as.
_RECORD_FIELDS = (*(name for name in ENVELOPE_FIELDS if name not in ("payload", "traceparent")), "payload_json")


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

    The traceparent is not in it: it travels in the record's ``traceparent`` header, as W3C
    trace context does over Kafka, where the relay's own span replaces the stored one.

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
    correlation_id: str = ""  # for the relay's log line of its batch
    traceparent: str = ""  # the publishing span (tracing on): the relay's span is its child


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


class _Row(NamedTuple):
    """One unpublished row as either database reads it."""

    row_id: int
    aggregate_id: str
    event_type: str
    event_version: int
    event_id: str
    value: bytes
    settled: bool  # its transaction is older than every one still running: it may go now
    correlation_id: str
    traceparent: str | None


class ModuleOutbox:
    """One module's outbox, read for the relay and marked once the broker took its rows."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.alias = messaging_settings.alias_for(module)
        self.topic = events_topic(module)
        self.vendor = connections[self.alias].vendor
        self._sees_all_activity: bool | None = None  # PostgreSQL: may use the database-scoped guard
        self._table = connections[self.alias].ops.quote_name(OutboxMessage._meta.db_table)

    def ready_rows(self, limit: int, after_id: int | None = None) -> tuple[list[OutboxRecord], bool]:
        """The leading unpublished rows that may go now, as records, and whether later rows are waiting.

        Rows are read in id order; the first row whose transaction is not yet older than
        every running one stops the batch, so nothing is published ahead of it.
        """
        read = self._rows_postgresql if self.vendor == "postgresql" else self._rows_sqlite
        records = []
        for row in read(limit, after_id or 0):
            if not row.settled:
                return records, True
            headers = [*_type_headers(row.event_type, row.event_version), ("event_id", row.event_id.encode())]
            records.append(
                OutboxRecord(
                    row.row_id, row.aggregate_id.encode(), row.value, headers, row.correlation_id, row.traceparent or ""
                )
            )
        return records, False

    def _rows_sqlite(self, limit: int, after_id: int) -> list[_Row]:
        # One writer at a time: every committed row is settled.
        query = (
            OutboxMessage.objects.using(self.alias)
            .filter(published_at__isnull=True, producer=self.module, id__gt=after_id)
            .order_by("id")
            .annotate(payload_json=Cast("payload", TextField()))
            .values("id", "traceparent", *_RECORD_FIELDS)[:limit]
        )
        rows = []
        for fields in query:
            row_id, traceparent = fields.pop("id"), fields.pop("traceparent")
            key = (fields["aggregate_id"], fields["event_type"], fields["event_version"], str(fields["event_id"]))
            rows.append(_Row(row_id, *key, record_value(**fields), True, fields["correlation_id"], traceparent))
        return rows

    def _rows_postgresql(self, limit: int, after_id: int) -> list[_Row]:
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
                f"convert_to({_VALUE_SQL}, 'UTF8'), ({settled}), correlation_id, traceparent FROM {self._table} "
                f"WHERE published_at IS NULL AND producer = %s AND id > %s ORDER BY id LIMIT %s",
                [*params, self.module, after_id, limit],
            )
            return [_Row(*row[:5], bytes(row[5]), *row[6:]) for row in cursor.fetchall()]

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
