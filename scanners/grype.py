"""Grype JSON reports (``grype IMAGE -o json``), current and early (0.7-era) layouts.

``source.target`` names the image (``userInput``, ``tags``, ``repoDigests``, ``manifestDigest``) or,
for directory scans, is a path string.  Each ``matches[]`` entry is one vulnerability in one
package (``artifact``), with how it matched in ``matchDetails`` (a list today, an object in early
Grype) and the fix in ``vulnerability.fix`` (``fixedInVersion`` in early Grype).

Severity: Grype's ``Negligible`` maps to **low** (not info): it is still a known vulnerability
that a distribution chose not to prioritise, and it should stay visible in the low bucket.

Identity follows the trivy parser's scheme: image repository + ``vulnerability.id`` +
``artifact.name`` + package path.  The path is the first location without its leading slash,
except that an OS package located only by its package database (``/var/lib/dpkg/status``,
``/lib/apk/db/installed``, the rpm db) has an empty path, exactly as Trivy reports OS packages;
so the same CVE in the same Debian package of the same repository has one fingerprint whether
Trivy or Grype saw it.  A GHSA whose CVE is in ``relatedVulnerabilities`` is fingerprinted on the
id Grype reports (the GHSA); the CVE is kept in ``details["related_vulnerabilities"]``.
"""

from __future__ import annotations

import functools
import re
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
    normalise_severity,
    opt_str,
)
from scanners.entries import Entry, Pending, entry_digest
from scanners.fingerprint import make_fingerprint
from scanners.moments import parse_moment
from scanners.trivy import image_from_refs, iso_timestamp

#: Package databases: a location there says "installed by the OS package manager", not a file path.
_PACKAGE_DB = re.compile(
    r"^/?(?:var/lib/dpkg/status(?:\.d/.*)?|lib/apk/db/installed|var/lib/rpm/.*|usr/lib/sysimage/rpm/.*"
    r"|usr/share/rpm/.*|var/lib/pacman/local/.*)$"
)
_OS_TYPES = frozenset({"deb", "apk", "rpm", "alpm", "portage"})
#: ``grype docker:alpine`` style inputs; archive inputs name a file, not an image.
_IMAGE_SCHEMES = ("docker:", "podman:", "registry:", "containerd:", "docker-daemon:")
_FILE_SCHEMES = ("docker-archive:", "oci-archive:", "oci-dir:", "singularity:", "dir:", "file:", "sbom:")


def package_path(artifact_type: str, locations: list[str]) -> str:
    """The path that identifies a package: "" for an OS package found in its package database."""
    if not locations:
        return ""
    first = locations[0]
    if artifact_type in _OS_TYPES and _PACKAGE_DB.match(first):
        return ""
    return first.lstrip("/")


def _cvss_rank(entry: Mapping[str, Any]) -> tuple[int, int]:
    version = str(entry.get("version") or "")
    rank = 0 if version.startswith("3") else 1 if version.startswith("4") else 2
    return rank, 0 if str(entry.get("type") or "").lower() == "primary" else 1


def pick_grype_cvss(vuln: Mapping[str, Any], where: str) -> tuple[float | None, str, str]:
    """(score, source, vector): CVSS v3.x first (the primary source first), then v4.0, then v2."""
    if isinstance(vuln.get("cvss"), list):
        entries = []
        for index, item in enumerate(vuln["cvss"]):
            entry = expect_dict(item, f"{where}.cvss[{index}]")
            metrics = expect_dict(entry.get("metrics") or {}, f"{where}.cvss[{index}].metrics")
            score = clean_cvss(metrics.get("baseScore"))
            if score is not None:
                entries.append((_cvss_rank(entry), score, entry))
        if entries:
            _, score, entry = min(entries, key=lambda e: e[0])
            return score, clean_text(entry.get("source"), 255), clean_text(entry.get("vector"), 200)
        return None, "", ""
    if vuln.get("cvss") is not None:
        raise ParseError(f"{where}.cvss: expected a list, got {type(vuln['cvss']).__name__}")
    for key in ("cvssV3", "cvssV2"):  # early Grype
        if vuln.get(key) is not None:
            block = expect_dict(vuln.get(key), f"{where}.{key}")
            score = clean_cvss(block.get("baseScore"))
            if score is not None:
                return score, key, clean_text(block.get("vector"), 200)
    return None, "", ""


def _string_list(value: Any, where: str) -> list[str]:
    out = []
    for index, item in enumerate(expect_list(value, where)):
        if not isinstance(item, str):
            raise ParseError(f"{where}[{index}]: expected a string, got {type(item).__name__}")
        out.append(clean_text(item, 1000))
    return out


#: Every top-level key a Grype JSON report has.
_GRYPE_KEYS = frozenset({"matches", "ignoredMatches", "source", "distro", "descriptor", "alertsByPackage"})


class GrypeParser:
    name = "grype"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        if not isinstance(document, dict) or not isinstance(document.get("matches"), list):
            return False
        descriptor = document.get("descriptor")
        if isinstance(descriptor, dict) and descriptor.get("name") == "grype":
            return True
        if isinstance(document.get("source"), dict) and "distro" in document:
            return True
        # Only ``matches`` (a trimmed or newer Grype file, e.g. with EPSS but no source, descriptor or distro):
        # recognised by the shape of its matches, a vulnerability and the artifact it was found in.
        if set(document) - _GRYPE_KEYS:
            return False
        sample = document["matches"][:5]
        return all(isinstance(m, dict) and isinstance(m.get("vulnerability"), dict) and isinstance(m.get("artifact"), dict) for m in sample)

    def parse(self, document: Any) -> ParseResult:
        doc = expect_dict(document, "report")
        if "matches" not in doc:
            raise ParseError("not a Grype report: missing 'matches'")
        source = expect_dict(doc.get("source") or {}, "source")
        image, scope_name, labels = self._source(source)
        descriptor = expect_dict(doc.get("descriptor") or {}, "descriptor")
        occurred_at = iso_timestamp(descriptor.get("timestamp"))
        context = (image.name if image else scope_name, occurred_at, image)
        entries = [self._entry(item, f"matches[{index}]", context) for index, item in enumerate(expect_list(doc.get("matches"), "matches"))]
        observed = parse_moment(descriptor.get("timestamp"))
        return ParseResult.deferred(Pending(entries, _merge), artifact=image, labels=labels, observed_at=observed)

    @staticmethod
    def _source(source: Mapping[str, Any]) -> tuple[ImageRef | None, str, dict[str, str]]:
        """(image, scope for fingerprints when there is no image, image labels)."""
        source_type = opt_str(source, "type", "source", 64)
        target = source.get("target")
        if isinstance(target, str):  # directory / file scans
            return None, clean_text(target, 1000), {}
        if target is None:
            return None, "", {}
        target = expect_dict(target, "source.target")
        user_input = opt_str(target, "userInput", "source.target", 1000)
        fallback = user_input
        if user_input.startswith(_FILE_SCHEMES):
            fallback = ""
        for scheme in _IMAGE_SCHEMES:
            if fallback.startswith(scheme):
                fallback = fallback[len(scheme) :]
        image = None
        if source_type in ("", "image"):
            image = image_from_refs(
                _string_list(target.get("tags"), "source.target.tags"),
                _string_list(target.get("repoDigests"), "source.target.repoDigests"),
                fallback,
            )
            digest = opt_str(target, "manifestDigest", "source.target", 255)
            if image is not None and not image.digest and re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                image = ImageRef(image.registry, image.repository, image.tag, digest)
        raw_labels = target.get("labels")
        labels = (
            {clean_text(k, 255): clean_text(v, 2000) for k, v in raw_labels.items() if isinstance(v, str)}
            if isinstance(raw_labels, dict)
            else {}
        )
        return image, user_input, labels

    def _entry(self, value: Any, where: str, context: tuple[str, str | None, ImageRef | None]) -> Entry:
        """One match, read and checked now (``ParseError`` with its path), normalised on demand (scanners/entries.py).
        Its digest covers the fields read and the image name (or the scanned path): not the tag, digest or time."""
        fields = self._read(value, where)
        digest = entry_digest(self.name, (context[0], fields))
        return Entry(digest=digest, image=context[2], resource=None, build=functools.partial(self._build, fields, context, digest))

    def _read(self, value: Any, where: str) -> tuple[Any, ...]:
        """Every field the finding is built from, checked in the order they are needed (the first error wins)."""
        match = expect_dict(value, where)
        vuln = expect_dict(match.get("vulnerability"), f"{where}.vulnerability")
        artifact = expect_dict(match.get("artifact"), f"{where}.artifact")
        vuln_id = opt_str(vuln, "id", f"{where}.vulnerability", 255)
        if not vuln_id:
            raise ParseError(f"{where}.vulnerability: missing id")
        pkg_name = opt_str(artifact, "name", f"{where}.artifact", 255)
        if not pkg_name:
            raise ParseError(f"{where}.artifact: missing name")
        artifact_type = opt_str(artifact, "type", f"{where}.artifact", 64)
        locations = []
        for l_index, item in enumerate(expect_list(artifact.get("locations"), f"{where}.artifact.locations")):
            location = expect_dict(item, f"{where}.artifact.locations[{l_index}]")
            path = opt_str(location, "path", f"{where}.artifact.locations[{l_index}]", 1000)
            if path:
                locations.append(path)
        purl = opt_str(artifact, "purl", f"{where}.artifact", 1000)
        severity_text = vuln.get("severity")
        if severity_text is not None and not isinstance(severity_text, str):
            raise ParseError(f"{where}.vulnerability: severity is not a string")
        fix = self._fix(vuln, f"{where}.vulnerability")
        match_details = self._match_details(match.get("matchDetails"), f"{where}.matchDetails")
        related = self._related(match.get("relatedVulnerabilities"), f"{where}.relatedVulnerabilities")
        cvss = pick_grype_cvss(vuln, f"{where}.vulnerability")
        urls = _string_list(vuln.get("urls"), f"{where}.vulnerability.urls")
        links = _string_list(vuln.get("links"), f"{where}.vulnerability.links")
        data_source = opt_str(vuln, "dataSource", f"{where}.vulnerability", 2000)
        namespace = opt_str(vuln, "namespace", f"{where}.vulnerability", 255)
        language = opt_str(artifact, "language", f"{where}.artifact", 64)
        version = opt_str(artifact, "version", f"{where}.artifact", 255)
        description = opt_str(vuln, "description", f"{where}.vulnerability")
        extra = (vuln.get("epss"), vuln.get("knownExploited"), vuln.get("risk"))
        return (vuln_id, pkg_name, artifact_type, locations, purl, severity_text, fix, match_details, related, cvss, urls, links,
                data_source, namespace, language, version, description, extra)  # fmt: skip

    def _build(self, fields: tuple[Any, ...], context: tuple[str, str | None, ImageRef | None], digest: str) -> Finding:
        """The normalised finding of fields ``_read`` checked; never raises."""
        (vuln_id, pkg_name, artifact_type, locations, purl, severity_text, (fix_state, fix_versions),
         (match_types, matchers, suggested), (related, related_cvss), cvss, urls, links, data_source, namespace,
         language, version, description, (epss, kev, risk)) = fields  # fmt: skip
        scope_name, occurred_at, image = context
        path = package_path(artifact_type, locations)
        score, cvss_source, cvss_vector = cvss
        if score is None and related_cvss[0] is not None:
            score, cvss_source, cvss_vector = related_cvss  # e.g. a Debian record whose score is on the NVD record
        details: dict[str, Any] = {
            "fix_state": fix_state,
            "fix_versions": fix_versions,
            "suggested_version": suggested,
            "match_types": match_types,
            "matchers": matchers,
            "related_vulnerabilities": related,
            "namespace": namespace,
            "purl": purl,
            "locations": locations[:20],
            "language": language,
            "cvss_source": cvss_source,
            "cvss_vector": cvss_vector,
            "epss": epss[0] if isinstance(epss, list) and epss and isinstance(epss[0], dict) else None,
            "known_exploited": bool(kev) if isinstance(kev, list) else None,
            "risk": risk if isinstance(risk, (int, float)) else None,
        }
        return Finding(
            kind="vulnerability",
            source=self.name,
            rule_id=vuln_id,
            title=f"{vuln_id} in {pkg_name}",
            severity=normalise_severity(severity_text),  # Negligible -> low (see the module docstring)
            fingerprint=make_fingerprint("vuln", scope_name, vuln_id, pkg_name, path),
            image=image,
            package=PackageRef(name=pkg_name, version=version, fixed_version=", ".join(fix_versions), type=artifact_type, path=path),
            cvss=score,
            references=clean_references([data_source, *urls, *links]),
            occurred_at=occurred_at,
            description=description,
            details={k: v for k, v in details.items() if v not in ("", None, [])},
            entry_hash=digest,
        )

    @staticmethod
    def _fix(vuln: Mapping[str, Any], where: str) -> tuple[str, list[str]]:
        if vuln.get("fix") is not None:
            fix = expect_dict(vuln.get("fix"), f"{where}.fix")
            versions = [v for v in _string_list(fix.get("versions"), f"{where}.fix.versions") if v.strip()]
            return opt_str(fix, "state", f"{where}.fix", 64), versions
        fixed_in = opt_str(vuln, "fixedInVersion", where, 255)  # early Grype
        return ("fixed", [fixed_in]) if fixed_in else ("", [])

    @staticmethod
    def _match_details(value: Any, where: str) -> tuple[list[str], list[str], str]:
        """(match types, matchers, suggested fix version); early Grype has one object, not a list."""
        entries = [value] if isinstance(value, dict) else expect_list(value, where)
        types: list[str] = []
        matchers: list[str] = []
        suggested = ""
        for index, item in enumerate(entries):
            entry = expect_dict(item, f"{where}[{index}]")
            for key, bucket in (("type", types), ("matcher", matchers)):
                text = opt_str(entry, key, f"{where}[{index}]", 64)
                if text and text not in bucket:
                    bucket.append(text)
            fix = entry.get("fix")
            if isinstance(fix, dict) and not suggested:
                suggested = opt_str(fix, "suggestedVersion", f"{where}[{index}].fix", 255)
        return types, matchers, suggested

    @staticmethod
    def _related(value: Any, where: str) -> tuple[list[str], tuple[float | None, str, str]]:
        ids: list[str] = []
        best: tuple[float | None, str, str] = (None, "", "")
        for index, item in enumerate(expect_list(value, where)):
            entry = expect_dict(item, f"{where}[{index}]")
            related_id = opt_str(entry, "id", f"{where}[{index}]", 255)
            if related_id and related_id not in ids:
                ids.append(related_id)
            if best[0] is None:
                best = pick_grype_cvss(entry, f"{where}[{index}]")
        return ids, best


parser = GrypeParser()


def _merge(findings: dict[str, Finding], finding: Finding, _place: Any) -> None:
    """One package, one vulnerability, several matchers or locations: one finding."""
    first = findings.get(finding.fingerprint)
    if first is None:
        findings[finding.fingerprint] = finding
        return
    for key in ("match_types", "locations"):
        merged = first.details.setdefault(key, [])
        merged.extend(v for v in finding.details.get(key, []) if v not in merged)
