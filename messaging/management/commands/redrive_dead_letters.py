"""redrive_dead_letters: apply parked events again, once each, after the cause was fixed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from messaging.conf import messaging_settings
from messaging.delivery import Outcome, dead_letter_redrive
from messaging.management.commands._kafka import selected_modules
from messaging.models import DeadLetter


class Command(BaseCommand):
    help = (
        "Redrive parked dead letters of the modules this process serves: run the handler again, once, with the "
        "inbox (an event that meanwhile took effect is not applied twice). Success marks a dead letter redriven; "
        "a failure records the new error and leaves it parked. Pick dead letters by id, or --all (optionally "
        "narrowed with --event-type). Ids are per module database: with several served modules add --module."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="dead letter ids (as in the admin).")
        parser.add_argument("--all", action="store_true", help="every parked dead letter.")
        parser.add_argument("--event-type", help="only events of this type, e.g. orders.OrderPlaced.")
        parser.add_argument("--module", action="append", help="only this served module's dead letters (repeatable).")
        parser.add_argument("--dry-run", action="store_true", help="list what would be redriven; change nothing.")

    def handle(self, *args, **options):
        ids, redrive_all = options["ids"], options["all"]
        if bool(ids) == redrive_all:
            raise CommandError("name dead letter ids, or pass --all (not both).")
        modules = selected_modules(options["module"])
        if ids and len(modules) > 1:
            raise CommandError(f"ids are per module database: add --module (one of {', '.join(modules)}).")
        counts = dict.fromkeys(Outcome, 0)
        unknown_handler = 0
        found = 0
        not_parked = 0
        for module in modules:
            alias = messaging_settings.alias_for(module)
            parked = DeadLetter.objects.using(alias).filter(status=DeadLetter.Status.PARKED).order_by("id")
            if ids:
                parked = parked.filter(id__in=ids)
                missing = set(ids) - set(parked.values_list("id", flat=True))
                for dead_letter_id in sorted(missing):
                    not_parked += 1
                    self.stderr.write(f"{module}: no parked dead letter #{dead_letter_id}")
            if options["event_type"]:
                parked = parked.filter(event_type=options["event_type"])
            for dead_letter in parked.iterator():
                found += 1
                label = f"{module} #{dead_letter.pk} {dead_letter.event_type} -> {dead_letter.handler}"
                if options["dry_run"]:
                    self.stdout.write(f"would redrive {label}")
                    continue
                try:
                    outcome = dead_letter_redrive(dead_letter)
                except LookupError as error:
                    unknown_handler += 1
                    self.stderr.write(f"{label}: {error}")
                    continue
                counts[outcome] += 1
                style = self.style.SUCCESS if outcome is not Outcome.FAILED else self.style.ERROR
                self.stdout.write(style(f"{label}: {outcome.value}"))
        if options["dry_run"]:
            self.stdout.write(f"{found} dead letter(s) would be redriven")
            return
        redriven = counts[Outcome.APPLIED] + counts[Outcome.DUPLICATE]
        self.stdout.write(
            f"{redriven} redriven ({counts[Outcome.DUPLICATE]} had already taken effect), "
            f"{counts[Outcome.FAILED]} failed again, {unknown_handler} without a handler in this process"
        )
        if counts[Outcome.FAILED] or unknown_handler:
            raise CommandError("some dead letters are still parked; see the errors above and in the admin.")
        if not_parked:
            raise CommandError(f"{not_parked} id(s) name no parked dead letter (redriven, or another module's).")
