"""One relay per module database at a time: the lease a relay holds on a module's outbox.

On PostgreSQL the lease is a session advisory lock on a connection of its own, which also
LISTENs for the outbox trigger's NOTIFY, so a commit wakes the relay at once; a relay that dies
ends its session and frees the lock. On SQLite it is an ``flock`` on a file beside the
database. A second relay finds the lease taken and waits as a hot standby.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time

from django.db import DatabaseError, connections

from messaging.conf import messaging_settings

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "messaging_outbox"  # sent by the outbox insert trigger (migration 0002)


def relay_lock_key(module: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``, one per module."""
    digest = hashlib.blake2b(f"quire.outbox-relay.{module}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ModuleLease:
    """This relay's exclusive hold on one module's outbox."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.alias = messaging_settings.alias_for(module)
        self.vendor = connections[self.alias].vendor
        self._lock_connection = None  # PostgreSQL: holds the advisory lock and LISTENs
        self._lock_file = None  # SQLite file: holds an flock
        self._next_attempt = 0.0

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
