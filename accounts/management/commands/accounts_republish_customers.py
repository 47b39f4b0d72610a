"""``manage.py accounts_republish_customers``: every customer's name and email, published again."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts import services
from messaging import Progress


class Command(BaseCommand):
    help = (
        "Publish accounts.CustomerUpdated for every customer, so that a module that starts consuming "
        "accounts' events (orders' customer copy) learns the customers registered before it did."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        progress = Progress(self.stderr)
        published = services.customers_republish(batch_size=batch_size, progress=progress)
        progress.finish()
        self.stdout.write(f"published accounts.CustomerUpdated for {published} customer(s)")
