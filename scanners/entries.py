"""Entries of a report read and checked, normalised only when needed: what makes a re-scan cost what changed.

A parser that offers this (Trivy and Grype vulnerabilities) reads each entry of a report in two steps: the
first reads and checks every field the finding is made of (everything that can raise :class:`ParseError`
happens there, at parse time, for every entry); the second builds the normalised finding from those fields and
never raises.  Between the two, the fields and the context the finding depends on (image name, target, class,
resource) are hashed into the entry's ``digest``.

The ingest stores each finding's digest; on a re-scan it gives :meth:`Pending.resolve` the digests it knows
(digest -> fingerprint) in the report's scopes, and an entry with a known digest is not normalised at all: it is
the stored finding, unchanged.  Equal digests mean equal findings because the digest covers every input of the
build step and is salted with :data:`CODE_VERSION`, a hash of this package's source, so a parser or normaliser
change (a new field, another limit, another fingerprint) makes every stored digest unknown: the first scan of
each scope after a deploy takes the full path once and stores the new digests.  No version number to bump.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:  # base.py imports this module (ParseResult.findings is a PendingFindings)
    from scanners.base import Finding, ImageRef, ParseResult, ResourceRef


def _code_version() -> bytes:
    """A hash of every module of this package (sorted by name): the salt of every digest (see the module docstring)."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return b""  # source not readable: no digests are offered, every entry is normalised
    return digest.digest()


CODE_VERSION = _code_version()


def entry_digest(parser: str, fields: tuple[Any, ...]) -> str:
    """The digest of one entry's fields (with its context), or "" when they cannot be hashed.

    ``marshal`` (format 2, no back-references) serialises the fields, as loaded JSON, about six times faster than
    ``json.dumps``; the same values always give the same bytes, and different values never do.  Anything
    marshal refuses (a YAML date) gives "": the entry is then always normalised.
    """
    if not CODE_VERSION:
        return ""
    try:
        data = marshal.dumps((parser, CODE_VERSION, fields), 2)
    except ValueError:
        return ""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclasses.dataclass(slots=True)
class Entry:
    """One entry of a report, read and checked, with what its finding will be about.  Never a policy result."""

    #: "" when the parser offers no digest for this entry (it is then always normalised).
    digest: str
    image: ImageRef | None
    resource: ResourceRef | None
    #: Builds the normalised finding from the fields read (None: the entry is not a finding); never raises.
    build: Callable[[], Finding | None]
    #: What the parser's ``merge`` is told when a later entry names the same fingerprint.
    place: Any = None


@dataclasses.dataclass
class Resolved:
    """Pending entries resolved against the known digests."""

    #: The normalised findings of the entries not known, merged as a full parse merges them, and the known entries
    #: with the fingerprint of their stored finding (not normalised), in report order.
    in_order: list[Finding | tuple[Entry, str]]

    @property
    def findings(self) -> list[Finding]:
        return [found for found in self.in_order if not isinstance(found, tuple)]

    @property
    def unchanged(self) -> list[tuple[Entry, str]]:
        return [found for found in self.in_order if isinstance(found, tuple)]


#: Keeps one finding per fingerprint: ``merge(findings, finding, place)`` adds ``finding`` or folds it into the first.
Merge = Callable[[dict[str, "Finding"], "Finding", Any], None]


def _own(finding: Finding) -> str:
    return finding.fingerprint


@dataclasses.dataclass
class Pending:
    """A report's entries in report order, and how the parser merges two that name the same fingerprint."""

    entries: list[Entry]
    merge: Merge

    def resolve(self, known: Mapping[str, str], identity: Callable[[Finding], str] = _own) -> Resolved:
        """Normalise the entries whose digest is not in ``known`` (digest -> stored fingerprint); leave the others.

        ``identity`` gives a normalised finding's fingerprint as the stored ones are (the caller may rewrite them,
        e.g. for an image override).  A known entry whose fingerprint another entry of the report also names is
        normalised after all: the merged finding's content is not one entry's.  With ``known`` empty this is
        exactly the full parse.
        """
        built: dict[int, Finding | None] = {}
        named: Counter[str] = Counter()
        for index, entry in enumerate(self.entries):
            fingerprint = known.get(entry.digest) if entry.digest else None
            if fingerprint is None:
                finding = built[index] = entry.build()
                if finding is None:
                    continue
                fingerprint = identity(finding)
            named[fingerprint] += 1
        findings: dict[str, Finding] = {}
        in_order: list[Finding | tuple[Entry, str]] = []
        for index, entry in enumerate(self.entries):
            if index in built:
                finding = built[index]
            elif named[known[entry.digest]] == 1:
                in_order.append((entry, known[entry.digest]))
                continue
            else:
                finding = entry.build()
            if finding is None:
                continue
            first = finding.fingerprint not in findings
            self.merge(findings, finding, entry.place)
            if first:
                in_order.append(findings[finding.fingerprint])
        for finding in findings.values():
            if named[identity(finding)] > 1:
                finding.entry_hash = ""  # several entries made it
        return Resolved(in_order)


class PendingFindings:
    """``ParseResult.findings``: the list given, or, for a result with pending entries (``ParseResult.deferred``),
    every entry normalised the first time it is read.  The ingest's apply step reads ``pending`` instead and
    normalises only the entries it does not recognise as unchanged; every other reader sees a plain list."""

    @overload
    def __get__(self, result: None, owner: Any) -> Any: ...
    @overload
    def __get__(self, result: ParseResult, owner: Any) -> list[Finding]: ...
    def __get__(self, result: ParseResult | None, owner: Any = None) -> Any:
        if result is None:
            raise AttributeError("findings")  # dataclasses asks the class for a default: there is none
        state = result.__dict__
        pending = state.get("_pending")
        if pending is not None:
            from scanners.base import gc_paused  # here: base imports this module

            with gc_paused():  # as the parse itself: the findings built stay alive, nothing they make is cyclic
                state["_findings"], state["_pending"] = pending.resolve({}).findings, None
        return state["_findings"]

    def __set__(self, result: ParseResult, value: list[Finding]) -> None:
        result.__dict__["_findings"] = value
        result.__dict__["_pending"] = None
