import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.asyncapi import asyncapi_yaml
from config.module_map import (
    DEFAULT_SPLIT,
    module_map_markdown,
    parse_grouping,
    service_map,
    service_map_dot,
    service_map_svg,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"


def docs_files() -> dict[Path, str]:
    """What --write-docs writes: the module page, its picture (the default split), the AsyncAPI document."""
    return {
        DOCS / "modules.md": module_map_markdown(),
        DOCS / "modules.svg": service_map_svg(service_map(parse_grouping(DEFAULT_SPLIT))),
        DOCS / "asyncapi.yaml": asyncapi_yaml(),
    }


class Command(BaseCommand):
    help = (
        "Describe the modules from the code: the events each publishes and handles (Markdown), the service "
        "map for a grouping of modules into processes (DOT, SVG, JSON), or the AsyncAPI 3.0 document."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["markdown", "svg", "dot", "json", "asyncapi"], default="markdown")
        parser.add_argument(
            "--grouping",
            default=DEFAULT_SPLIT,
            help=(
                "processes for the map, QUIRE_SERVICES' form: words are processes, '+' joins modules "
                "(e.g. \"accounts+catalog+orders recommendations\"; 'all' for one process; default: %(default)r)"
            ),
        )
        parser.add_argument(
            "--transport",
            choices=["kafka", "inprocess"],
            default=None,
            help="for the map (default: kafka unless 'all')",
        )
        parser.add_argument(
            "--write-docs", action="store_true", help="write docs/modules.md, docs/modules.svg and docs/asyncapi.yaml"
        )

    def handle(self, *args, format: str, grouping: str, transport: str | None, write_docs: bool, **options):
        if write_docs:
            for path, text in docs_files().items():
                path.write_text(text)
                self.stdout.write(f"wrote {path}")
            return
        if format == "markdown":
            self.stdout.write(module_map_markdown(), ending="")
            return
        if format == "asyncapi":
            self.stdout.write(asyncapi_yaml(), ending="")
            return
        try:
            processes = parse_grouping(grouping)
        except ValueError as error:
            raise CommandError(f"--grouping: {error}") from error
        data = service_map(processes, transport=transport or ("inprocess" if len(processes) == 1 else "kafka"))
        if format == "json":
            self.stdout.write(json.dumps(data, indent=2))
        elif format == "dot":
            self.stdout.write(service_map_dot(data), ending="")
        else:
            self.stdout.write(service_map_svg(data), ending="")
