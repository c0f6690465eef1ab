from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.models import Team, TokenScope
from dashboard.services.tokens import token_create, token_signing_secret


class Command(BaseCommand):
    help = "Create an API token for a team and print it (only the token, shown once; with --signing, the signing secret on a second line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'payments CI'")
        parser.add_argument("--scope", default=TokenScope.INGEST, choices=TokenScope.values)
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument("--days", type=int, default=None, help="lifetime in days, 1 to 3650 (default VIGIL_TOKEN_DAYS, 365)")
        lifetime.add_argument("--no-expiry", action="store_true", help="a token that never expires (administrators only; audited)")
        parser.add_argument(
            "--also-team", action="append", default=[], metavar="SLUG", help="an integration token also covers this team (repeatable)"
        )
        parser.add_argument(
            "--allow-ip", action="append", default=[], metavar="CIDR", help="only accept the token from this network (repeatable)"
        )
        parser.add_argument(
            "--all-teams",
            action="store_true",
            help="organisation-wide ingest (a platform team's scanner): its reports may change every team's findings (audited)",
        )
        parser.add_argument("--cluster", default="", help="bind the token to this cluster (admission webhooks, cluster-wide senders)")
        parser.add_argument("--signing", action="store_true", help="require signed requests (X-Vigil-Signature); prints the secret")

    def handle(self, *args: Any, **options: Any) -> None:
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"no team {options['team']!r}; create it with: manage.py create_team {options['team']}")
        extra = list(Team.objects.filter(slug__in=options["also_team"]))
        missing = sorted(set(options["also_team"]) - {t.slug for t in extra})
        if missing:
            raise CommandError(f"no team {missing[0]!r}")
        try:
            token, plaintext = token_create(
                team=team,
                name=options["name"],
                scope=options["scope"],
                days=options["days"],
                extra_teams=extra,
                allowed_cidrs=options["allow_ip"],
                signing=options["signing"],
                no_expiry=options["no_expiry"],
                all_teams=options["all_teams"],
                cluster=options["cluster"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(plaintext)
        if options["signing"]:
            self.stdout.write(token_signing_secret(token))
