"""Trivy JSON reports: ``trivy image|fs|repo --format json`` (SchemaVersion 2) and ``trivy k8s``.

Image and filesystem reports carry ``SchemaVersion: 2``, ``ArtifactName``, ``Metadata`` and
``Results[]`` with ``Vulnerabilities``, ``Misconfigurations`` and ``Secrets``.  ``trivy k8s``
reports carry ``ClusterName`` and either ``Resources[]`` (newer) or ``Vulnerabilities[]`` /
``Misconfigurations[]`` lists of resources (older); each resource has its own ``Results[]``.
Legacy (pre-2021, schema v1) reports are a bare list of results and are refused.

Identity (see FORMATS.md): a vulnerability is image repository (or the target when there is no
image) + ``VulnerabilityID`` + ``PkgName`` + package path; the same fingerprint seen twice in one
report (one image used by two workloads, one package under two targets) is one finding whose
other places are kept in ``details["also_seen"]``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from scanners.base import (
    MAX_TITLE,
    Finding,
    ImageRef,
    PackageRef,
    ParseError,
    ParseResult,
    ResourceRef,
    clean_cvss,
    clean_references,
    clean_text,
    expect_dict,
    expect_list,
    gc_paused,
    normalise_cwes,
    normalise_severity,
    opt_str,
    parse_moment,
)
from scanners.fingerprint import make_fingerprint, workload_name

#: ``repo:tag (debian 10.4)``: the target of an image's OS-package result.
_IMAGE_TARGET = re.compile(r"^(?P<ref>\S+) \((?P<os>[^()]*)\)$")
_TARBALL = re.compile(r"\.(?:tar|tar\.gz|tgz|tar\.zst|oci)$", re.IGNORECASE)
_K8S_SECTIONS = ("Resources", "Vulnerabilities", "Misconfigurations", "Secrets")


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
    tagged = next((ref for ref in (_parse_image(t) for t in tags) if ref is not None), None)
    digested = [ref for ref in (_parse_image(d) for d in digests) if ref is not None and ref.digest]
    if tagged is not None:
        same = next((ref for ref in digested if ref.name == tagged.name), None)
        if same is not None and not tagged.digest:
            return ImageRef(tagged.registry, tagged.repository, tagged.tag, same.digest)
        return tagged
    if digested:
        return digested[0]
    for fallback in fallbacks:
        ref = _parse_image(fallback)
        if ref is not None:
            return ref
    return None


def _parse_image(value: Any) -> ImageRef | None:
    if not isinstance(value, str) or not value.strip() or _TARBALL.search(value.strip()):
        return None
    return ImageRef.parse(value)


def image_from_target(target: Any) -> ImageRef | None:
    """The image in an OS-package target such as ``docker.io/redis:6.0.5 (debian 10.4)``."""
    if not isinstance(target, str):
        return None
    match = _IMAGE_TARGET.match(target.strip())
    return _parse_image(match.group("ref")) if match else None


def pick_cvss(cvss: Any, preferred: str, where: str) -> tuple[float | None, str, str]:
    """(score, source, vector) from Trivy's ``CVSS`` map: the ``SeveritySource`` vendor, else nvd, else any.

    Within a vendor the CVSS v3 score wins over the v4.0 score.
    """
    if cvss is None:
        return None, "", ""
    if not isinstance(cvss, dict):
        expect_dict(cvss, f"{where}.CVSS")  # raises
    for vendor in _vendor_order(cvss, preferred):
        entry = cvss.get(vendor)
        if not isinstance(entry, dict):
            continue
        for score_key, vector_key in (("V3Score", "V3Vector"), ("V40Score", "V40Vector")):
            score = clean_cvss(entry.get(score_key))
            if score is not None:
                vector = entry.get(vector_key)
                return score, vendor, clean_text(vector, 200) if isinstance(vector, str) else ""
    return None, "", ""


def _vendor_order(vendors: Mapping[str, Any], preferred: str) -> Iterator[str]:
    """``preferred``, then nvd, then the other vendors by name; the sort only runs when the first two have no score."""
    if preferred:
        yield preferred
    if preferred != "nvd":
        yield "nvd"
    yield from sorted(k for k in vendors if isinstance(k, str) and k and k != preferred and k != "nvd")


def _strings(value: Any, where: str, key: str) -> list[str]:
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


def _clean_strings(value: Any, where: str, key: str) -> list[str]:
    """A list of strings as ``clean_json`` keeps it in ``details`` (at most 200, each cleaned)."""
    items = _strings(value, where, key)
    return [clean_text(item) for item in items[:200]] if items else []


def severity_word(mapping: Mapping[str, Any], key: str, where: str) -> str:
    """A severity field normalised to Vigil's words; a number or object there is an error, not "unknown"."""
    value = mapping.get(key)
    if value is not None and not isinstance(value, str):
        raise ParseError(f"{where}: {key} is not a string")
    return normalise_severity(value or "")


def _line(mapping: Mapping[str, Any], key: str, where: str) -> int | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{where}: {key} is not a number")
    return value


def _section(mapping: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """An optional object field ({} when absent or empty); ``where`` for the error is only built on error."""
    value = mapping.get(key) or {}
    if not isinstance(value, dict):
        expect_dict(value, f"{where}.{key}")  # raises
    return value


def _section_str(section: Mapping[str, Any], key: str, where: str, section_name: str, limit: int) -> str:
    """``opt_str`` of a field of a section, without building the section's path unless it is an error."""
    value = section.get(key)
    if value.__class__ is str and len(value) <= limit and value.isascii() and "\x00" not in value:
        return value
    return opt_str(section, key, f"{where}.{section_name}", limit)


class _Scope:
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


class TrivyParser:
    name = "trivy"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        if isinstance(document, dict):
            if "apiVersion" in document or "bomFormat" in document or "runs" in document:
                return False
            version = document.get("SchemaVersion")
            if isinstance(version, int) and not isinstance(version, bool):
                return "Results" in document or "ArtifactName" in document
            return isinstance(document.get("ClusterName"), str) and any(isinstance(document.get(key), list) for key in _K8S_SECTIONS)
        if isinstance(document, list) and document:
            # Legacy schema v1: a bare list of {Target, Type, Vulnerabilities}; detected so parse can refuse it clearly.
            return all(isinstance(item, dict) and "Target" in item and "Vulnerabilities" in item for item in document)
        return False

    def parse(self, document: Any) -> ParseResult:
        with gc_paused():
            return self._parse(document)

    def _parse(self, document: Any) -> ParseResult:
        if isinstance(document, list):
            raise ParseError(
                "Trivy schema v1 (a bare list of results, Trivy before 0.20) is not supported: re-run Trivy >= 0.20 with --format json"
            )
        doc = expect_dict(document, "report")
        if "ClusterName" in doc and "SchemaVersion" not in doc:
            return self._parse_k8s(doc)
        version = doc.get("SchemaVersion")
        if version != 2:
            raise ParseError(f"SchemaVersion {version!r} is not supported (expected 2)")
        return self._parse_artifact(doc)

    # -- image / filesystem / repository reports -------------------------------------------------

    def _parse_artifact(self, doc: Mapping[str, Any]) -> ParseResult:
        metadata = expect_dict(doc.get("Metadata") or {}, "Metadata")
        artifact_type = opt_str(doc, "ArtifactType", "report")
        artifact_name = opt_str(doc, "ArtifactName", "report")
        image = self._image_from_metadata(metadata, "Metadata")
        if image is None and artifact_type in ("", "container_image"):
            image = _parse_image(artifact_name)
        scope = _Scope(image, None, iso_timestamp(doc.get("CreatedAt")))
        findings: dict[str, Finding] = {}
        for index, result in enumerate(expect_list(doc.get("Results"), "Results")):
            self._parse_result(result, f"Results[{index}]", scope, findings)
        return ParseResult(
            findings=list(findings.values()),
            artifact=image,
            labels=self._labels(metadata, "Metadata"),
            observed_at=parse_moment(doc.get("CreatedAt")),
        )

    @staticmethod
    def _image_from_metadata(metadata: Mapping[str, Any], where: str) -> ImageRef | None:
        tags = expect_list(metadata.get("RepoTags"), f"{where}.RepoTags")
        digests = expect_list(metadata.get("RepoDigests"), f"{where}.RepoDigests")
        return image_from_refs(tags, digests, metadata.get("Reference"))

    @staticmethod
    def _labels(metadata: Mapping[str, Any], where: str) -> dict[str, str]:
        image_config = expect_dict(metadata.get("ImageConfig") or {}, f"{where}.ImageConfig")
        config = expect_dict(image_config.get("config") or {}, f"{where}.ImageConfig.config")
        labels = expect_dict(config.get("Labels") or {}, f"{where}.ImageConfig.config.Labels")
        return {clean_text(k, 255): clean_text(v, 2000) for k, v in labels.items() if isinstance(v, (str, int, float))}

    # -- trivy k8s --------------------------------------------------------------------------------

    def _parse_k8s(self, doc: Mapping[str, Any]) -> ParseResult:
        cluster = opt_str(doc, "ClusterName", "report", 255)
        findings: dict[str, Finding] = {}
        evaluated: dict[ResourceRef, None] = {}
        for section in _K8S_SECTIONS:
            for index, item in enumerate(expect_list(doc.get(section), section)):
                where = f"{section}[{index}]"
                entry = expect_dict(item, where)
                resource = ResourceRef(
                    cluster=cluster,
                    namespace=opt_str(entry, "Namespace", where, 255),
                    kind=opt_str(entry, "Kind", where, 255),
                    name=opt_str(entry, "Name", where, 255),
                )
                evaluated[resource] = None
                metadata = expect_dict(entry.get("Metadata") or {}, f"{where}.Metadata")
                results = expect_list(entry.get("Results"), f"{where}.Results")
                image = self._image_from_metadata(metadata, f"{where}.Metadata") or next(
                    (ref for ref in (image_from_target(r.get("Target")) for r in results if isinstance(r, dict)) if ref is not None),
                    None,
                )
                scope = _Scope(image, resource, None)
                for r_index, result in enumerate(results):
                    self._parse_result(result, f"{where}.Results[{r_index}]", scope, findings)
        return ParseResult(findings=list(findings.values()), evaluated=list(evaluated))

    # -- one result ---------------------------------------------------------------------------------

    def _parse_result(self, value: Any, where: str, scope: _Scope, findings: dict[str, Finding]) -> None:
        result = expect_dict(value, where)
        target = opt_str(result, "Target", where, 1000)
        result_class = opt_str(result, "Class", where, 64)
        result_type = opt_str(result, "Type", where, 64)
        if scope.resource is not None:
            # A workload's image is in its OS result's target text (``repo:tag (debian 10.4)``).
            image = image_from_target(target) or scope.image
            scope = _Scope(image, scope.resource, scope.occurred_at)
        for index, item in enumerate(expect_list(result.get("Vulnerabilities"), f"{where}.Vulnerabilities")):
            finding = self._vulnerability(item, f"{where}.Vulnerabilities[{index}]", scope, target, result_class, result_type)
            _add(findings, finding, target, scope)
        for index, item in enumerate(expect_list(result.get("Misconfigurations"), f"{where}.Misconfigurations")):
            misconfig = self._misconfiguration(item, f"{where}.Misconfigurations[{index}]", scope, target, result_type)
            if misconfig is not None:
                _add(findings, misconfig, target, scope)
        for index, item in enumerate(expect_list(result.get("Secrets"), f"{where}.Secrets")):
            _add(findings, self._secret(item, f"{where}.Secrets[{index}]", scope, target), target, scope)

    def _vulnerability(self, value: Any, where: str, scope: _Scope, target: str, result_class: str, result_type: str) -> Finding:
        vuln = expect_dict(value, where)
        vuln_id = opt_str(vuln, "VulnerabilityID", where, 255)
        pkg_name = opt_str(vuln, "PkgName", where, 255)
        if not vuln_id:
            raise ParseError(f"{where}: missing VulnerabilityID")
        if not pkg_name:
            raise ParseError(f"{where}: missing PkgName")
        pkg_path = opt_str(vuln, "PkgPath", where, 1000).lstrip("/")
        if not pkg_path and result_class == "lang-pkgs":
            # Lock files (requirements.txt, package-lock.json, ...) have no PkgPath: the target is the path.
            pkg_path = target.lstrip("/")
        severity_source = opt_str(vuln, "SeveritySource", where, 64)
        cvss, cvss_source, cvss_vector = pick_cvss(vuln.get("CVSS"), severity_source, where)
        identifier = _section(vuln, "PkgIdentifier", where)
        layer = _section(vuln, "Layer", where)
        data_source = _section(vuln, "DataSource", where)
        fixed = opt_str(vuln, "FixedVersion", where, 255)
        references = clean_references([opt_str(vuln, "PrimaryURL", where, 2000), *_strings(vuln.get("References"), where, "References")])
        # Every value of the finding is cleaned here, within its field's limit (opt_str, clean_text, clean_references,
        # normalise_cwes, pick_cvss), so Finding(cleaned=True) does not clean it again.
        details: dict[str, Any] = {
            "target": target,
            "class": result_class,
            "fix_state": opt_str(vuln, "Status", where, 64),
            "fixed_versions": [v.strip() for v in fixed.split(",") if v.strip()] if fixed else None,
            "severity_source": severity_source,
            "cvss_source": clean_text(cvss_source),
            "cvss_vector": cvss_vector,
            "purl": _section_str(identifier, "PURL", where, "PkgIdentifier", 1000),
            "vendor_ids": _clean_strings(vuln.get("VendorIDs"), where, "VendorIDs"),
            "data_source": _section_str(data_source, "ID", where, "DataSource", 255),
            "layer_digest": _section_str(layer, "Digest", where, "Layer", 255),
            "layer_diff_id": _section_str(layer, "DiffID", where, "Layer", 255),
            "published": iso_timestamp(vuln.get("PublishedDate")),
            "last_modified": iso_timestamp(vuln.get("LastModifiedDate")),
        }
        return Finding(
            kind="vulnerability",
            source=self.name,
            rule_id=vuln_id,
            title=opt_str(vuln, "Title", where, MAX_TITLE) or vuln_id,
            severity=severity_word(vuln, "Severity", where),
            fingerprint=make_fingerprint("vuln", scope.image_name if scope.image else target, vuln_id, pkg_name, pkg_path),
            image=scope.image,
            package=PackageRef(
                name=pkg_name,
                version=opt_str(vuln, "InstalledVersion", where, 255),
                fixed_version=fixed,
                type=result_type,
                path=pkg_path,
            ),
            resource=scope.resource,
            cvss=cvss,
            cwe=normalise_cwes(_strings(vuln.get("CweIDs"), where, "CweIDs")),
            references=references,
            occurred_at=scope.occurred_at,
            description=opt_str(vuln, "Description", where),
            details={k: v for k, v in details.items() if v},  # values are strings, lists or None
            cleaned=True,
        )

    def _misconfiguration(self, value: Any, where: str, scope: _Scope, target: str, result_type: str) -> Finding | None:
        misconfig = expect_dict(value, where)
        status = opt_str(misconfig, "Status", where, 64).upper()
        if status and status != "FAIL":
            return None  # PASS / EXCEPTION results (``--include-non-failures``) are not findings.
        check_id = opt_str(misconfig, "ID", where, 255)
        avd_id = opt_str(misconfig, "AVDID", where, 255)
        rule_id = check_id or avd_id
        if not rule_id:
            raise ParseError(f"{where}: missing ID")
        cause = expect_dict(misconfig.get("CauseMetadata") or {}, f"{where}.CauseMetadata")
        cause_resource = opt_str(cause, "Resource", f"{where}.CauseMetadata", 1000)
        message = opt_str(misconfig, "Message", where)
        description = opt_str(misconfig, "Description", where)
        # The resource (k8s) or the image/target decides where the check failed; never the message.
        fingerprint = make_fingerprint(
            "misconfig",
            *scope.resource_parts(),
            "" if scope.resource else (scope.image.name if scope.image else ""),
            "" if scope.resource else target,
            rule_id,
            cause_resource,
        )
        details: dict[str, Any] = {
            "target": target,
            "type": result_type,
            "check_type": opt_str(misconfig, "Type", where, 255),
            "avd_id": avd_id,
            "message": message,
            "resolution": opt_str(misconfig, "Resolution", where),
            "cause_resource": cause_resource,
            "provider": opt_str(cause, "Provider", f"{where}.CauseMetadata", 255),
            "service": opt_str(cause, "Service", f"{where}.CauseMetadata", 255),
            "start_line": _line(cause, "StartLine", f"{where}.CauseMetadata"),
            "end_line": _line(cause, "EndLine", f"{where}.CauseMetadata"),
        }
        return Finding(
            kind="misconfiguration",
            source=self.name,
            rule_id=rule_id,
            title=opt_str(misconfig, "Title", where, MAX_TITLE) or rule_id,
            severity=severity_word(misconfig, "Severity", where),
            fingerprint=fingerprint,
            image=scope.image,
            resource=scope.resource,
            references=clean_references(
                [
                    opt_str(misconfig, "PrimaryURL", where, 2000),
                    *_strings(misconfig.get("References"), where, "References"),
                ]
            ),
            occurred_at=scope.occurred_at,
            description="\n\n".join(part for part in (message, description) if part),
            details={k: v for k, v in details.items() if v not in ("", None, [])},
        )

    def _secret(self, value: Any, where: str, scope: _Scope, target: str) -> Finding:
        secret = expect_dict(value, where)
        rule_id = opt_str(secret, "RuleID", where, 255)
        if not rule_id:
            raise ParseError(f"{where}: missing RuleID")
        start_line = _line(secret, "StartLine", where)
        fingerprint = make_fingerprint(
            "secret",
            *scope.resource_parts(),
            "" if scope.resource else (scope.image.name if scope.image else ""),
            target,
            rule_id,
            "" if start_line is None else str(start_line),
        )
        details: dict[str, Any] = {
            "target": target,
            "category": opt_str(secret, "Category", where, 255),
            "start_line": start_line,
            "end_line": _line(secret, "EndLine", where),
            # Trivy redacts the match itself; we keep no more of the secret than it shows.
            "match": opt_str(secret, "Match", where, 1000),
        }
        return Finding(
            kind="secret",
            source=self.name,
            rule_id=rule_id,
            title=opt_str(secret, "Title", where, MAX_TITLE) or rule_id,
            severity=severity_word(secret, "Severity", where),
            fingerprint=fingerprint,
            image=scope.image,
            resource=scope.resource,
            occurred_at=scope.occurred_at,
            details={k: v for k, v in details.items() if v not in ("", None, [])},
        )


def _add(findings: dict[str, Finding], finding: Finding, target: str, scope: _Scope) -> None:
    """Keep one finding per fingerprint; later sightings are listed in ``details["also_seen"]``."""
    first = findings.get(finding.fingerprint)
    if first is None:
        findings[finding.fingerprint] = finding
        return
    place: dict[str, Any] = {"target": target}
    if scope.resource is not None:
        place["resource"] = scope.resource.to_dict()
    seen = first.details.setdefault("also_seen", [])
    if place not in seen and len(seen) < 100:
        seen.append(place)


parser = TrivyParser()
