"""Recognise a re-scan's unchanged entries before they are normalised, so that a re-scan costs what changed.

A parser that offers it (Trivy and Grype vulnerabilities: ``ParseResult.pending``, scanners/entries.py) has read
and checked every entry of the report and hashed it, without normalising it.  Every finding keeps the digest of
the entry its content was normalised from (``Finding.entry_hash``, ``write.stored_digest``).  Here, inside the
report's transaction and with its scopes locked, the digests stored in those scopes are read, and an entry whose
digest is among them becomes an item naming that stored finding, not normalised: the apply step then treats it as
it treats a finding whose content did not change (counted unchanged, reopened if fixed, "last seen" moved at most
once per LAST_SEEN_STEP, an occurrence recorded for a new tag).  Every other entry is normalised and applied as
before, so the outcome is the full path's (tests/dashboard/test_unchanged_entries.py compares the end states of
series of re-scans applied both ways).

A digest is looked up in the scope its entry belongs to, so a stored digest names the fingerprint of its own scope
only; it covers the entry's fields, its context in the report, the override and cluster the report adds, and the
code that turns it into a row (the parsers' and write.py's source), so an unchanged digest is an unchanged row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from dashboard.ingest.scopes import covered_scopes, lock_scopes, scope_key
from dashboard.ingest.write import Item, add_item, overridden, read_chunks, stored_digest
from dashboard.models import Finding, Report
from scanners.base import Finding as ParsedFinding
from scanners.base import ImageRef, ParseResult, ResourceRef
from scanners.entries import Entry, Pending
from scanners.fingerprint import make_fingerprint

#: Off only where a test compares the end state with and without it.
ENABLED = True


def applies(result: ParseResult) -> bool:
    """Whether the report's entries are still pending (the parser offers digests and nothing normalised them yet)."""
    return ENABLED and result.pending is not None


@dataclasses.dataclass(frozen=True, slots=True)
class _Placed:
    """Where an entry lands in this report: its image (the override, when it applies), scope and stored digest."""

    image: ImageRef | None
    scope_key: str
    digest: str
    override: str


@dataclasses.dataclass
class _Report:
    """What placing an entry depends on: the report's own facts."""

    report: Report
    source: str
    stream: str
    result: ParseResult
    override: ImageRef | None

    def place(self, entry: Entry, scopes: dict[tuple[ImageRef | None, ResourceRef | None], str]) -> _Placed:
        applied = overridden(entry.image, self.override, self.result.artifact)
        image = self.override if applied else entry.image
        where = (image, entry.resource)
        key = scopes.get(where)
        if key is None:
            key = scopes[where] = scope_key(
                stream=self.stream, source=self.source, image=image, resource=entry.resource, team=self.report.team
            )
        name = self.override.name if applied and self.override is not None else ""
        return _Placed(image, key, stored_digest(entry.digest, override=name, cluster=self.report.cluster), name)

    def identity(self, finding: ParsedFinding) -> str:
        """A normalised finding's fingerprint as it is stored (the override's, when it applies)."""
        if self.override is not None and overridden(finding.image, self.override, self.result.artifact):
            return make_fingerprint("image-override", self.override.name, finding.fingerprint)
        return finding.fingerprint


def pending_items(
    *, report: Report, source: str, stream: str, result: ParseResult, override: ImageRef | None
) -> tuple[dict[str, Item], set[str], set[str]]:
    """The report's items (by fingerprint), the scopes it covers, and the scopes locked here (all of them).

    The scopes are locked before the stored digests are read, so what is recognised as unchanged is what the
    apply step then finds stored.
    """
    pending = result.pending
    if pending is None:
        raise ValueError("the report's entries were normalised already: apply.report_scopes takes them")
    facts = _Report(report, source, stream, result, override)
    scope_of: dict[tuple[ImageRef | None, ResourceRef | None], str] = {}
    placed = [facts.place(entry, scope_of) for entry in pending.entries]
    keys = set(scope_of.values())
    artifact = override or result.artifact
    scopes = covered_scopes(
        team=report.team, source=source, stream=stream, result=result, artifact=artifact, item_scopes=((key, "") for key in keys)
    )
    locked = scopes | keys
    lock_scopes(locked)
    known = _known(keys)
    by_digest = {
        entry.digest: fingerprint
        for entry, where in zip(pending.entries, placed, strict=True)
        if where.digest and (fingerprint := known.get((where.scope_key, where.digest))) is not None
    }
    items = _items(facts, pending, placed, by_digest)
    return items, scopes, locked


def _known(keys: Iterable[str]) -> dict[tuple[str, str], str]:
    """The fingerprints of the findings stored in these scopes, by (scope, stored digest)."""
    known: dict[tuple[str, str], str] = {}
    for chunk in read_chunks(sorted(keys)):
        rows = Finding.objects.filter(scope_key__any=chunk).exclude(entry_hash="").values_list("scope_key", "entry_hash", "fingerprint")
        known.update(((key, digest), fingerprint) for key, digest, fingerprint in rows)
    return known


def _items(facts: _Report, pending: Pending, placed: list[_Placed], by_digest: dict[str, str]) -> dict[str, Item]:
    """Items in report order: the unchanged entries as they are, the others normalised (``write.add_item``)."""
    where = {id(entry): spot for entry, spot in zip(pending.entries, placed, strict=True)}
    result = facts.result
    policy_level = {policy for resource, policy in result.evaluated_policies if resource is None}
    items: dict[str, Item] = {}
    for found in pending.resolve(by_digest, facts.identity).in_order:
        if isinstance(found, tuple):
            entry, fingerprint = found
            spot = where[id(entry)]
            items[fingerprint] = Item(
                fingerprint=fingerprint, image=spot.image, scope_key=spot.scope_key, entry=entry, entry_hash=spot.digest
            )
            continue
        add_item(
            items,
            found,
            team=facts.report.team,
            source=facts.source,
            stream=facts.stream,
            result=result,
            override=facts.override,
            cluster=facts.report.cluster,
            policy_level=policy_level,
        )
    return items
