from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.models import Role, Team
from dashboard.services.teams import membership_remove, membership_set


class Command(BaseCommand):
    help = "Put a person in a team with a role (champion, member, manager), or --remove them; every change is audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("team", help="team slug")
        parser.add_argument("role", nargs="?", default=Role.MEMBER, choices=Role.values)
        parser.add_argument("--can-triage", action="store_true", help="a manager's grant to triage and accept risk in this team")
        parser.add_argument("--remove", action="store_true", help="take the person out of the team")
        parser.add_argument("--reason", default="", help="why (kept in the audit log)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        team = Team.objects.filter(slug=options["team"]).first()
        if user is None or team is None:
            raise CommandError(f"no {'user' if user is None else 'team'} {options['username' if user is None else 'team']!r}")
        if options["remove"]:
            removed = membership_remove(user=user, team=team, reason=options["reason"])
            self.stdout.write(f"{user.get_username()} {'removed from' if removed else 'was not in'} {team.slug}")
            return
        try:
            membership_set(user=user, team=team, role=options["role"], can_triage=options["can_triage"], reason=options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{user.get_username()} is {options['role']} of {team.slug}")
