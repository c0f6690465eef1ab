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

This module walks the report (artifact or cluster, results, targets); ``trivy_vulnerabilities.py`` reads a
vulnerability, ``trivy_misconfig.py`` a misconfiguration or a secret, ``trivy_fields.py`` the shared fields.
Vulnerabilities are read at parse time and normalised on demand (``scanners/entries.py``), so a re-scan's
unchanged entries are never normalised by the ingest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scanners.base import Finding, ImageRef, ParseError, ParseResult, ResourceRef, clean_text, expect_dict, expect_list, gc_paused, opt_str
from scanners.entries import Entry, Pending
from scanners.moments import parse_moment
from scanners.trivy_fields import Scope, image_from_refs, image_from_target, iso_timestamp, parse_image, severity_word
from scanners.trivy_misconfig import misconfiguration, secret
from scanners.trivy_vulnerabilities import pick_cvss, vulnerability_entry

#: What other formats import from here (they share Trivy's readings of images and timestamps).
__all__ = ["TrivyParser", "image_from_refs", "image_from_target", "iso_timestamp", "parser", "pick_cvss", "severity_word"]

_K8S_SECTIONS = ("Resources", "Vulnerabilities", "Misconfigurations", "Secrets")


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
            image = parse_image(artifact_name)
        scope = Scope(image, None, iso_timestamp(doc.get("CreatedAt")))
        entries: list[Entry] = []
        for index, result in enumerate(expect_list(doc.get("Results"), "Results")):
            self._parse_result(result, f"Results[{index}]", scope, entries)
        return ParseResult.deferred(
            Pending(entries, _add),
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
        entries: list[Entry] = []
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
                scope = Scope(image, resource, None)
                for r_index, result in enumerate(results):
                    self._parse_result(result, f"{where}.Results[{r_index}]", scope, entries)
        return ParseResult.deferred(Pending(entries, _add), evaluated=list(evaluated))

    # -- one result ---------------------------------------------------------------------------------

    def _parse_result(self, value: Any, where: str, scope: Scope, entries: list[Entry]) -> None:
        result = expect_dict(value, where)
        target = opt_str(result, "Target", where, 1000)
        result_class = opt_str(result, "Class", where, 64)
        result_type = opt_str(result, "Type", where, 64)
        if scope.resource is not None:
            # A workload's image is in its OS result's target text (``repo:tag (debian 10.4)``).
            image = image_from_target(target) or scope.image
            scope = Scope(image, scope.resource, scope.occurred_at)
        place = (target, scope)
        for index, item in enumerate(expect_list(result.get("Vulnerabilities"), f"{where}.Vulnerabilities")):
            entries.append(vulnerability_entry(item, f"{where}.Vulnerabilities[{index}]", scope, target, result_class, result_type))
        for index, item in enumerate(expect_list(result.get("Misconfigurations"), f"{where}.Misconfigurations")):
            found = misconfiguration(item, f"{where}.Misconfigurations[{index}]", scope, target, result_type)
            if found is not None:
                entries.append(_normalised(found, scope, place))
        for index, item in enumerate(expect_list(result.get("Secrets"), f"{where}.Secrets")):
            entries.append(_normalised(secret(item, f"{where}.Secrets[{index}]", scope, target), scope, place))


def _normalised(finding: Finding, scope: Scope, place: tuple[str, Scope]) -> Entry:
    """An entry normalised at parse time (a misconfiguration or a secret): no digest, always applied in full."""
    return Entry(digest="", image=scope.image, resource=scope.resource, build=lambda: finding, place=place)


def _add(findings: dict[str, Finding], finding: Finding, where: tuple[str, Scope]) -> None:
    """Keep one finding per fingerprint; later sightings are listed in ``details["also_seen"]``."""
    target, scope = where
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
