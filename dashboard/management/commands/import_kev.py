from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.services.intel import kev_import


class Command(BaseCommand):
    help = "Import the CISA Known Exploited Vulnerabilities catalogue (JSON, optionally gzipped) and re-score affected findings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="known_exploited_vulnerabilities.json from cisa.gov")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        try:
            result = kev_import(data=data)
        except ApplicationError as exc:
            raise CommandError(f"{path}: {exc.message}") from exc
        self.stdout.write(result.summary("KEV entries"))
