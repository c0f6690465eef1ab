"""CycloneDX JSON BOMs (spec 1.4 to 1.7) with ``vulnerabilities`` (Trivy, Grype, Snyk, VEX documents).

One finding per (vulnerability, affected ref).  An ``affects[].ref`` naming no component is kept
as the package name.  A BOM without vulnerabilities (a plain SBOM) gives no findings; its
components are kept in ``ParseResult.components``.

Severity: the rating from the vulnerability's own ``source`` first (Trivy writes one rating per
vendor and uses the data source's), else NVD's, else the first rating carrying a severity word;
without any severity word, the CVSS score decides.  CVSS: CVSS v3.x ratings first, then v4, then
v2, in the same source order.  VEX: ``analysis.state`` not_affected / false_positive / resolved
(``resolved_with_pedigree`` too) become ``status_hint``; the state, justification, response and
detail are kept in ``details``.

Identity follows the trivy/grype scheme: image repository (``metadata.component`` of type
container; otherwise its name without version) + vulnerability id + package name + package path
(Trivy's ``aquasecurity:trivy:FilePath`` property or ``file_path`` purl qualifier; Syft's first
location, empty for an OS package found in its package database, as the grype parser does).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from scanners.base import (
    Finding,
    ImageRef,
    PackageRef,
    ParseError,
    ParseResult,
    clean_cvss,
    clean_references,
    clean_text,
    expect_dict,
    expect_list,
    normalise_cwes,
    normalise_severity,
    opt_str,
    severity_from_score,
)
from scanners.fingerprint import make_fingerprint
from scanners.grype import package_path
from scanners.moments import parse_moment
from scanners.trivy import image_from_refs, iso_timestamp

_VEX_HINTS = {
    "not_affected": "not_affected",
    "false_positive": "false_positive",
    "resolved": "resolved",
    "resolved_with_pedigree": "resolved",
}
_TRIVY_FIX = re.compile(r"^Upgrade \S+ to version (.+)$")
MAX_COMPONENTS = 20000


def _cvss_rank(method: str) -> int:
    method = method.upper()
    if method.startswith("CVSSV3"):
        return 0
    if method.startswith("CVSSV4"):
        return 1
    if method.startswith("CVSSV2"):
        return 2
    return 9


def _properties(owner: Mapping[str, Any], where: str) -> dict[str, list[str]]:
    """CycloneDX ``properties`` (a list of ``{name, value}``) as name -> values."""
    out: dict[str, list[str]] = {}
    for index, item in enumerate(expect_list(owner.get("properties"), f"{where}.properties")):
        prop = expect_dict(item, f"{where}.properties[{index}]")
        name = opt_str(prop, "name", f"{where}.properties[{index}]", 255)
        value = opt_str(prop, "value", f"{where}.properties[{index}]", 2000)
        if name:
            out.setdefault(name, []).append(value)
    return out


def _qualifier(purl: str, key: str) -> str:
    if "?" not in purl:
        return ""
    query = purl.split("?", 1)[1].split("#", 1)[0]
    values = urllib.parse.parse_qs(query).get(key)
    return values[0] if values else ""


def _purl_without_version(purl: str) -> str:
    base = purl.split("?", 1)[0].split("#", 1)[0]
    return base.rsplit("@", 1)[0] if "@" in base.rsplit("/", 1)[-1] else base


class _Component:
    def __init__(self, entry: Mapping[str, Any], where: str) -> None:
        self.bom_ref = opt_str(entry, "bom-ref", where, 1000)
        self.name = opt_str(entry, "name", where, 255)
        self.group = opt_str(entry, "group", where, 255)
        self.version = opt_str(entry, "version", where, 255)
        self.purl = opt_str(entry, "purl", where, 1000)
        self.type = opt_str(entry, "type", where, 64)
        self.properties = _properties(entry, where)

    @property
    def package_name(self) -> str:
        if not self.group:
            return self.name
        separator = ":" if self.purl.startswith("pkg:maven/") else "/"
        return f"{self.group}{separator}{self.name}"

    @property
    def package_type(self) -> str:
        for key in ("aquasecurity:trivy:PkgType", "syft:package:type"):
            if self.properties.get(key):
                return self.properties[key][0]
        if self.purl.startswith("pkg:"):
            return self.purl[4:].split("/", 1)[0]
        return ""

    def path(self, ref: str) -> str:
        trivy_path = self.properties.get("aquasecurity:trivy:FilePath")
        if trivy_path and trivy_path[0]:
            return trivy_path[0].lstrip("/")
        for purl in (self.purl, ref):
            qualified = _qualifier(purl, "file_path")
            if qualified:
                return qualified.lstrip("/")
        syft_path = self.properties.get("syft:location:0:path")
        if syft_path:
            syft_type = self.properties.get("syft:package:type", [""])[0]
            return package_path(syft_type, syft_path[:1])
        return ""


class CycloneDxParser:
    name = "cyclonedx"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        return isinstance(document, dict) and document.get("bomFormat") == "CycloneDX"

    def parse(self, document: Any) -> ParseResult:
        bom = expect_dict(document, "bom")
        if bom.get("bomFormat") != "CycloneDX":
            raise ParseError("not a CycloneDX BOM: bomFormat is not 'CycloneDX'")
        spec = opt_str(bom, "specVersion", "bom", 16)
        if not re.fullmatch(r"1\.\d+", spec):
            raise ParseError(f"specVersion {spec or 'missing'!r} is not a CycloneDX 1.x version")
        metadata = expect_dict(bom.get("metadata") or {}, "metadata")
        occurred_at = iso_timestamp(metadata.get("timestamp"))
        main = metadata.get("component")
        main_component = _Component(expect_dict(main, "metadata.component"), "metadata.component") if main else None
        image = self._image(main_component)
        scope = image.name if image else (main_component.package_name if main_component else "")

        components: dict[str, _Component] = {}
        flat: list[dict[str, str]] = []
        self._components(bom.get("components"), "components", components, flat, 0)

        findings: dict[str, Finding] = {}
        for index, item in enumerate(expect_list(bom.get("vulnerabilities"), "vulnerabilities")):
            for finding in self._vulnerability(item, f"vulnerabilities[{index}]", components, image, scope, occurred_at):
                first = findings.get(finding.fingerprint)
                if first is None:
                    findings[finding.fingerprint] = finding
        labels: dict[str, str] = {}
        return ParseResult(
            findings=list(findings.values()),
            artifact=image,
            labels=labels,
            components=flat,
            observed_at=parse_moment(metadata.get("timestamp")),
        )

    @staticmethod
    def _image(component: _Component | None) -> ImageRef | None:
        if component is None or component.type != "container":
            return None
        props = component.properties
        candidates = []
        if component.name:
            version = component.version
            if version.startswith("sha256:"):
                candidates.append(f"{component.name}@{version}")
            elif version:
                candidates.append(f"{component.name}:{version}")
            candidates.append(component.name)
        return image_from_refs(props.get("aquasecurity:trivy:RepoTag", []), props.get("aquasecurity:trivy:RepoDigest", []), *candidates)

    def _components(self, value: Any, where: str, by_ref: dict[str, _Component], flat: list[dict[str, str]], depth: int) -> None:
        if depth > 10:
            raise ParseError(f"{where}: components nested more than 10 levels deep")
        for index, item in enumerate(expect_list(value, where)):
            entry = expect_dict(item, f"{where}[{index}]")
            component = _Component(entry, f"{where}[{index}]")
            if component.bom_ref and component.bom_ref not in by_ref:
                by_ref[component.bom_ref] = component
            if len(flat) < MAX_COMPONENTS:
                flat.append(
                    {
                        "name": component.package_name,
                        "version": component.version,
                        "purl": component.purl,
                        "type": component.type,
                    }
                )
            if entry.get("components") is not None:
                self._components(entry.get("components"), f"{where}[{index}].components", by_ref, flat, depth + 1)

    def _vulnerability(
        self,
        value: Any,
        where: str,
        components: Mapping[str, _Component],
        image: ImageRef | None,
        scope: str,
        occurred_at: str | None,
    ) -> list[Finding]:
        vuln = expect_dict(value, where)
        vuln_id = opt_str(vuln, "id", where, 255)
        if not vuln_id:
            raise ParseError(f"{where}: missing id")
        source = expect_dict(vuln.get("source") or {}, f"{where}.source")
        source_name = opt_str(source, "name", f"{where}.source", 255)
        severity, cvss, cvss_vector, cvss_method = self._ratings(vuln.get("ratings"), f"{where}.ratings", source_name)
        analysis = expect_dict(vuln.get("analysis") or {}, f"{where}.analysis")
        state = opt_str(analysis, "state", f"{where}.analysis", 64)
        references, related = _references(vuln, where, source, vuln_id)
        recommendation = opt_str(vuln, "recommendation", where, 2000)
        fix = _TRIVY_FIX.match(recommendation)
        cwes = _cwes(vuln, where)
        description = opt_str(vuln, "description", where) or opt_str(vuln, "detail", where)
        base_details: dict[str, Any] = {
            "source_name": source_name,
            "cvss_method": cvss_method,
            "cvss_vector": cvss_vector,
            "related_vulnerabilities": related,
            "recommendation": recommendation,
            **_vex_details(vuln, analysis, where, state),
        }

        findings = []
        for ref, versions in _targets(vuln, where):
            package, pkg_name, pkg_path, purl = _affected_package(ref, components, fix)
            details = {**base_details, "ref": ref, "purl": purl, "affected_versions": [v for v in versions if isinstance(v, dict)][:20]}
            findings.append(
                Finding(
                    kind="vulnerability",
                    source=self.name,
                    rule_id=vuln_id,
                    title=f"{vuln_id} in {pkg_name}" if pkg_name else vuln_id,
                    severity=severity,
                    fingerprint=make_fingerprint("vuln", scope, vuln_id, pkg_name, pkg_path),
                    image=image,
                    package=package,
                    cvss=cvss,
                    cwe=normalise_cwes(cwes),
                    references=clean_references(references),
                    occurred_at=occurred_at,
                    description=description,
                    status_hint=_VEX_HINTS.get(state, ""),
                    details={k: v for k, v in details.items() if v not in ("", None, [])},
                )
            )
        return findings

    @staticmethod
    def _ratings(value: Any, where: str, source_name: str) -> tuple[str, float | None, str, str]:
        """(severity, cvss, vector, method) following the module docstring's order."""
        ratings: list[dict[str, Any]] = []
        for index, item in enumerate(expect_list(value, where)):
            rating = expect_dict(item, f"{where}[{index}]")
            rating_source = expect_dict(rating.get("source") or {}, f"{where}[{index}].source")
            severity = rating.get("severity")
            if severity is not None and not isinstance(severity, str):
                raise ParseError(f"{where}[{index}]: severity is not a string")
            ratings.append(
                {
                    "source": opt_str(rating_source, "name", f"{where}[{index}].source", 255).lower(),
                    "severity": severity or "",
                    "method": opt_str(rating, "method", f"{where}[{index}]", 64),
                    "score": rating.get("score"),
                    "vector": opt_str(rating, "vector", f"{where}[{index}]", 200),
                }
            )

        def source_rank(rating: Mapping[str, Any]) -> int:
            if source_name and rating["source"] == source_name.lower():
                return 0
            return 1 if rating["source"] == "nvd" else 2

        cvss: float | None = None
        vector = method = ""
        scored = [r for r in ratings if _cvss_rank(r["method"]) < 9 and clean_cvss(r["score"]) is not None]
        if scored:
            best = min(scored, key=lambda r: (source_rank(r), _cvss_rank(r["method"])))
            cvss, vector, method = clean_cvss(best["score"]), best["vector"], best["method"]
        worded = [r for r in ratings if normalise_severity(r["severity"]) != "unknown"]
        if worded:
            best = min(worded, key=lambda r: (source_rank(r), _cvss_rank(r["method"])))
            return normalise_severity(best["severity"]), cvss, vector, method
        return severity_from_score(cvss), cvss, vector, method


def _references(vuln: Mapping[str, Any], where: str, source: Mapping[str, Any], vuln_id: str) -> tuple[list[str], list[str]]:
    """``(reference urls, ids of related vulnerabilities)``: the source's, the advisories' and the references' own."""
    references = [opt_str(source, "url", f"{where}.source", 2000)]
    for a_index, item in enumerate(expect_list(vuln.get("advisories"), f"{where}.advisories")):
        references.append(opt_str(expect_dict(item, f"{where}.advisories[{a_index}]"), "url", f"{where}.advisories[{a_index}]", 2000))
    related = []
    for r_index, item in enumerate(expect_list(vuln.get("references"), f"{where}.references")):
        reference = expect_dict(item, f"{where}.references[{r_index}]")
        related_id = opt_str(reference, "id", f"{where}.references[{r_index}]", 255)
        if related_id and related_id != vuln_id:
            related.append(related_id)
        ref_source = expect_dict(reference.get("source") or {}, f"{where}.references[{r_index}].source")
        references.append(opt_str(ref_source, "url", f"{where}.references[{r_index}].source", 2000))
    return references, related


def _cwes(vuln: Mapping[str, Any], where: str) -> list[int]:
    cwes = []
    for c_index, cwe in enumerate(expect_list(vuln.get("cwes"), f"{where}.cwes")):
        if isinstance(cwe, bool) or not isinstance(cwe, int):
            raise ParseError(f"{where}.cwes[{c_index}]: expected a number")
        cwes.append(cwe)
    return cwes


def _vex_details(vuln: Mapping[str, Any], analysis: Mapping[str, Any], where: str, state: str) -> dict[str, Any]:
    """The VEX analysis (state, justification, response, detail) and the vulnerability's dates."""
    return {
        "vex_state": state,
        "vex_justification": opt_str(analysis, "justification", f"{where}.analysis", 255),
        "vex_response": [r for r in expect_list(analysis.get("response"), f"{where}.analysis.response") if isinstance(r, str)],
        "vex_detail": opt_str(analysis, "detail", f"{where}.analysis", 2000),
        "published": iso_timestamp(vuln.get("published")),
        "updated": iso_timestamp(vuln.get("updated")),
    }


def _targets(vuln: Mapping[str, Any], where: str) -> list[tuple[str, list[Any]]]:
    """``(component ref, affected versions)`` per affected component; the BOM's subject itself when none is named."""
    targets: list[tuple[str, list[Any]]] = []
    for a_index, item in enumerate(expect_list(vuln.get("affects"), f"{where}.affects")):
        affect = expect_dict(item, f"{where}.affects[{a_index}]")
        ref = opt_str(affect, "ref", f"{where}.affects[{a_index}]", 1000)
        if not ref:
            raise ParseError(f"{where}.affects[{a_index}]: missing ref")
        targets.append((ref, expect_list(affect.get("versions"), f"{where}.affects[{a_index}].versions")))
    if not targets:
        targets.append(("", []))  # a vulnerability of the BOM's subject itself
    return targets


def _affected_package(ref: str, components: Mapping[str, _Component], fix: re.Match[str] | None) -> tuple[PackageRef | None, str, str, str]:
    """``(package, name, path, purl)`` of an affected ref: its component's, else the ref itself (a purl or a name)."""
    component = components.get(ref)
    if component is None:
        return (PackageRef(name=clean_text(ref, 255)) if ref else None), ref, "", ref if ref.startswith("pkg:") else ""
    pkg_name, pkg_path = component.package_name, component.path(ref)
    package = PackageRef(
        name=pkg_name,
        version=component.version,
        fixed_version=clean_text(fix.group(1), 255) if fix else "",
        type=component.package_type,
        path=pkg_path,
    )
    return package, pkg_name, pkg_path, component.purl


parser = CycloneDxParser()
