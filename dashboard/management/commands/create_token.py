from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.models import Team, TokenScope
from dashboard.services.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for a team and print it (only the token, shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'payments CI'")
        parser.add_argument("--scope", default=TokenScope.INGEST, choices=TokenScope.values)
        parser.add_argument("--days", type=int, default=None, help="lifetime in days (default VIGIL_TOKEN_DAYS, 365)")

    def handle(self, *args: Any, **options: Any) -> None:
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"no team {options['team']!r}; create it with: manage.py create_team {options['team']}")
        try:
            _, plaintext = token_create(team=team, name=options["name"], scope=options["scope"], days=options["days"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(plaintext)
