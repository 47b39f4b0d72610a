from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.compatibility import LOCK, compare, locked_update, read_lock, snapshot, snapshot_json


class Command(BaseCommand):
    help = (
        "Compare the modules' event contracts with the released schemas in docs/contracts.lock.json; "
        "fail on a change that would break a consumer of a released version."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lock", type=Path, default=LOCK, help="the lock file (default: %(default)s)")
        parser.add_argument(
            "--update",
            action="store_true",
            help="record new event versions in the lock (refused while a change is breaking)",
        )
        parser.add_argument(
            "--retire",
            action="append",
            default=[],
            metavar="TYPE:VERSION",
            help="with --update: drop a released version no consumer reads any more (e.g. orders.OrderPaid:1)",
        )

    def handle(self, *args, lock: Path, update: bool, retire: list[str], **options):
        if retire and not update:
            raise CommandError("--retire changes the lock: give --update with it.")
        current = snapshot()
        if not lock.exists():
            if not update:
                raise CommandError(
                    f"{lock} does not exist: run `python manage.py check_contracts --update` to create it."
                )
            lock.write_text(snapshot_json(current))
            self.stdout.write(f"wrote {lock} ({sum(len(v) for v in current['events'].values())} event versions)")
            return
        try:
            locked = read_lock(lock)
        except ValueError as error:
            raise CommandError(str(error)) from error
        retired = {"{} v{}".format(*item.split(":", 1)) for item in retire if ":" in item}
        findings = [f for f in compare(locked, current) if f.event not in retired]
        breaking = [f for f in findings if f.breaking]
        for finding in findings:
            self.stderr.write(("BREAKING " if finding.breaking else "new ") + finding.message)
        if breaking:
            raise CommandError(
                f"{len(breaking)} change(s) would break consumers of released event versions (listed above)."
            )
        if update:
            try:
                lock.write_text(snapshot_json(locked_update(locked, current, retire)))
            except ValueError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"updated {lock}")
            return
        if findings:
            raise CommandError(
                f"{len(findings)} event version(s) are not in {lock.name} yet: "
                "run `python manage.py check_contracts --update`."
            )
        count = sum(len(v) for v in locked["events"].values())
        self.stdout.write(f"contracts compatible with {lock.name}: {count} released event versions checked")
