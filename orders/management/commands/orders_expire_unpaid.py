"""Cancel confirmed orders not paid by their deadline, releasing their stock (run_service runs it periodically)."""

from __future__ import annotations

import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from orders import holds


class Command(BaseCommand):
    help = (
        "Cancel confirmed orders whose payment deadline (ORDERS_PAYMENT_TIMEOUT_SECONDS after confirmation) "
        "passed: OrderCancelled releases their stock, OrderExpired says why."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, default=None, help="run again every this many seconds, until SIGTERM."
        )
        parser.add_argument("--dry-run", action="store_true", help="list the overdue orders, change nothing.")

    def handle(self, *args, every, dry_run, **options):
        if every is not None and every <= 0:
            raise CommandError("--every must be more than 0 seconds.")
        if every is None:
            self.sweep(dry_run=dry_run)
            return
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.sweep(dry_run=dry_run, quiet=True)
                except DatabaseError as error:  # the database is away: the next round tries again
                    self.stderr.write(f"orders_expire_unpaid: database unavailable ({error}); retrying in {every:g}s")
                finally:
                    close_old_connections()
                stop.wait(max(every - (time.monotonic() - started), 0.0))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def sweep(self, *, dry_run: bool, quiet: bool = False) -> None:
        overdue = list(holds.orders_unpaid_overdue().values_list("id", "payment_due_at"))
        if dry_run:
            for order_id, due in overdue:
                self.stdout.write(f"overdue: order {order_id} due {due.isoformat() if due else '(no deadline)'}")
            self.stdout.write(f"{len(overdue)} unpaid order(s) past their payment deadline")
            return
        expired = 0
        for order_id, _ in overdue:
            if holds.order_expire_unpaid(order_id=order_id):
                expired += 1
                self.stdout.write(f"order {order_id}: not paid in time, cancelled")
        if overdue or not quiet:
            timeout = settings.ORDERS_PAYMENT_TIMEOUT_SECONDS
            self.stdout.write(f"{expired} unpaid order(s) cancelled (payment timeout {timeout:g}s)")
