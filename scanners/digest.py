"""A digest of a report that ignores what changes on every run of the same scan (timestamps, run ids).

CI re-runs the same scan of the same image many times a day; Trivy, Grype and CycloneDX then write the
same report but for a few run-specific keys.  ``stable_digest`` hashes the raw bytes with the values of
those keys blanked out, without parsing the JSON, so a repeated report can be recognised before it is
parsed (dashboard/ingest/repeat.py).

Only key/value pairs are blanked: a key is a quoted string followed by a colon, which an escaped quote
inside a JSON string can never be.  They are looked for in the first and the last ``WINDOW`` bytes only,
where these formats write them (Trivy and CycloneDX at the top, Grype's descriptor at the end): searching
10 MB for four keys took 20 ms, most of a repeated report's cost.  One written elsewhere stays in the
digest, so such a report is simply never taken for a repeat.  The keys never carry a finding's identity or content in these formats.
Only plain values are blanked (a string of letters, digits and ``:.+-_ ``, a JSON number, null): whatever
such a value is, the document around it is valid JSON exactly when the other one was, so a report with the
digest of one that parsed is known to load too.
"""

from __future__ import annotations

import hashlib
import re

#: Run-specific keys: Trivy's CreatedAt and ReportID; Grype's descriptor.timestamp; CycloneDX's
#: metadata.timestamp and serialNumber (a new urn:uuid for every generated BOM).
VOLATILE_KEYS = ("CreatedAt", "ReportID", "timestamp", "serialNumber")
#: The formats whose reports differ between runs of the same scan in those keys only.
STABLE_FORMATS = frozenset({"trivy", "grype", "cyclonedx"})
#: Bytes at each end of a report searched for those keys.
WINDOW = 64 * 1024

_VALUE = re.compile(rb'\s*:\s*(?:"[0-9A-Za-z:.+\-_ ]*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|null)(?=\s*[,}\]])')


def stable_digest(data: bytes) -> str:
    """SHA-256 of ``data`` with the values of ``VOLATILE_KEYS`` in its first and last ``WINDOW`` bytes blanked out (hex)."""
    spans: list[tuple[int, int]] = []
    regions = [(0, len(data))] if len(data) <= 2 * WINDOW else [(0, WINDOW), (len(data) - WINDOW, len(data))]
    for key in VOLATILE_KEYS:
        needle = b'"' + key.encode() + b'"'
        for start, end in regions:
            position = data.find(needle, start, end)
            while position != -1:
                after = position + len(needle)
                match = _VALUE.match(data, after)
                if match is not None:
                    spans.append((after, match.end()))
                position = data.find(needle, after, end)
    digest = hashlib.sha256()
    view = memoryview(data)  # slices without copying a 50 MB report
    cursor = 0
    for start, end in sorted(spans):
        digest.update(view[cursor:start])
        digest.update(b":null")
        cursor = end
    digest.update(view[cursor:])
    return digest.hexdigest()
