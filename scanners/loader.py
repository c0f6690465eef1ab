"""Load a report's raw bytes into Python objects, refusing hostile input.

JSON (one document or JSON lines) and YAML (one or more documents) are
accepted.  Everything that could hurt the process is refused with a
:class:`ParseError` that says what is wrong: bytes that are not UTF-8, XML,
duplicate keys, absurd numbers, NaN, nesting deeper than Python can follow,
YAML aliases (the "billion laughs" bomb).

JSON is decoded by msgspec (compiled), and the checks it does not make are made around it at C speed
(``_fast_json``): a document that passes them is exactly what the standard library would have returned.
Whatever fails or is in doubt there is loaded again by the standard library with a hook for each check
(``_json_loads``), which refuses it with the precise message, or accepts it as it always did.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import yaml

from scanners.base import ParseError, gc_paused

MAX_INT_DIGITS = 40


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # at C speed; a key given twice shows as fewer entries than pairs
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ParseError(f"duplicate key {key[:80]!r} in a JSON object")
            seen.add(key)
    return result


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ParseError(f"number with {len(text)} digits is too long")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 400:
        raise ParseError(f"number with {len(text)} characters is too long")
    return float(text)


def _parse_constant(text: str) -> float:
    raise ParseError(f"{text} is not valid JSON")


def _json_loads(text: str) -> Any:
    return json.loads(
        text,
        object_pairs_hook=_no_duplicates,
        parse_int=_parse_int,
        parse_float=_parse_float,
        parse_constant=_parse_constant,
    )


_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
#: Every digit becomes "0", so one ``bytes.find`` spots a run of more digits than a number may have.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TOO_MANY_DIGITS = b"0" * (MAX_INT_DIGITS + 1)
#: The input is scanned in pieces of this size (``_colons_unless_long_digits``).
_PIECE = 256 * 1024
#: Lists longer than this are encoded again in slices of it (``_colons``): counting never holds a copy of a large report.
_SLICE = 256
#: Objects and lists this near the top are counted member by member (a report's few large lists sit there).
_SPLIT_DEPTH = 4


def _fast_json(data: bytes) -> Any:
    """The JSON document in ``data``, or ``None`` when it must go the standard library's way (``_json_loads``).

    msgspec refuses all the standard library refuses (NaN, Infinity, control characters, invalid escapes,
    lone surrogates, invalid UTF-8, nesting past the recursion limit), and more; what it accepts and the
    standard library path would not is checked here:

    - numbers: a run of more than MAX_INT_DIGITS digits anywhere sends the document the slow way (a float longer
      than 400 characters has one too);
    - duplicate keys (msgspec keeps the last one): each member has one colon after its key and strings keep
      theirs, so the document encoded again has fewer colons than the input exactly when a key was given twice.
      The input's ``\\u003a`` escapes are colons once encoded: they are counted in, so a miscount (an escaped
      backslash before ``u003a``) only ever sends a document the slow way.
    """
    colons = _colons_unless_long_digits(data)
    if colons is None:
        return None
    try:
        document = _DECODER.decode(data)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # invalid UTF-8 is a UnicodeDecodeError
        return None
    if b"\\" in data and b"\\u003" in data:  # one byte is found far faster than five
        colons += data.count(b"\\u003a") + data.count(b"\\u003A")
    if _colons(document, 0) != colons:
        return None
    return document


def _colons_unless_long_digits(data: bytes) -> int | None:
    """The colons in ``data``; None if it has a run of more than MAX_INT_DIGITS digits.  In pieces a cache holds
    (each one reaching into the next by as many bytes as a run that may cross the boundary needs)."""
    colons = 0
    for start in range(0, len(data), _PIECE):
        piece = data[start : start + _PIECE + MAX_INT_DIGITS].translate(_DIGITS_AS_ZERO)
        if piece.find(_TOO_MANY_DIGITS) >= 0:
            return None
        colons += piece.count(b":", 0, _PIECE)
    return colons


def _colons(node: Any, depth: int) -> int:
    """The colons in ``node`` encoded as JSON; near the top, counted member by member and on slices of long lists."""
    if depth < _SPLIT_DEPTH:
        if type(node) is dict:
            keys = sum(key.count(":") for key in node)
            return len(node) + keys + sum(_colons(value, depth + 1) for value in node.values())
        if type(node) is list:
            if len(node) > _SLICE:
                return sum(_colons(node[start : start + _SLICE], _SPLIT_DEPTH) for start in range(0, len(node), _SLICE))
            return sum(_colons(item, depth + 1) for item in node)
    return _ENCODER.encode(node).count(b":")


class _SafeNoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (exponential expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ParseError(f"YAML aliases are not accepted (line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)


def _construct_int(loader: _SafeNoAliasLoader, node: yaml.ScalarNode) -> Any:
    """YAML integers get the same digit limit as JSON ones: Python refuses to convert more than 4300 digits
    (a ValueError no caller expects), and no field of any report needs more than a few."""
    text = str(loader.construct_scalar(node))
    digits = len(text.replace("_", "").lstrip("+-"))
    if digits > MAX_INT_DIGITS:
        raise ParseError(f"number with {digits} digits is too long (line {node.start_mark.line + 1})")
    return loader.construct_yaml_int(node)


_SafeNoAliasLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _yaml_load_all(text: str) -> list[Any]:
    try:
        return [doc for doc in yaml.load_all(text, Loader=_SafeNoAliasLoader) if doc is not None]
    except ParseError:
        raise
    except RecursionError as exc:
        raise ParseError("YAML nested too deeply") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ParseError(f"not valid JSON or YAML: {problem}{where}") from exc


_BOM = b"\xef\xbb\xbf"


def decode(data: bytes) -> str:
    if data.startswith(_BOM):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8: invalid byte at offset {exc.start}") from exc
    if "\x00" in text:
        raise ParseError(f"NUL character at offset {text.index(chr(0))}")
    return text


_SURROGATE = re.compile(r"(?<!\\)\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(?<!\\)\\u[dD][c-fC-F][0-9a-fA-F]{2}")


#: Every lone surrogate escape starts like this: a cheap search for it spares most reports the full pattern.
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")

_SURROGATE_HINT_BYTES = re.compile(_SURROGATE_HINT.pattern.encode())
#: A document msgspec may decode starts like this (JSON's own whitespace only: str.lstrip strips more).
_JSON_START = re.compile(rb"[ \t\r\n]*[\[{]")

_BARE_VALUE = re.compile(r'(?:-?[0-9]|"|(?:null|true|false)\s*$)')


def _check_escapes(text: str) -> None:
    """Refuse lone UTF-16 surrogates: they are not text, and no database can store them.

    Escaped NUL characters (``\\u0000``) are accepted: real Grype output contains them.
    They are stripped from every string kept (``base.clean_text`` / ``base.clean_json``).
    """
    for match in _SURROGATE.finditer(text):
        if len(match.group(0)) == 6:
            raise ParseError(f"lone surrogate {match.group(0)} in a string at offset {match.start()}")


def load_document(data: bytes) -> Any:
    """Parse raw report bytes into a document (dict, or list for arrays / JSON lines / multi-doc YAML)."""
    with gc_paused():
        return _load(data)


def _load(data: bytes) -> Any:
    body = data[3:] if data.startswith(_BOM) else data
    if _JSON_START.match(body) and not (b"\\" in body and _SURROGATE_HINT_BYTES.search(body)):
        document = _fast_json(body)
        if document is not None:
            return document
    return _load_slowly(data)


def _load_slowly(data: bytes) -> Any:
    """Every check in Python, with the message that says what is wrong; JSON the standard library's way."""
    text = decode(data)
    stripped = text.lstrip()
    if not stripped:
        raise ParseError("empty report")
    first = stripped[0]
    if first == "<":
        raise ParseError("XML is not accepted: post the tool's JSON output")
    if _BARE_VALUE.match(stripped):
        raise ParseError("not a report: expected an object or a list, got a bare JSON value")
    if first in "{[":
        if "\\" in text and _SURROGATE_HINT.search(text):  # both far cheaper than ``"\\u" in text``
            _check_escapes(text)
        try:
            return _json_loads(text)
        except RecursionError as exc:
            raise ParseError("JSON nested too deeply") from exc
        except json.JSONDecodeError as exc:
            if first == "{" and exc.msg == "Extra data":
                return _json_lines(text)
            raise ParseError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
        except ValueError as exc:  # int() digit limit and similar
            if isinstance(exc, ParseError):
                raise
            raise ParseError(f"invalid JSON: {exc}") from exc
    documents = _yaml_load_all(text)
    if not documents:
        raise ParseError("empty report")
    if len(documents) == 1:
        if not isinstance(documents[0], (dict, list)):
            raise ParseError("not a JSON or YAML document: expected an object or a list")
        return documents[0]
    return documents


def _json_lines(text: str) -> list[Any]:
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        document = _fast_json(line.encode())
        if document is not None:
            documents.append(document)
            continue
        try:
            documents.append(_json_loads(line))
        except RecursionError as exc:
            raise ParseError(f"line {number}: JSON nested too deeply") from exc
        except json.JSONDecodeError as exc:
            raise ParseError(f"invalid JSON lines: line {number}: {exc.msg} at column {exc.colno}") from exc
    return documents
