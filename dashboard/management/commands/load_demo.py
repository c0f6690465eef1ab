from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dashboard.services.demo import DEMO_PASSWORD, demo_is_needed, demo_load


class Command(BaseCommand):
    help = "Load 90 days of demo data (real sample reports, backdated) into an empty database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the database already has data")

    def handle(self, *args: Any, **options: Any) -> None:
        if not demo_is_needed():
            if options["if_empty"]:
                self.stdout.write("database already has data: demo not loaded")
                return
            self.stderr.write("database already has data: refusing to load the demo on top of it")
            raise SystemExit(1)
        made = demo_load()
        self.stdout.write(
            f"demo loaded: {made['teams']} teams, {made['reports']} reports, {made['findings']} findings\n"
            f"  champion login: champion / {DEMO_PASSWORD}  (team Payments)\n"
            f"  manager login:  manager / {DEMO_PASSWORD}   (all teams)\n"
            f"  admin login:    admin / {DEMO_PASSWORD}"
        )
