from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.models import ApiToken
from dashboard.services.tokens import token_revoke


class Command(BaseCommand):
    help = "Revoke an API token at once, by its public prefix (the 10 characters after vgl_)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the token's public prefix, as listed in the admin")
        parser.add_argument("--reason", default="", help="why (kept in the audit log)")

    def handle(self, *args: Any, **options: Any) -> None:
        token = ApiToken.objects.select_related("team").filter(prefix=options["prefix"]).first()
        if token is None:
            raise CommandError(f"no token with prefix {options['prefix']!r}")
        token_revoke(token=token, reason=options["reason"])
        self.stdout.write(f"revoked {token.name} ({token.prefix})")
