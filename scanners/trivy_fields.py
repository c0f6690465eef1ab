"""Reading Trivy JSON: the field readers every part of a Trivy report shares (timestamps, images, checked
strings, sections) and the place a result sits in (``Scope``).  Each raises :class:`ParseError` with the path of
what is wrong; none looks at more than its field."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

from scanners.base import ImageRef, ParseError, ResourceRef, clean_text, expect_dict, expect_list, normalise_severity, opt_str
from scanners.fingerprint import workload_name

#: ``repo:tag (debian 10.4)``: the target of an image's OS-package result.
_IMAGE_TARGET = re.compile(r"^(?P<ref>\S+) \((?P<os>[^()]*)\)$")
_TARBALL = re.compile(r"\.(?:tar|tar\.gz|tgz|tar\.zst|oci)$", re.IGNORECASE)


def iso_timestamp(value: Any) -> str | None:
    """An RFC 3339 / ISO 8601 timestamp normalised to ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`` (None if unusable).

    Nanosecond fractions (Go, Falco) are cut to microseconds; a naive time is taken as UTC.
    """
    if not isinstance(value, str):
        return None
    if len(value) > 64:  # never a timestamp worth caching: keep hostile text out of the cache
        return _iso_text.__wrapped__(value)
    return _iso_text(value)


_ISO_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # reports repeat the same few dates thousands of times
def _iso_text(value: str) -> str | None:
    text = value.strip()
    match = _ISO_TIMESTAMP.fullmatch(text)
    if not match:
        return None
    base, fraction, zone = match.groups()
    if fraction:
        base += "." + fraction[:6].ljust(6, "0")
    if not zone or zone.upper() == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        parsed = dt.datetime.fromisoformat(base.replace(" ", "T") + zone)
    except ValueError:
        return None
    return parsed.isoformat()


def image_from_refs(tags: list[Any], digests: list[Any], *fallbacks: Any) -> ImageRef | None:
    """The image named by ``RepoTags`` / ``RepoDigests`` (tag and digest merged), else the first parseable fallback."""
    tagged = next((ref for ref in (parse_image(t) for t in tags) if ref is not None), None)
    digested = [ref for ref in (parse_image(d) for d in digests) if ref is not None and ref.digest]
    if tagged is not None:
        same = next((ref for ref in digested if ref.name == tagged.name), None)
        if same is not None and not tagged.digest:
            return ImageRef(tagged.registry, tagged.repository, tagged.tag, same.digest)
        return tagged
    if digested:
        return digested[0]
    for fallback in fallbacks:
        ref = parse_image(fallback)
        if ref is not None:
            return ref
    return None


def parse_image(value: Any) -> ImageRef | None:
    if not isinstance(value, str) or not value.strip() or _TARBALL.search(value.strip()):
        return None
    return ImageRef.parse(value)


def image_from_target(target: Any) -> ImageRef | None:
    """The image in an OS-package target such as ``docker.io/redis:6.0.5 (debian 10.4)``."""
    if not isinstance(target, str):
        return None
    match = _IMAGE_TARGET.match(target.strip())
    return parse_image(match.group("ref")) if match else None


def strings(value: Any, where: str, key: str) -> list[str]:
    """A list of strings (the list itself when it is one); anything else there is an error."""
    if value is None:
        return []
    if value.__class__ is list:
        for item in value:
            if item.__class__ is not str:
                break
        else:
            return value  # the common case, all strings: callers only read the list
    items = expect_list(value, f"{where}.{key}")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ParseError(f"{where}.{key}[{index}]: expected a string, got {type(item).__name__}")
        out.append(item)
    return out


def clean_strings(value: Any, where: str, key: str) -> list[str]:
    """A list of strings as ``clean_json`` keeps it in ``details`` (at most 200, each cleaned)."""
    items = strings(value, where, key)
    return [clean_text(item) for item in items[:200]] if items else []


def severity_word(mapping: Mapping[str, Any], key: str, where: str) -> str:
    """A severity field normalised to Vigil's words; a number or object there is an error, not "unknown"."""
    value = mapping.get(key)
    if value is not None and not isinstance(value, str):
        raise ParseError(f"{where}: {key} is not a string")
    return normalise_severity(value or "")


def line_number(mapping: Mapping[str, Any], key: str, where: str) -> int | None:
    """An optional line number; a string or a boolean there is an error."""
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{where}: {key} is not a number")
    return value


def section(mapping: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """An optional object field ({} when absent or empty); ``where`` for the error is only built on error."""
    value = mapping.get(key) or {}
    if not isinstance(value, dict):
        expect_dict(value, f"{where}.{key}")  # raises
    return value


def section_str(block: Mapping[str, Any], key: str, where: str, section_name: str, limit: int) -> str:
    """``opt_str`` of a field of a section, without building the section's path unless it is an error."""
    value = block.get(key)
    if value.__class__ is str and len(value) <= limit and value.isascii() and "\x00" not in value:
        return value
    return opt_str(block, key, f"{where}.{section_name}", limit)


class Scope:
    """Where a result sits: the image, the Kubernetes resource, the target."""

    def __init__(self, image: ImageRef | None, resource: ResourceRef | None, occurred_at: str | None) -> None:
        self.image = image
        #: ``image.name``, computed once per result rather than once per finding.
        self.image_name = image.name if image is not None else ""
        self.resource = resource
        self.occurred_at = occurred_at

    def resource_parts(self) -> tuple[str, str, str, str]:
        if self.resource is None:
            return "", "", "", ""
        r = self.resource
        return r.cluster, r.namespace, r.kind, workload_name(r.name, kind=r.kind)
