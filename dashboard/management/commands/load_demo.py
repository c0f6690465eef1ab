from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from dashboard.services.demo import DEMO_PASSWORD, LOGIN_NOTES, demo_is_needed, demo_load


class Command(BaseCommand):
    help = "Load 90 days of demo data (real sample reports, backdated) into an empty database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the database already has data")

    def handle(self, *args: Any, **options: Any) -> None:
        if not demo_is_needed():
            if options["if_empty"]:
                self.stdout.write("database already has data: demo not loaded")
                self._logins()
                return
            self.stderr.write("database already has data: refusing to load the demo on top of it")
            raise SystemExit(1)
        made = demo_load()
        self.stdout.write(f"demo loaded: {made['teams']} teams, {made['reports']} reports, {made['findings']} findings")
        self._logins()

    def _logins(self) -> None:
        """Every demo login that exists in this database (none when it holds other data)."""
        present = set(get_user_model().objects.filter(username__in=LOGIN_NOTES).values_list("username", flat=True))
        if not present:
            return
        self.stdout.write("demo logins (password for all: " + DEMO_PASSWORD + "):")
        width = max(len(name) for name in LOGIN_NOTES)
        for username, note in LOGIN_NOTES.items():
            if username in present:
                self.stdout.write(f"  {username.ljust(width)}  {note}")
