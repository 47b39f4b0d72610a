"""Forget completed checkout Idempotency-Keys older than a cut-off (run daily from cron)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from orders import idempotency


class Command(BaseCommand):
    help = "Delete completed Idempotency-Key records of checkout older than --older-than-hours (default 24)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=idempotency.IDEMPOTENCY_TTL.total_seconds() / 3600,
            help="Age after which a completed key is forgotten and may be reused (default: %(default)s).",
        )

    def handle(self, *args, older_than_hours: float, **options):
        if older_than_hours < 0:
            raise CommandError("--older-than-hours must be zero or more.")
        deleted = idempotency.idempotency_records_purge(older_than=timedelta(hours=older_than_hours))
        self.stdout.write(f"{deleted} idempotency record(s) older than {older_than_hours:g} h deleted.")
