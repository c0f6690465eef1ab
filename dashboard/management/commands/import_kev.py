from collections.abc import Callable
from typing import Any

from dashboard.management.intel_command import IntelFileCommand
from dashboard.services.intel import kev_import


class Command(IntelFileCommand):
    help = "Import the CISA Known Exploited Vulnerabilities catalogue (JSON, optionally gzipped) and re-score affected findings."
    file_help = "known_exploited_vulnerabilities.json from cisa.gov"
    noun = "KEV entries"

    def importer(self) -> Callable[..., Any]:
        return kev_import
