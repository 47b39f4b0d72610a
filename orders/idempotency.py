"""Idempotency-Key for checkout: a mechanism, not a use case.

A request first claims its key (:func:`idempotency_claim`, committed on its own so that a
concurrent request with the same key learns it is in flight), then does its work in a
transaction that holds the claim (:func:`idempotency_hold`) and completes it with the
response (:func:`idempotency_complete`) in that same transaction, so a replay can never see
the response without the work or the work without the response. A request that fails
releases its claim (:func:`idempotency_release`) and the client may retry with the key.

Who is in flight: on PostgreSQL the claiming request also holds a session advisory lock on
its key (:func:`idempotency_unlock` ends it). The server frees it when the session ends, so
a request whose transaction failed because the database went away (and so could not delete
its in-progress row either) leaves nothing that blocks a retry: the next request finds the
lock free and takes the row over at once. Without advisory locks (SQLite) an in-progress row
is taken over once it is older than :data:`IDEMPOTENCY_LOCK_TIMEOUT`.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

from orders.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from orders.models import IdempotencyRecord
from orders.routers import DATABASE

#: A completed idempotency record is remembered this long; afterwards its key may be reused.
IDEMPOTENCY_TTL = timedelta(hours=24)
#: An in-progress record older than this was left by a request that died; another may take it over.
#: (Where advisory locks exist, a free key lock says so at once.)
IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=60)


@dataclass(frozen=True)
class IdempotencyClaim:
    """This request holds the in-progress record of its key (and, on PostgreSQL, its ``lock_key``)."""

    record_id: int
    lock_token: uuid.UUID
    lock_key: int | None = None


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: Any
    order_id: uuid.UUID | None
    replayed: bool


def _advisory_key(customer_id: uuid.UUID, key: str) -> int:
    digest = hashlib.blake2b(f"quire.orders.idempotency:{customer_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _advisory_lock(lock_key: int) -> bool | None:
    """Take the key's session lock: True if taken, False if another session holds it, None without advisory locks."""
    connection = connections[DATABASE]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_key])
        return bool(cursor.fetchone()[0])


def idempotency_unlock(*, claim: IdempotencyClaim) -> None:
    """End the claim's key lock (if any). A connection that is gone took its lock with it."""
    if claim.lock_key is None:
        return
    with contextlib.suppress(DatabaseError), connections[DATABASE].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [claim.lock_key])


def idempotency_claim(*, customer_id: uuid.UUID, key: str, fingerprint: str) -> IdempotencyClaim | IdempotentResult:
    """Claim ``key`` for this request, or learn what became of an earlier request with it.

    The in-progress record is committed in its own short transaction before any work is
    done, so a concurrent request with the same key hits the unique constraint and learns
    that the first one is in flight. Returns a claim (the caller ends it with
    :func:`idempotency_unlock`), or the stored result to replay. Raises
    :class:`IdempotencyKeyReused` (another body) or :class:`IdempotencyKeyInFlight`.
    """
    lock_key = _advisory_key(customer_id, key)
    locked = _advisory_lock(lock_key)
    try:
        claimed = _claim(customer_id=customer_id, key=key, fingerprint=fingerprint, locked=locked, lock_key=lock_key)
    except BaseException:
        if locked:
            idempotency_unlock(claim=IdempotencyClaim(record_id=0, lock_token=uuid.uuid4(), lock_key=lock_key))
        raise
    if locked and not isinstance(claimed, IdempotencyClaim):
        idempotency_unlock(claim=IdempotencyClaim(record_id=0, lock_token=uuid.uuid4(), lock_key=lock_key))
    return claimed


def _claim(
    *, customer_id: uuid.UUID, key: str, fingerprint: str, locked: bool | None, lock_key: int
) -> IdempotencyClaim | IdempotentResult:
    held_key = lock_key if locked else None
    for _ in range(3):
        now = timezone.now()
        token = uuid.uuid4()
        if locked is not False:  # another session holding the key lock is in flight: do not even try
            try:
                with transaction.atomic(using=DATABASE):
                    record = IdempotencyRecord.objects.create(
                        customer_id=customer_id, key=key, fingerprint=fingerprint, lock_token=token, locked_at=now
                    )
                return IdempotencyClaim(record_id=record.pk, lock_token=token, lock_key=held_key)
            except IntegrityError:
                pass
        existing = IdempotencyRecord.objects.filter(customer_id=customer_id, key=key).first()
        if existing is None:
            if locked is False:
                raise IdempotencyKeyInFlight(key)  # claimed, its row not committed yet
            continue  # released by a failed request meanwhile: try to claim again
        if existing.created_at < now - IDEMPOTENCY_TTL and locked is not False:
            IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(key)
        if existing.status == IdempotencyRecord.Status.COMPLETED:
            return IdempotentResult(
                status=existing.response_status,
                body=existing.response_body,
                order_id=existing.order_id,
                replayed=True,
            )
        # In progress. With the key lock in hand its holder is gone (its session ended, e.g. the
        # database went away under it); without advisory locks, only its age tells.
        if locked or (locked is None and existing.locked_at < now - IDEMPOTENCY_LOCK_TIMEOUT):
            # The request holding it died before finishing (its work rolled back): take it over.
            taken = IdempotencyRecord.objects.filter(
                pk=existing.pk, status=IdempotencyRecord.Status.IN_PROGRESS, lock_token=existing.lock_token
            ).update(lock_token=token, locked_at=now)
            if taken:
                return IdempotencyClaim(record_id=existing.pk, lock_token=token, lock_key=held_key)
            continue
        raise IdempotencyKeyInFlight(key)
    raise IdempotencyKeyInFlight(key)


def idempotency_hold(*, claim: IdempotencyClaim) -> IdempotencyRecord:
    """Lock the claimed record inside the caller's transaction (the one that does the work).

    Raises :class:`IdempotencyKeyInFlight` if the claim expired and another request took the key over.
    """
    record = IdempotencyRecord.objects.select_for_update().filter(pk=claim.record_id).first()
    if record is None or record.status != IdempotencyRecord.Status.IN_PROGRESS or record.lock_token != claim.lock_token:
        raise IdempotencyKeyInFlight(claim.record_id)
    return record


def idempotency_release(*, claim: IdempotencyClaim) -> None:
    """Forget a claim whose request failed, so the client may retry with the same key."""
    with transaction.atomic(using=DATABASE):
        IdempotencyRecord.objects.filter(
            pk=claim.record_id, lock_token=claim.lock_token, status=IdempotencyRecord.Status.IN_PROGRESS
        ).delete()


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: Any, order_id: uuid.UUID) -> None:
    """Store the response of the work done under a held claim, in the work's transaction."""
    record.status = IdempotencyRecord.Status.COMPLETED
    record.response_status = status
    record.response_body = body
    record.order_id = order_id
    record.completed_at = timezone.now()
    record.save()


def idempotency_result(*, claim: IdempotencyClaim, order_id: uuid.UUID) -> IdempotentResult:
    """The response stored by the request that held ``claim`` (not a replay)."""
    record = IdempotencyRecord.objects.get(pk=claim.record_id)
    return IdempotentResult(status=record.response_status, body=record.response_body, order_id=order_id, replayed=False)


def idempotency_records_purge(*, older_than: timedelta) -> int:
    """Delete completed idempotency records older than ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    with transaction.atomic(using=DATABASE):
        deleted, _ = IdempotencyRecord.objects.filter(
            status=IdempotencyRecord.Status.COMPLETED, created_at__lt=cutoff
        ).delete()
    return deleted
