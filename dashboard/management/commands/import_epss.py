from collections.abc import Callable
from typing import Any

from dashboard.management.intel_command import IntelFileCommand
from dashboard.services.intel import epss_import


class Command(IntelFileCommand):
    help = "Import FIRST's daily EPSS scores (CSV or .csv.gz: a #model_version comment line, then cve,epss,percentile)."
    file_help = "epss_scores-YYYY-MM-DD.csv(.gz) from epss.cyentia.com"
    noun = "EPSS scores"

    def importer(self) -> Callable[..., Any]:
        return epss_import
