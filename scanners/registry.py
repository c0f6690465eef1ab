"""The explicit list of formats.  Adding a format: one module, one line here, one test file."""

from __future__ import annotations

from typing import Any

from scanners.admission_review import parser as admission_review_parser
from scanners.base import ParseError, Parser, ParseResult
from scanners.cyclonedx import parser as cyclonedx_parser
from scanners.docker_bench import parser as docker_bench_parser
from scanners.falco import parser as falco_parser
from scanners.gatekeeper import parser as gatekeeper_parser
from scanners.grype import parser as grype_parser
from scanners.kube_bench import parser as kube_bench_parser
from scanners.kyverno import parser as kyverno_parser
from scanners.loader import load_document
from scanners.sarif import parser as sarif_parser
from scanners.trivy import parser as trivy_parser
from scanners.trivy_operator import parser as trivy_operator_parser

PARSERS: tuple[Parser, ...] = (
    trivy_parser,
    trivy_operator_parser,
    grype_parser,
    sarif_parser,
    cyclonedx_parser,
    kyverno_parser,
    gatekeeper_parser,
    admission_review_parser,
    falco_parser,
    kube_bench_parser,
    docker_bench_parser,
)

_BY_NAME: dict[str, Parser] = {parser.name: parser for parser in PARSERS}

#: Formats whose findings are events (aggregated, never closed by absence), as their parsers declare.
EVENT_FORMATS = frozenset(parser.name for parser in PARSERS if parser.events)
#: Formats a repeated report of which must be parsed again, as their parsers declare.
ALWAYS_PARSED = frozenset(parser.name for parser in PARSERS if not parser.repeat_skips_parse)


def format_names() -> list[str]:
    return [parser.name for parser in PARSERS]


def get_parser(name: str) -> Parser:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ParseError(f"unknown format {name!r}; known formats: {', '.join(format_names())}") from None


def detect(document: Any) -> Parser:
    """The one parser whose format the document is in; ParseError when none or several match."""
    matches = [parser for parser in PARSERS if _safe_detect(parser, document)]
    if not matches:
        raise ParseError("cannot tell the format of this report; pass --format / ?format= with one of: " + ", ".join(format_names()))
    if len(matches) > 1:
        raise ParseError("ambiguous report, it looks like " + " and ".join(p.name for p in matches) + "; pass a format")
    return matches[0]


def _safe_detect(parser: Parser, document: Any) -> bool:
    try:
        return bool(parser.detect(document))
    except Exception:  # noqa: BLE001 - detection must never raise
        return False


def choose_parser(document: Any, format_name: str | None = None) -> Parser:
    """The parser for a loaded document: the named one if the document looks like it, else the detected one.

    Cheap (detection looks at keys, not at every finding); ParseError when the format is unknown,
    ambiguous or not the declared one.
    """
    if format_name:
        parser = get_parser(format_name)
        if not _safe_detect(parser, document):
            try:
                other = detect(document).name
                raise ParseError(f"declared format {format_name!r} but the report looks like {other!r}")
            except ParseError as exc:
                if "declared format" in str(exc):
                    raise
                raise ParseError(f"not a {format_name} report") from None
        return parser
    return detect(document)


def parse_document(document: Any, format_name: str | None = None) -> tuple[Parser, ParseResult]:
    """Parse an already loaded document, detecting the format unless one is named."""
    parser = choose_parser(document, format_name)
    try:
        result = parser.parse(document)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError(f"{parser.name}: report nested too deeply") from None
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        # A parser bug must not escape as a crash; it is still the report's shape that is off.
        raise ParseError(f"{parser.name}: unexpected report structure ({type(exc).__name__}: {exc})") from exc
    return parser, result


def parse_bytes(data: bytes, format_name: str | None = None) -> tuple[Parser, ParseResult]:
    """Load and parse raw report bytes."""
    return parse_document(load_document(data), format_name)
