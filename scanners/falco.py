"""Falco alerts: Falco's ``json_output`` and the falcosidekick webhook payload.

Accepted documents: one alert, a JSON array of alerts, or JSON lines (the loader turns both into a list).
Every alert is one runtime finding; the runtime stream aggregates them per identity (rule, cluster, namespace,
workload or image repository) and counts occurrences.

Priority → severity: Emergency, Alert, Critical → critical; Error → high; Warning → medium; Notice → low;
Informational, Debug → info (case-insensitive; anything else → unknown).

``output_fields`` values are mixed types and often null.  When the Kubernetes or container fields are missing
from ``output_fields`` (some rules only template them into the text, e.g. ``Drop and execute new binary in
container``), they are read from ``key=value`` pairs in ``output`` (``k8s_pod_name=…``, ``k8s_ns=…``,
``container_image=…``, ``container_name=…``).

Identity: rule + cluster ("", Falco does not name it) + namespace + the pod's workload name, else the image
(``registry/repository``, normalised), else ``container.name``.  ``details`` keeps hostname, source, uuid,
tags, priority and the Falco fields ``proc.cmdline``, ``user.name``, ``evt.time`` (integer nanoseconds),
``k8s.pod.name`` (the real pod name), ``container.name`` and ``container.id`` under their Falco names.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from scanners.base import Finding, ImageRef, ParseError, ParseResult, ResourceRef, clean_text, expect_dict, opt_str, req_str, type_name
from scanners.fingerprint import make_fingerprint, workload_name
from scanners.kubernetes import rfc3339_to_iso
from scanners.moments import latest_moment

PRIORITY_SEVERITY = {
    "emergency": "critical",
    "alert": "critical",
    "critical": "critical",
    "error": "high",
    "warning": "medium",
    "notice": "low",
    "informational": "info",
    "info": "info",
    "debug": "info",
}

# output_fields keys first, then the names Falco uses for the same values in the output text.
_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "namespace": ("k8s.ns.name", "k8s_ns_name", "k8s_ns", "k8s.ns"),
    "pod": ("k8s.pod.name", "k8s_pod_name", "k8s_pod", "k8s.pod"),
    "repository": (
        "container.image.repository",
        "container_image_repository",
        "container_image",
        "container.image",
        "image",
    ),
    "tag": ("container.image.tag", "container_image_tag"),
    "container_name": ("container.name", "container_name"),
    "container_id": ("container.id", "container_id", "container"),
}
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_MISSING = frozenset({"", "<na>", "n/a", "null", "none"})
_PAIR = re.compile(r"(?<![\w.\[\]])([A-Za-z_][\w.]*)=([^\s()]*)")


def _is_alert(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("rule"), str)
        and isinstance(value.get("priority"), str)
        and "output" in value
        and ("time" in value or "output_fields" in value)
    )


def _scalar(value: Any) -> str:
    """A field value as text; lists, objects and Falco's ``<NA>`` become ""."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = clean_text(value, 1000).strip()
    return "" if text.lower() in _MISSING else text


def _output_pairs(output: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for key, value in _PAIR.findall(output):
        if key not in pairs:
            pairs[key] = value
    return pairs


def _nanoseconds(value: Any) -> int | None:
    """``evt.time`` as integer epoch nanoseconds (never through a float)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


class FalcoParser:
    name = "falco"
    stream = "runtime"
    #: An event stream: each report adds occurrences, never closes by absence, and is parsed even when repeated.
    events = True
    repeat_skips_parse = False

    def detect(self, document: Any) -> bool:
        if isinstance(document, list):
            return bool(document) and all(_is_alert(item) for item in document)
        return _is_alert(document)

    def parse(self, document: Any) -> ParseResult:
        if isinstance(document, list):
            alerts = [(f"[{index}]", item) for index, item in enumerate(document)]
        elif isinstance(document, dict):
            alerts = [("alert", document)]
        else:
            raise ParseError(f"not a Falco alert: expected an object or a list, got {type_name(document)}")
        findings = [self._parse_alert(alert, where) for where, alert in alerts]
        return ParseResult(findings=findings, observed_at=latest_moment(f.occurred_at for f in findings))

    def _parse_alert(self, value: Any, where: str) -> Finding:
        alert = expect_dict(value, where)
        rule = req_str(alert, "rule", where)
        priority = req_str(alert, "priority", where, 64)
        output = opt_str(alert, "output", where)
        occurred_at = rfc3339_to_iso(opt_str(alert, "time", where, 64), where, what="time")
        fields_raw = alert.get("output_fields")
        fields: Mapping[str, Any] = {} if fields_raw is None else expect_dict(fields_raw, f"{where}.output_fields")
        pairs = _output_pairs(output)
        container = _Container.pick(fields, pairs)
        image = _image(container, fields)

        workload = workload_name(container.pod) if container.pod else ""
        cluster = ""
        resource = ResourceRef(cluster=cluster, namespace=container.namespace, kind="Pod", name=workload) if workload else None
        subject = workload or (image.name if image is not None else container.repository) or container.name
        severity = PRIORITY_SEVERITY.get(priority.strip().lower(), "unknown")

        return Finding(
            kind="runtime",
            source=self.name,
            rule_id=rule,
            title=rule,
            severity=severity,
            fingerprint=make_fingerprint("runtime", rule, cluster, container.namespace, subject),
            image=image,
            resource=resource,
            occurred_at=occurred_at,
            description=output,
            details=_details(alert, where, priority=priority, fields=fields, pairs=pairs, container=container, image=image),
        )


@dataclasses.dataclass(frozen=True)
class _Container:
    """Where the alert happened, from ``output_fields`` first, else the ``key=value`` pairs of its output."""

    namespace: str
    pod: str
    repository: str
    tag: str
    name: str
    id: str

    @classmethod
    def pick(cls, fields: Mapping[str, Any], pairs: Mapping[str, str]) -> _Container:
        def pick(what: str) -> str:
            for key in _FIELD_NAMES[what]:
                text = _scalar(fields.get(key))
                if text:
                    return text
            for key in _FIELD_NAMES[what]:
                text = _scalar(pairs.get(key))
                if text:
                    return text
            return ""

        return cls(
            namespace=pick("namespace"),
            pod=pick("pod"),
            repository=pick("repository"),
            tag=pick("tag"),
            name=pick("container_name"),
            id=pick("container_id"),
        )


def _image(container: _Container, fields: Mapping[str, Any]) -> ImageRef | None:
    """The container's image, with its digest when ``container.image.digest`` gives a well-formed one."""
    repository, tag = container.repository, container.tag
    if not repository:
        return None
    image = ImageRef.parse(f"{repository}:{tag}" if tag and ":" not in repository.rsplit("/", 1)[-1] else repository)
    digest = fields.get("container.image.digest")
    if isinstance(digest, list):
        digest = next((item for item in digest if isinstance(item, str)), None)
    if image is not None and isinstance(digest, str) and _DIGEST.fullmatch(digest.strip().lower()):
        image = ImageRef(image.registry, image.repository, image.tag, digest.strip().lower())
    return image


def _details(
    alert: Mapping[str, Any],
    where: str,
    *,
    priority: str,
    fields: Mapping[str, Any],
    pairs: Mapping[str, str],
    container: _Container,
    image: ImageRef | None,
) -> dict[str, Any]:
    """What the finding keeps of the alert beyond its identity (only the keys the alert gives)."""
    details: dict[str, Any] = {"priority": priority}
    for key, length in (("hostname", 255), ("source", 64), ("uuid", 64)):
        text = opt_str(alert, key, where, length)
        if text:
            details[key] = text
    tags = alert.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            raise ParseError(f"{where}: tags is not a list")
        details["tags"] = [clean_text(tag_text, 255) for tag_text in tags if isinstance(tag_text, str)]
    cmdline = _scalar(fields.get("proc.cmdline"))
    if cmdline:
        details["proc.cmdline"] = cmdline
    user = _scalar(fields.get("user.name")) or _scalar(pairs.get("user_name")) or _scalar(pairs.get("user"))
    if user:
        details["user.name"] = user
    evt_time = _nanoseconds(fields.get("evt.time", fields.get("evt_time")))
    if evt_time is not None:
        details["evt.time"] = evt_time
    extras = (("k8s.pod.name", container.pod), ("container.name", container.name), ("container.id", container.id))
    details.update((key, text) for key, text in extras if text)
    if container.repository and image is None:
        details["container.image.repository"] = container.repository
    return details


parser = FalcoParser()
