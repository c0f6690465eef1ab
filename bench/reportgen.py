"""Realistic Trivy JSON (schema 2) image reports of any size, for benchmarks and tests.

Deterministic for a given seed: findings are numbered, so "10 % removed and 10 % new"
variants are easy to build (``start`` shifts the numbering).
"""

from __future__ import annotations

import json
import random
from typing import Any

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
OS_PACKAGES = ["openssl", "libcrypto3", "zlib", "busybox", "musl", "curl", "libxml2", "expat", "sqlite-libs", "ncurses"]
LANG_PACKAGES = ["lodash", "jackson-databind", "requests", "log4j-core", "express", "django", "spring-web", "netty"]


def vulnerability(n: int, rng: random.Random) -> dict[str, Any]:
    lang = n % 3 == 0
    package = (LANG_PACKAGES if lang else OS_PACKAGES)[n % (len(LANG_PACKAGES) if lang else len(OS_PACKAGES))]
    severity = SEVERITIES[n % len(SEVERITIES)]
    score = round(rng.uniform(1, 10), 1)
    vuln: dict[str, Any] = {
        "VulnerabilityID": f"CVE-{2015 + n % 10}-{10000 + n}",
        "PkgID": f"{package}@1.{n % 7}.{n % 13}",
        "PkgName": package,
        "InstalledVersion": f"1.{n % 7}.{n % 13}",
        "FixedVersion": f"1.{n % 7}.{n % 13 + 1}" if n % 4 else "",
        "Status": "fixed" if n % 4 else "affected",
        "Layer": {"DiffID": "sha256:" + "ab" * 32},
        "SeveritySource": "nvd",
        "PrimaryURL": f"https://avd.aquasec.com/nvd/cve-{2015 + n % 10}-{10000 + n}",
        "Title": f"{package}: a problem in the parser number {n}",
        "Description": f"A flaw was found in {package}. " + "Details follow. " * (5 + n % 20),
        "Severity": severity,
        "CweIDs": [f"CWE-{20 + n % 700}"],
        "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": score}},
        "References": [f"https://example.com/advisories/{n}", f"https://nvd.nist.gov/vuln/detail/CVE-{2015 + n % 10}-{10000 + n}"],
        "PublishedDate": "2021-01-01T00:00:00Z",
        "LastModifiedDate": "2022-01-01T00:00:00Z",
    }
    if lang:
        vuln["PkgPath"] = f"app/node_modules/{package}/package-{n}.json"
    return vuln


def trivy_report(
    n_findings: int, *, start: int = 0, image: str = "registry.example.com/bench/app", tag: str = "1.0.0", seed: int = 7
) -> dict[str, Any]:
    rng = random.Random(seed)
    vulns = [vulnerability(n, rng) for n in range(start, start + n_findings)]
    os_vulns = [v for v in vulns if "PkgPath" not in v]
    lang_vulns = [v for v in vulns if "PkgPath" in v]
    return {
        "SchemaVersion": 2,
        "CreatedAt": "2026-11-27T10:00:00Z",
        "ArtifactName": f"{image}:{tag}",
        "ArtifactType": "container_image",
        "Metadata": {
            "OS": {"Family": "alpine", "Name": "3.19.1"},
            "ImageID": "sha256:" + "cd" * 32,
            "RepoTags": [f"{image}:{tag}"],
            "RepoDigests": [f"{image}@sha256:" + "ef" * 32],
            "ImageConfig": {"config": {"Labels": {"org.opencontainers.image.source": "https://github.com/example/app"}}},
        },
        "Results": [
            {"Target": f"{image}:{tag} (alpine 3.19.1)", "Class": "os-pkgs", "Type": "alpine", "Vulnerabilities": os_vulns},
            {"Target": "Node.js", "Class": "lang-pkgs", "Type": "node-pkg", "Vulnerabilities": lang_vulns},
        ],
    }


def trivy_bytes(n_findings: int, **kwargs: Any) -> bytes:
    return json.dumps(trivy_report(n_findings, **kwargs)).encode()


def trivy_bytes_of_size(target_bytes: int, **kwargs: Any) -> bytes:
    """A report of about ``target_bytes`` (within a few per cent): the finding count is sized from a sample."""
    sample = 1000
    per_finding = (len(trivy_bytes(2 * sample, **kwargs)) - len(trivy_bytes(sample, **kwargs))) / sample
    return trivy_bytes(max(1, int(target_bytes / per_finding)), **kwargs)
