"""In-process transport: after commit, this process relays its own outbox to its own handlers.

Same outbox, same inbox, same handlers as with Kafka. A row is marked published only
after every handler has had it, so a process that dies in between redelivers on its
next start, and the inbox turns the repeat into a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import DatabaseError
from django.utils import timezone

from messaging.conf import messaging_settings
from messaging.dispatch import dispatch_batch
from messaging.models import OutboxMessage

logger = logging.getLogger(__name__)


class InProcessTransport:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def wake(self, alias: str) -> None:
        self.drain({alias})

    def on_process_start(self) -> None:
        served = {messaging_settings.alias_for(module) for module in messaging_settings.served_modules}
        try:
            delivered = self.drain(served)
        except DatabaseError as error:  # not migrated yet: nothing can be pending
            logger.warning("outbox not relayed at start: %s", error)
            return
        if delivered:
            logger.info("relayed %d outbox message(s) left from an earlier run", delivered)

    def deliver_pending(self, alias: str, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Deliver everything waiting in ``alias``'s outbox now, reporting ``on_progress(done, total)``.

        For an operator command: what an interrupted run left behind goes too, not only this run's events.
        """
        total = OutboxMessage.objects.using(alias).filter(published_at__isnull=True).count()
        if on_progress is not None:
            on_progress(0, total)
        return self.drain(
            {alias}, on_progress=(lambda done: on_progress(done, max(total, done))) if on_progress else None
        )

    def drain(self, aliases: set[str], on_progress: Callable[[int], None] | None = None) -> int:
        """Relay the outboxes of ``aliases`` until they are empty.

        One thread relays at a time; a wake that arrives meanwhile (another thread's
        commit, or a handler's own event) is noted and picked up by the relaying thread
        before it lets go, so no wake is lost and nothing recurses.
        """
        relayed = 0
        self._pending |= aliases
        while self._pending:
            if not self._lock.acquire(blocking=False):
                return relayed
            try:
                while self._pending:
                    alias = self._pending.pop()
                    while batch := self._relay_batch(alias):
                        relayed += batch
                        if on_progress is not None:
                            on_progress(relayed)
            finally:
                self._lock.release()
        return relayed

    def _relay_batch(self, alias: str) -> int:
        modules = messaging_settings.served_modules
        batch_size = messaging_settings.RELAY_BATCH_SIZE
        pending = list(OutboxMessage.objects.using(alias).filter(published_at__isnull=True).order_by("id")[:batch_size])
        # Each handler gets the batch in one transaction (dispatch_batch); no on_park: the dead-letter
        # row is the whole record. Marked after every handler had them, in one statement.
        dispatch_batch([message.to_envelope() for message in pending], modules)
        OutboxMessage.objects.using(alias).filter(pk__in=[message.pk for message in pending]).update(
            published_at=timezone.now()
        )
        return len(pending)
