from django.core.management.base import BaseCommand

from config.module_map import module_map_markdown


class Command(BaseCommand):
    help = "Print the modules, the events each publishes (with payloads) and handles, as Markdown."

    def handle(self, *args, **options):
        self.stdout.write(module_map_markdown(), ending="")
