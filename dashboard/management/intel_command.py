"""The shape both threat-intelligence imports share: read one file, hand its bytes to a service, print the summary."""

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError


class IntelFileCommand(BaseCommand):
    #: What the positional argument is, for --help.
    file_help = ""
    #: What the summary counts ("EPSS scores").
    noun = ""

    def importer(self) -> Callable[..., Any]:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help=self.file_help)

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        try:
            result = self.importer()(data=data)
        except ApplicationError as exc:
            raise CommandError(f"{path}: {exc.message}") from exc
        self.stdout.write(result.summary(self.noun))
