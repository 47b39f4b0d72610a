"""Find the checkouts whose saga never settled and move them on (run every minute: run_service or a CronJob)."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from orders import selectors, services


class Command(BaseCommand):
    help = (
        "Orders pending longer than ORDERS_PENDING_TIMEOUT_SECONDS (their OrderPlaced or catalog's answer lost to "
        "an outage, a consumer stalled, a crash): announce OrderPlaced again, at most "
        "ORDERS_PENDING_MAX_REANNOUNCEMENTS times one timeout apart, then reject the order with reason "
        "not_confirmed_in_time and ask catalog to release what it may hold. Once, or with --every forever."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="seconds pending before an order is overdue (default ORDERS_PENDING_TIMEOUT_SECONDS).",
        )
        parser.add_argument(
            "--max-reannouncements",
            type=int,
            default=None,
            help="re-announcements before rejecting (default ORDERS_PENDING_MAX_REANNOUNCEMENTS).",
        )
        parser.add_argument(
            "--every", type=float, default=None, help="run again every this many seconds, until SIGTERM."
        )
        parser.add_argument("--dry-run", action="store_true", help="list the overdue orders, change nothing.")

    def handle(self, *args, timeout, max_reannouncements, every, dry_run, **options):
        timeout = settings.ORDERS_PENDING_TIMEOUT_SECONDS if timeout is None else timeout
        if max_reannouncements is None:
            max_reannouncements = settings.ORDERS_PENDING_MAX_REANNOUNCEMENTS
        if timeout <= 0:
            raise CommandError("--timeout (ORDERS_PENDING_TIMEOUT_SECONDS) must be more than 0 seconds.")
        if max_reannouncements < 0:
            raise CommandError("--max-reannouncements (ORDERS_PENDING_MAX_REANNOUNCEMENTS) must be 0 or more.")
        if every is not None and every <= 0:
            raise CommandError("--every must be more than 0 seconds.")
        limit = timedelta(seconds=timeout)
        if every is None:
            self.resolve(limit, max_reannouncements, dry_run=dry_run)
            return
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.resolve(limit, max_reannouncements, dry_run=dry_run, quiet=True)
                except DatabaseError as error:  # the database is away: the next round tries again
                    self.stderr.write(f"orders_resolve_pending: database unavailable ({error}); retrying in {every:g}s")
                finally:
                    close_old_connections()
                stop.wait(max(every - (time.monotonic() - started), 0.0))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def resolve(self, limit: timedelta, max_reannouncements: int, *, dry_run: bool, quiet: bool = False) -> None:
        overdue = list(selectors.orders_pending_overdue(older_than=limit).values_list("id", "created_at"))
        if dry_run:
            for order_id, created_at in overdue:
                self.stdout.write(f"overdue: order {order_id} pending since {created_at.isoformat()}")
            self.stdout.write(f"{len(overdue)} order(s) pending longer than {limit.total_seconds():g}s")
            return
        outcomes: dict[str, int] = {}
        for order_id, _ in overdue:
            outcome = services.order_pending_resolve(
                order_id=order_id, timeout=limit, max_reannouncements=max_reannouncements
            )
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome in (services.PendingOutcome.REANNOUNCED, services.PendingOutcome.REJECTED):
                self.stdout.write(f"order {order_id}: {outcome}")
        if overdue or not quiet:
            counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "nothing to do"
            self.stdout.write(f"{len(overdue)} order(s) pending longer than {limit.total_seconds():g}s: {counts}")
