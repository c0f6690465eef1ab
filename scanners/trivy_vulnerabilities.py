"""Trivy vulnerabilities: one entry of a result's ``Vulnerabilities`` becomes one finding, in two steps
(scanners/entries.py): ``_read`` reads and checks every field at parse time (all the errors are raised there),
``_build`` normalises them when the ingest needs the finding (never for an entry it knows unchanged).

Identity: image repository (or the target when there is no image) + ``VulnerabilityID`` + ``PkgName`` + package
path.  The entry's digest covers the fields read and the context the finding depends on (image name, result class
and type, Kubernetes resource, and the target where it is the identity or the path).  It leaves out what changes
with every build or database update and is kept in ``details`` only as the latest value, never a reason to rewrite
a finding (:data:`UNDIGESTED`; the ingest's VOLATILE_DETAILS, a test checks): the target text, which names the tag,
the layer, the last-modified date.  Nor the tag, digest or report time, which are occurrences.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from scanners.base import (
    MAX_TITLE,
    Finding,
    PackageRef,
    ParseError,
    clean_cvss,
    clean_references,
    clean_text,
    expect_dict,
    normalise_cwes,
    opt_str,
)
from scanners.entries import Entry, entry_digest
from scanners.fingerprint import make_fingerprint
from scanners.trivy_fields import Scope, clean_strings, iso_timestamp, section, section_str, severity_word, strings

SOURCE = "trivy"
#: Details the digest leaves out: they change with every build or update of the vulnerability database.
UNDIGESTED = ("target", "layer_digest", "layer_diff_id", "last_modified")


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


def vulnerability_entry(value: Any, where: str, scope: Scope, target: str, result_class: str, result_type: str) -> Entry:
    """The entry of one vulnerability: read and checked now (``ParseError`` with its path), normalised on demand."""
    fields, volatile = _read(value, where)
    resource = scope.resource
    where_found = (resource.cluster, resource.namespace, resource.kind, resource.name) if resource is not None else ()
    # The target only where it is part of the identity: the anchor without an image, a lock file's path.
    named_by_target = not scope.image or (not fields[2] and result_class == "lang-pkgs")
    context = (scope.image_name, target if named_by_target else "", result_class, result_type, where_found)
    digest = entry_digest(SOURCE, (context, fields))
    build = functools.partial(_build, fields, volatile, scope, target, result_class, result_type, digest)
    return Entry(digest=digest, image=scope.image, resource=resource, build=build, place=(target, scope))


def _read(value: Any, where: str) -> tuple[tuple[Any, ...], tuple[str, str, Any]]:
    """Every field the finding is built from, checked in the order a full parse checks them (the first error wins):
    those the digest covers, and the layer and last-modified date (:data:`UNDIGESTED`)."""
    vuln = expect_dict(value, where)
    vuln_id = opt_str(vuln, "VulnerabilityID", where, 255)
    pkg_name = opt_str(vuln, "PkgName", where, 255)
    if not vuln_id:
        raise ParseError(f"{where}: missing VulnerabilityID")
    if not pkg_name:
        raise ParseError(f"{where}: missing PkgName")
    pkg_path = opt_str(vuln, "PkgPath", where, 1000)
    severity_source = opt_str(vuln, "SeveritySource", where, 64)
    cvss = pick_cvss(vuln.get("CVSS"), severity_source, where)
    identifier = section(vuln, "PkgIdentifier", where)
    layer = section(vuln, "Layer", where)
    data_source = section(vuln, "DataSource", where)
    fixed = opt_str(vuln, "FixedVersion", where, 255)
    urls = (opt_str(vuln, "PrimaryURL", where, 2000), strings(vuln.get("References"), where, "References"))
    status = opt_str(vuln, "Status", where, 64)
    purl = section_str(identifier, "PURL", where, "PkgIdentifier", 1000)
    vendor_ids = clean_strings(vuln.get("VendorIDs"), where, "VendorIDs")
    data_id = section_str(data_source, "ID", where, "DataSource", 255)
    volatile = (
        section_str(layer, "Digest", where, "Layer", 255),
        section_str(layer, "DiffID", where, "Layer", 255),
        vuln.get("LastModifiedDate"),
    )
    fields = (
        vuln_id,
        pkg_name,
        pkg_path,
        severity_source,
        cvss,
        fixed,
        urls,
        status,
        purl,
        vendor_ids,
        data_id,
        vuln.get("PublishedDate"),
        opt_str(vuln, "Title", where, MAX_TITLE),
        severity_word(vuln, "Severity", where),
        opt_str(vuln, "InstalledVersion", where, 255),
        strings(vuln.get("CweIDs"), where, "CweIDs"),
        opt_str(vuln, "Description", where),
    )
    return fields, volatile


def _build(
    fields: tuple[Any, ...], volatile: tuple[str, str, Any], scope: Scope, target: str, result_class: str, result_type: str, digest: str
) -> Finding:
    """The normalised finding of fields ``_read`` checked; never raises."""
    (vuln_id, pkg_name, pkg_path, severity_source, cvss, fixed, urls, status, purl, vendor_ids, data_source, published,
     title, severity, installed, cwe_ids, description) = fields  # fmt: skip
    layer_digest, layer_diff_id, last_modified = volatile
    pkg_path = pkg_path.lstrip("/")
    if not pkg_path and result_class == "lang-pkgs":
        # Lock files (requirements.txt, package-lock.json, ...) have no PkgPath: the target is the path.
        pkg_path = target.lstrip("/")
    score, cvss_source, cvss_vector = cvss
    # Every value was cleaned within its field's limit when read (opt_str, clean_text, clean_references,
    # normalise_cwes, pick_cvss), so Finding(cleaned=True) does not clean it again.
    details: dict[str, Any] = {
        "target": target,
        "class": result_class,
        "fix_state": status,
        "fixed_versions": [v.strip() for v in fixed.split(",") if v.strip()] if fixed else None,
        "severity_source": severity_source,
        "cvss_source": clean_text(cvss_source),
        "cvss_vector": cvss_vector,
        "purl": purl,
        "vendor_ids": vendor_ids,
        "data_source": data_source,
        "layer_digest": layer_digest,
        "layer_diff_id": layer_diff_id,
        "published": iso_timestamp(published),
        "last_modified": iso_timestamp(last_modified),
    }
    return Finding(
        kind="vulnerability",
        source=SOURCE,
        rule_id=vuln_id,
        title=title or vuln_id,
        severity=severity,
        fingerprint=make_fingerprint("vuln", scope.image_name if scope.image else target, vuln_id, pkg_name, pkg_path),
        image=scope.image,
        package=PackageRef(name=pkg_name, version=installed, fixed_version=fixed, type=result_type, path=pkg_path),
        resource=scope.resource,
        cvss=score,
        cwe=normalise_cwes(cwe_ids),
        references=clean_references([urls[0], *urls[1]]),
        occurred_at=scope.occurred_at,
        description=description,
        details={k: v for k, v in details.items() if v},  # values are strings, lists or None
        entry_hash=digest,
        cleaned=True,
    )
