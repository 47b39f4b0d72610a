"""check_heartbeat: exit 0 if the relay's or consumer's heartbeat file is fresh, 1 otherwise (an exec probe)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from messaging.conf import messaging_settings
from messaging.kafka.health import heartbeat_limit
from messaging.kafka.liveness import heartbeat_age


class Command(BaseCommand):
    help = (
        "Liveness of this process's relay or consumer, for a supervisor that cannot ask it (a Kubernetes exec "
        "probe): exit 0 if its heartbeat file (MESSAGING_RELAY_HEARTBEAT_FILE / MESSAGING_CONSUMER_HEARTBEAT_FILE) "
        "recorded progress within --max-age seconds (default: its MESSAGING_<ROLE>_STALL_EXIT_SECONDS), else 1 "
        "with the reason. A relay or consumer that is alive but stuck (a wedged call, a lost database connection, "
        "no partitions) stops touching it."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", choices=("relay", "consumer"), help="whose heartbeat to read.")
        parser.add_argument("--file", default=None, help="the heartbeat file (default: the role's setting).")
        parser.add_argument("--max-age", type=float, default=None, help="seconds a heartbeat stays fresh.")

    def handle(self, *args, role, file, max_age, **options):
        setting = f"{role.upper()}_HEARTBEAT_FILE"
        path = file or getattr(messaging_settings, setting)
        if not path:
            raise CommandError(f"no heartbeat file: set MESSAGING_{setting} (the {role} writes it) or pass --file.")
        if max_age is None:
            max_age = heartbeat_limit(role)  # what /health/ready/ holds it to as well
        age = heartbeat_age(path)
        if age is None:
            raise CommandError(f"{role}: no heartbeat at {path} (not started yet, or not running here).")
        if age > max_age:
            raise CommandError(f"{role}: last progress {age:.0f}s ago at {path} (limit {max_age:g}s): stuck.")
        self.stdout.write(f"{role}: progressed {age:.1f}s ago (limit {max_age:g}s)")
