from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.models import Team
from dashboard.services.teams import team_create


class Command(BaseCommand):
    help = "Create a team: create_team SLUG [--name NAME]; a team of that slug (and name) already there is left as it is"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        existing = Team.objects.filter(slug=options["slug"]).first()
        if existing is not None and options["name"] in ("", existing.name):
            # Scripts (the README's CI example) run it on every setup: the team being there is success.
            self.stdout.write(f"team {existing.slug} already exists ({existing.name})")
            return
        try:
            team = team_create(slug=options["slug"], name=options["name"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"created team {team.slug} ({team.name})")
