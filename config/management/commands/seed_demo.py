from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import topology
from config.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = (
        "Build a deterministic demo shop (books, stock, customers, orders) with no external file. "
        f"Demo customers sign in with the password {DEMO_PASSWORD!r}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing if the catalog already has books")
        parser.add_argument("--books", type=int, default=300, help="how many books (default 300)")
        parser.add_argument("--customers", type=int, default=12, help="how many customers (default 12)")
        parser.add_argument("--seed", type=int, default=7, help="random seed: the same seed builds the same shop")

    def handle(self, *args, **options):
        if settings.SERVICE != topology.ALL:
            raise CommandError(
                "seed_demo builds every module at once: run it with SERVICE=all (the one-process shop). "
                "A split shop gets its books from import_catalog or the staff API."
            )
        from catalog.models import Book

        if options["if_empty"] and Book.objects.exists():
            self.stdout.write("The shop already has books: demo data not added.")
            return
        if options["books"] < 1 or options["customers"] < 0:
            raise CommandError("--books must be at least 1 and --customers at least 0.")
        summary = seed_demo(
            books=options["books"], customers=options["customers"], seed=options["seed"], report=self.stdout.write
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo shop ready: {summary.books} books, {summary.customers} customers, {summary.orders} orders."
            )
        )
