from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.demo import DEMO_PASSWORD, seed_demo

SEEDED = ("catalog", "accounts")


class Command(BaseCommand):
    help = (
        "Build a deterministic demo shop with no external file: books and stock (catalog), customers "
        "(accounts) and, in one process, their orders. A service seeds its own part only. "
        f"Demo customers sign in with the password {DEMO_PASSWORD!r}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing where data already exists")
        parser.add_argument("--books", type=int, default=300, help="how many books (default 300)")
        parser.add_argument("--customers", type=int, default=12, help="how many customers (default 12)")
        parser.add_argument("--seed", type=int, default=7, help="random seed: the same seed builds the same shop")

    def handle(self, *args, **options):
        if options["books"] < 1 or options["customers"] < 0:
            raise CommandError("--books must be at least 1 and --customers at least 0.")
        modules = tuple(m for m in settings.SERVED_MODULES if m in SEEDED)
        if not modules:
            self.stdout.write(f"{settings.SERVICE} has no demo data of its own: it learns from other modules' events.")
            return
        if options["if_empty"]:
            modules = tuple(m for m in modules if not self._has_data(m))
            if not modules:
                self.stdout.write("The shop already has data: demo data not added.")
                return
        summary = seed_demo(
            modules=tuple(settings.SERVED_MODULES) if len(modules) == len(SEEDED) else modules,
            books=options["books"],
            customers=options["customers"],
            seed=options["seed"],
            report=self.stdout.write,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {summary.books} books, {summary.customers} customers, {summary.orders} orders."
            )
        )

    @staticmethod
    def _has_data(module: str) -> bool:
        if module == "catalog":
            from catalog.models import Book

            return Book.objects.exists()
        from accounts.models import Customer

        return Customer.objects.exists()
