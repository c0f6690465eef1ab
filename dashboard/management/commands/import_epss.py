from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.services.intel import epss_import


class Command(BaseCommand):
    help = "Import FIRST's daily EPSS scores (CSV or .csv.gz: a #model_version comment line, then cve,epss,percentile)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="epss_scores-YYYY-MM-DD.csv(.gz) from epss.cyentia.com")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        try:
            result = epss_import(data=data)
        except ApplicationError as exc:
            raise CommandError(f"{path}: {exc.message}") from exc
        self.stdout.write(result.summary("EPSS scores"))
