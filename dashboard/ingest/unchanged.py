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
from dashboard.ingest.write import Item, Stored, add_item, overridden, read_chunks, stored_digest, stored_rows
from dashboard.models import Finding, Report
from scanners.base import Finding as ParsedFinding
from scanners.base import ImageRef, ParseResult
from scanners.entries import Entry, Pending
from scanners.fingerprint import make_fingerprint

#: Off only where a test compares the end state with and without it.
ENABLED = True


def applies(result: ParseResult) -> bool:
    """Whether the report's entries are still pending (the parser offers digests and nothing normalised them yet)."""
    return ENABLED and result.pending is not None


@dataclasses.dataclass(slots=True)
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

    def place(self, entry: Entry, spots: dict[tuple[int, int], tuple[ImageRef | None, str, str]]) -> _Placed:
        # The entries of one result share their image and resource objects: placed once per pair of them.
        spot = spots.get((id(entry.image), id(entry.resource)))
        if spot is None:
            applied = overridden(entry.image, self.override, self.result.artifact)
            image = self.override if applied else entry.image
            key = scope_key(stream=self.stream, source=self.source, image=image, resource=entry.resource, team=self.report.team)
            name = self.override.name if applied and self.override is not None else ""
            spot = spots[id(entry.image), id(entry.resource)] = (image, key, name)
        image, key, name = spot
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
    spots: dict[tuple[int, int], tuple[ImageRef | None, str, str]] = {}
    placed = [facts.place(entry, spots) for entry in pending.entries]
    keys = {key for _, key, _ in spots.values()}
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
        if where.digest and (fingerprint := _fingerprint(known.get((where.scope_key, where.digest)))) is not None
    }
    items = _items(facts, pending, placed, by_digest)
    rows = dict(known.values())
    for fingerprint, item in items.items():
        item.stored = rows.get(fingerprint)
    return items, scopes, locked


def _fingerprint(known: tuple[str, Stored] | None) -> str | None:
    return known[0] if known is not None else None


def _known(keys: Iterable[str]) -> dict[tuple[str, str], tuple[str, Stored]]:
    """The findings stored in these scopes with a digest, by (scope, stored digest): read once, for recognising the
    unchanged entries and for the apply step (``Item.stored``)."""
    known: dict[tuple[str, str], tuple[str, Stored]] = {}
    for chunk in read_chunks(sorted(keys)):
        rows = stored_rows(Finding.objects.filter(scope_key__any=chunk).exclude(entry_hash=""))
        known.update(((row.scope_key, row.entry_hash), (fingerprint, row)) for fingerprint, row in rows.items())
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
