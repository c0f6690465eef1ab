from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.services.training import CATALOGUE, training_load


class Command(BaseCommand):
    help = "Load the training catalogue (topics and free modules); idempotent, keeps administrators' edits unless --update."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", default=str(CATALOGUE), help="catalogue JSON (default: dashboard/data/training_catalogue.json)")
        parser.add_argument("--update", action="store_true", help="also overwrite existing topics and modules from the file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            outcome = training_load(path=Path(options["file"]), update=options["update"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"training catalogue: {outcome.topics_created} topics and {outcome.modules_created} modules created, "
            f"{outcome.topics_updated} topics and {outcome.modules_updated} modules updated, {outcome.links_added} links added"
        )
