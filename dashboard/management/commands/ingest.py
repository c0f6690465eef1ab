import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import ApplicationError
from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.services.reports_summary import report_summary


class Command(BaseCommand):
    help = "Ingest a report file synchronously and print the same JSON summary as the API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--format", default="", help="format name (detected from content when omitted)")
        parser.add_argument("--image", default="", help="image reference the report is about, e.g. registry/repo:tag")
        parser.add_argument("--team", default="", help="team slug")
        parser.add_argument("--stream", default="", help="scan, admission or runtime (from the format when omitted)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"], "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CommandError(f"{options['file']}: {exc.strerror}") from exc
        try:
            report, _ = report_submit(
                data=data,
                team_slug=options["team"],
                format_name=options["format"],
                image=options["image"],
                stream=options["stream"],
                enqueue_now=False,
            )
        except ApplicationError as exc:
            raise CommandError(f"{options['file']}: {exc.message}") from exc
        report = report_process(report.pk) or report
        report.refresh_from_db()
        self.stdout.write(json.dumps(report_summary(report), indent=2))
        if report.status != "done":
            raise CommandError(f"{options['file']}: {report.error or report.status}")
