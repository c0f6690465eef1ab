import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dashboard.models import Team
from dashboard.services.nudges import nudges_compute


class Command(BaseCommand):
    help = "Run the training nudge rules once (idempotent: running it again at once creates nothing new)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", action="append", default=[], help="team slug (repeatable; default: every team)")
        parser.add_argument("--now", default="", help="ISO 8601 time to compute as of (default: now)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["now"]:
            try:
                now = dt.datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now: {exc}") from exc
            if timezone.is_naive(now):
                now = timezone.make_aware(now)
        teams = None
        if options["team"]:
            teams = list(Team.objects.filter(slug__in=options["team"]).order_by("pk"))
            missing = sorted(set(options["team"]) - {team.slug for team in teams})
            if missing:
                raise CommandError(f"no team {', '.join(missing)}")
        made = nudges_compute(now=now, teams=teams)
        self.stdout.write(f"{len(made)} nudge{'s' if len(made) != 1 else ''} created")
        for nudge in made:
            self.stdout.write(f"  {nudge.team.slug}: {nudge.topic.name} ({nudge.rule}, {nudge.findings_count} findings)")
