"""The normalised finding and the parser interface.

Every format module in this package turns one tool's native report into a
:class:`ParseResult`.  Nothing here imports Django: the package is usable on
its own (``python -m scanners``) and is tested on real tool output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from scanners.entries import PendingFindings

if TYPE_CHECKING:
    from scanners.entries import Pending

KINDS = ("vulnerability", "misconfiguration", "secret", "policy", "runtime", "compliance")
SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
STREAMS = ("scan", "admission", "runtime")
_KIND_SET = frozenset(KINDS)
_SEVERITY_SET = frozenset(SEVERITIES)

#: Upper bounds for strings we keep; longer values are cut, never refused.
MAX_ID = 255
MAX_TITLE = 500
MAX_TEXT = 8000


class ParseError(ValueError):
    """A report that cannot be parsed.  The message says what is wrong and where."""


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a report is loaded or parsed.

    A large report becomes hundreds of thousands of containers that all stay alive, and every
    full collection walks all of them again: about a third of the CPU of a 50 MB parse.  Nothing
    a loader or parser builds is cyclic, so reference counting still frees whatever is dropped.
    The previous state is restored; when the collector is already off (nested use, another
    thread parsing), this leaves it alone.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def clean_text(value: Any, limit: int = MAX_TEXT) -> str:
    """A bounded string without NUL characters or lone surrogates ("" for None)."""
    if value.__class__ is str and len(value) <= limit and value.isascii() and "\x00" not in value:
        return value  # the common case, checked at C speed: no copy
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    if len(value) > limit:
        value = value[:limit]
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be stored in PostgreSQL or encoded as UTF-8.
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy with bounded strings and no NUL characters (for ``details``)."""
    if depth > 20:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        items = value.items() if len(value) <= 200 else list(value.items())[:200]
        if depth == 20:  # the values are one level too deep
            return {clean_text(str(key), MAX_ID): None for key, _ in items}
        out: dict[str, Any] = {}
        for key, item in items:
            if not (key.__class__ is str and len(key) <= MAX_ID and key.isascii() and "\x00" not in key):
                key = clean_text(str(key), MAX_ID)
            cls = item.__class__
            if cls is str:
                out[key] = item if len(item) <= MAX_TEXT and item.isascii() and "\x00" not in item else clean_text(item)
            elif item is None or cls is int or cls is bool:
                out[key] = item
            else:
                out[key] = clean_json(item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [clean_json(v, depth + 1) for v in (value if len(value) <= 200 else value[:200])]
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return clean_text(str(value))


def clean_cvss(value: Any) -> float | None:
    """A CVSS base score in 0..10, or None for anything else (NaN, -1, 11, "high")."""
    if value.__class__ is float and 0 <= value <= 10:  # the common case (NaN fails every comparison)
        return round(value, 1)
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if score != score or score < 0 or score > 10:  # NaN fails every comparison
        return None
    return round(score, 1)


_SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "low",
    "info": "info",
    "informational": "info",
    "information": "info",
    "none": "info",
    "unknown": "unknown",
    "": "unknown",
}


_SEVERITY_EXACT = {form: word for key, word in _SEVERITY_WORDS.items() for form in (key, key.upper(), key.title())}


def normalise_severity(value: Any) -> str:
    """Map a tool's severity word onto Vigil's six words (unknown for anything odd)."""
    if not isinstance(value, str):
        return "unknown"
    word = _SEVERITY_EXACT.get(value)  # "HIGH", "high", "High": no strip, no lower
    if word is not None:
        return word
    return _SEVERITY_WORDS.get(value.strip().lower(), "unknown")


def severity_from_score(score: float | None) -> str:
    """CVSS-style thresholds: >= 9 critical, >= 7 high, >= 4 medium, > 0 low, 0 info."""
    if score is None:
        return "unknown"
    if score >= 9:
        return "critical"
    if score >= 7:
        return "high"
    if score >= 4:
        return "medium"
    if score > 0:
        return "low"
    return "info"


_CWE_RE = re.compile(r"CWE-(\d{1,6})", re.IGNORECASE)


def normalise_cwes(values: Iterable[Any] | None) -> list[str]:
    """CWE ids as ``CWE-<n>``, deduplicated, in input order."""
    out: list[str] = []
    for value in values or ():
        if isinstance(value, int) and not isinstance(value, bool):
            text = f"CWE-{value}"
        elif value.__class__ is str and 4 < len(value) <= 10 and value.startswith("CWE-") and value.isascii() and value[4:].isdigit():
            text = f"CWE-{int(value[4:])}"  # the usual "CWE-79": what the search below finds, without it
        elif isinstance(value, str):
            match = _CWE_RE.search(value)
            text = f"CWE-{int(match.group(1))}" if match else (f"CWE-{int(value)}" if value.isdigit() and len(value) < 7 else "")
        else:
            text = ""
        if text and text not in out:
            out.append(text)
    return out


def clean_references(values: Iterable[Any] | None, limit: int = 50) -> list[str]:
    out: list[str] = []
    for value in values or ():
        if isinstance(value, str):
            text = value.strip()
            if text:
                text = clean_text(text, 2000)
                if text not in out:
                    out.append(text)
        if len(out) >= limit:
            break
    return out


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """An image as a repository plus an occurrence (tag and/or digest)."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``registry/repository``: the identity of the image (no tag, no digest)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @classmethod
    def parse(cls, reference: str) -> ImageRef | None:
        """Parse ``[registry/]repository[:tag][@digest]`` as Docker does.

        ``alpine`` becomes ``docker.io/library/alpine``; returns None for text
        that cannot be an image reference (empty, spaces, tarball paths).
        """
        ref = clean_text(reference, MAX_ID * 2).strip()
        if not ref or any(ch.isspace() for ch in ref):
            return None
        digest = ""
        if "@" in ref:
            ref, digest = ref.split("@", 1)
            if not re.fullmatch(r"[A-Za-z0-9_+.-]+:[A-Fa-f0-9]{32,}", digest):
                return None
        tag = ""
        last = ref.rsplit("/", 1)[-1]
        if ":" in last:
            ref, tag = ref.rsplit(":", 1)
        if not ref or ref.endswith("/") or ref.startswith("/"):
            return None
        parts = ref.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry, repository = parts[0], "/".join(parts[1:])
        else:
            registry, repository = "docker.io", ref
        if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            registry = "docker.io"
            if "/" not in repository:
                repository = f"library/{repository}"
        if not re.fullmatch(r"[a-z0-9]+(?:[._/-][a-z0-9]+|__[a-z0-9]+)*", repository.lower()):
            return None
        return cls(registry=registry.lower(), repository=repository.lower(), tag=clean_text(tag, 128), digest=digest.lower())

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PackageRef:
    name: str
    version: str = ""
    fixed_version: str = ""
    type: str = ""
    path: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ResourceRef:
    """A Kubernetes object (or a host, for bench tools: kind "Node"/"Host")."""

    cluster: str = ""
    namespace: str = ""
    kind: str = ""
    name: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Finding:
    """One normalised finding.  ``fingerprint`` is its stable identity."""

    kind: str
    source: str
    rule_id: str
    title: str
    severity: str
    fingerprint: str
    image: ImageRef | None = None
    package: PackageRef | None = None
    resource: ResourceRef | None = None
    cvss: float | None = None
    cwe: list[str] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)
    occurred_at: str | None = None
    description: str = ""
    #: A hint from the report about status, e.g. VEX ``not_affected``; never applied silently.
    status_hint: str = ""
    #: Format-specific details worth keeping (fix state, match type, enforcement action, ...).
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The digest of the report entry this finding was normalised from (``scanners.entries``): "" when the
    #: parser offers none, or when the finding merges several entries (its content is then not one entry's).
    entry_hash: str = ""
    #: True when the parser built every field from already cleaned values, within the limits below
    #: (``opt_str`` / ``clean_text`` / ``clean_references`` / ``normalise_cwes`` / ``clean_cvss``, and
    #: ``details`` as :func:`clean_json` would return it): nothing is cleaned a second time.
    cleaned: dataclasses.InitVar[bool] = False

    def __post_init__(self, cleaned: bool) -> None:
        if self.kind not in _KIND_SET:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if self.severity not in _SEVERITY_SET:
            raise ValueError(f"unknown severity {self.severity!r}")
        if cleaned:
            return
        self.rule_id = clean_text(self.rule_id, MAX_ID)
        self.title = clean_text(self.title, MAX_TITLE)
        self.description = clean_text(self.description, MAX_TEXT)
        self.cvss = clean_cvss(self.cvss)
        self.status_hint = clean_text(self.status_hint, 32)
        self.references = [clean_text(r, 2000) for r in self.references]
        self.cwe = [clean_text(c, 32) for c in self.cwe]
        self.details = clean_json(self.details)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "fingerprint": self.fingerprint,
            "image": self.image.to_dict() if self.image else None,
            "package": self.package.to_dict() if self.package else None,
            "resource": self.resource.to_dict() if self.resource else None,
            "cvss": self.cvss,
            "cwe": list(self.cwe),
            "references": list(self.references),
            "occurred_at": self.occurred_at,
            "description": self.description,
            "status_hint": self.status_hint,
            "details": self.details,
        }


@dataclasses.dataclass
class ParseResult:
    """Everything a parser learned from one report."""

    findings: PendingFindings = PendingFindings()  # noqa: RUF009 - a descriptor, not a shared default
    #: The image the whole report is about, when there is one.
    artifact: ImageRef | None = None
    #: Resources the report evaluated (policy reports): lifecycle closes only within these.
    evaluated: list[ResourceRef] = dataclasses.field(default_factory=list)
    #: (resource, policy) pairs a policy report evaluated, pass and skip included.  A ``None``
    #: resource means the report lists every violation of that policy (e.g. a Gatekeeper constraint).
    #: Closing by absence then stays inside exactly these pairs; the policy of a finding is ``details["policy"]``.
    evaluated_policies: list[tuple[ResourceRef | None, str]] = dataclasses.field(default_factory=list)
    #: Policies whose results the report truncated: nothing of theirs is closed by absence.
    incomplete_policies: list[str] = dataclasses.field(default_factory=list)
    #: Fingerprints the report evaluated again and found passing (a lone policy result): fixed if open.
    resolved: list[str] = dataclasses.field(default_factory=list)
    #: Labels the report carries (OCI image labels, Kubernetes labels), for ownership rules.
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    #: SBOM components (name, version, purl, type), kept for later use.
    components: list[dict[str, str]] = dataclasses.field(default_factory=list)
    #: When the tool says it produced the report (its own clock, aware, UTC), when the format says; None otherwise.
    observed_at: dt.datetime | None = None

    @classmethod
    def deferred(cls, pending: Pending, **fields: Any) -> ParseResult:
        """A result whose findings are ``pending``'s entries, read and checked but not normalised yet."""
        result = cls(findings=[], **fields)
        result.__dict__["_pending"] = pending
        return result

    @property
    def pending(self) -> Pending | None:
        """The entries not normalised yet (None once ``findings`` was read, or when the parser normalised them all)."""
        pending: Pending | None = self.__dict__.get("_pending")
        return pending


class Parser(Protocol):
    """One input format: a name, a stream, content detection and parsing."""

    name: str
    #: "scan" (snapshots), "admission" (policy reports and denials) or "runtime" (events).
    stream: str
    #: Facts of the format the ingestion relies on, declared here rather than listed in the dashboard:
    #: an event stream (each report adds occurrences, never a complete snapshot, so it closes nothing) ...
    events: bool
    #: ... and whether a repeat of a report (the same content, run timestamps aside) may be recorded without parsing.
    repeat_skips_parse: bool

    def detect(self, document: Any) -> bool:
        """True when the loaded document is in this format.  Must never raise."""
        ...

    def parse(self, document: Any) -> ParseResult:
        """Normalise the document; raise :class:`ParseError` on anything malformed."""
        ...


# ---------------------------------------------------------------------------
# Small typed accessors that turn malformed input into ParseError with a path.


def expect_dict(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{where}: expected an object, got {type_name(value)}")
    return value


def expect_list(value: Any, where: str, *, allow_none: bool = True) -> list[Any]:
    if value is None and allow_none:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{where}: expected a list, got {type_name(value)}")
    return value


def opt_str(mapping: Mapping[str, Any], key: str, where: str, limit: int = MAX_TEXT) -> str:
    """An optional string field ("" when absent or null); other types are an error."""
    value = mapping.get(key)
    if value.__class__ is str and len(value) <= limit and value.isascii() and "\x00" not in value:
        return value  # the common case: what clean_text would return, without the call
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ParseError(f"{where}: {key} is not a string")
    return clean_text(value, limit)


def req_str(mapping: Mapping[str, Any], key: str, where: str, limit: int = MAX_ID) -> str:
    """A required, non-empty string field."""
    value = mapping.get(key)
    if value is None or value == "":
        raise ParseError(f"{where}: missing {key}")
    if not isinstance(value, str):
        raise ParseError(f"{where}: {key} is not a string")
    return clean_text(value, limit)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
