from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.services.snapshots import snapshots_backfill


class Command(BaseCommand):
    help = "Rebuild the daily posture snapshots of the last N days from the findings' events (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=90, help="how many days, ending today (default 90)")
        parser.add_argument("--team", default="", help="only this team's snapshots (slug); the organisation's are left as they are")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = snapshots_backfill(days=options["days"], team_slug=options["team"])
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{rows} snapshots written ({options['days']} days)")
