from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken
from dashboard.services.tokens import token_rotate, token_signing_secret


class Command(BaseCommand):
    help = "Issue a successor of a token (same teams, scope, allow-list; new secrets) and print it; the old one works for --overlap-hours."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the public prefix of the token to rotate")
        parser.add_argument("--overlap-hours", type=int, default=24, help="how long the old token keeps working (default 24)")
        parser.add_argument("--reason", default="", help="why (kept in the audit log)")

    def handle(self, *args: Any, **options: Any) -> None:
        token = ApiToken.objects.select_related("team").filter(prefix=options["prefix"]).first()
        if token is None:
            raise CommandError(f"no token with prefix {options['prefix']!r}")
        try:
            successor, plaintext = token_rotate(token=token, overlap_hours=options["overlap_hours"], reason=options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(plaintext)
        if successor.requires_signature:
            self.stdout.write(token_signing_secret(successor))
