"""``migrate`` with no --database brings every database of this process up to date.

Django migrates one alias per call; with a database per module that is easy to
forget, so the plain command walks all aliases (the router decides what goes where).
"""

from django.core.management import call_command
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections


class Command(DjangoMigrate):
    help = "Updates every database of this process (or only --database) to the current migrations."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=None)

    def get_check_kwargs(self, options):
        if options["database"] is None:
            return {**super(DjangoMigrate, self).get_check_kwargs(options), "databases": list(connections)}
        return super().get_check_kwargs(options)

    def handle(self, *args, **options):
        aliases = list(connections) if options["database"] is None else [options["database"]]
        for alias in aliases:
            if options["verbosity"] >= 1 and options["database"] is None:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias}:"))
            super().handle(*args, **{**options, "database": alias})
            # The rate limits' table (a DatabaseCache, web/throttling.py) is no model: made here, where the
            # router allows it (`default`), so that one deploy step prepares everything.
            call_command("createcachetable", database=alias, verbosity=options["verbosity"])
