"""Rebuild the recommendation model from this module's purchase history (progress on stderr)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from messaging import Progress
from recommendations import services


class Command(BaseCommand):
    help = (
        "Rebuilds the recommendation model (co-purchases, popularity) from the recommendations database's "
        "own purchases and stores it as a new snapshot; every process reloads it on its next request."
    )

    def handle(self, *args, **options):
        # The raw stream: OutputWrapper would end every write with a newline, and on a
        # terminal the progress line is redrawn in place.
        progress = Progress(self.stderr._out)
        started = time.perf_counter()
        result = services.model_rebuild(progress=progress)
        progress.finish()
        snapshot = result.snapshot
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt the model from {result.purchase_lines:,} purchase lines in "
                f"{time.perf_counter() - started:.1f}s: {snapshot.books:,} books, {snapshot.customers:,} customers, "
                f"{snapshot.co_pairs:,} co-purchase pairs; snapshot v{snapshot.version} "
                f"({snapshot.size_bytes / 1e6:.1f} MB)."
            )
        )
