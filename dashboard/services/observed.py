"""When a report was observed: the scanner's own time when its format carries one, else when Vigil received it.

Set on the report once it is applied.  The lifecycle runs on Vigil's clock (the receive time, or the moment a
submitter backdated the report to, as the demo does): an old file posted today does not make its new findings
overdue at once, while the report and "last scanned" still say when the scan really happened.
"""

from __future__ import annotations

import datetime as dt

from dashboard.models import Report
from scanners.base import ParseResult

#: A scanner's clock may run this far ahead of Vigil's; a time further ahead is not believed.
CLOCK_SKEW = dt.timedelta(minutes=5)


def observed_at_of(*, report: Report, result: ParseResult) -> dt.datetime:
    """The report's observed time: a backdated one is kept, else the scanner's own, else the receive time."""
    if report.observed_at != report.received_at:
        return report.observed_at
    scanner = result.observed_at
    if scanner is None or scanner > report.received_at + CLOCK_SKEW:
        return report.observed_at
    return scanner
