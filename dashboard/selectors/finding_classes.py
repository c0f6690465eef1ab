"""What kind of mistake a finding is: a pure classifier (no ORM).

A finding maps to a set of *class keys*:

- ``vigil:<class>``: Vigil's own classes (``vigil:root-container``, ``vigil:missing-limits`` ...),
  derived from check ids, policy names, Falco rule names, package types and titles;
- ``cwe:CWE-<n>``: each CWE the tool reported;
- ``check:<ID>``: a Trivy / trivy-operator misconfiguration check id, normalised (``AVD-KSV-0012`` -> ``KSV012``);
- ``policy:<name>``: a Kyverno policy, a Gatekeeper constraint kind or name, an admission policy;
- ``falco:<rule name>``: a Falco rule, lower-cased.

Training topics (``dashboard.models.Topic``) list the keys they cover, so the catalogue can link a module to
a Vigil class, a CWE, a check id, a policy or a Falco rule without code changes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

#: Vigil's own classes, with the label people see.
VIGIL_CLASSES: dict[str, str] = {
    "root-container": "Containers running as root",
    "privileged": "Privileged containers",
    "privilege-escalation": "Privilege escalation allowed",
    "capabilities": "Extra Linux capabilities",
    "host-paths": "Host path mounts",
    "host-namespaces": "Host network, PID and IPC namespaces",
    "missing-limits": "Missing resource requests and limits",
    "read-only-root-fs": "Writable root filesystems",
    "seccomp": "Seccomp, AppArmor and SELinux profiles",
    "mutable-tags": "Mutable image tags",
    "untrusted-registries": "Untrusted registries",
    "image-signing": "Unverified image signatures",
    "outdated-base-image": "Outdated base images",
    "os-package-cves": "Known CVEs in OS packages",
    "vulnerable-dependencies": "Vulnerable application dependencies",
    "secrets-in-images": "Secrets in images",
    "shell-in-container": "Shells in containers",
    "writes-below-etc": "Writes below /etc",
    "cloud-metadata-access": "Cloud metadata access",
    "exposed-docker-daemon": "Exposed Docker daemon",
    "container-drift": "Container drift (new binaries at run time)",
    "sensitive-files": "Reading sensitive files",
    "rbac": "RBAC and service account permissions",
    "network-policies": "Network policies",
    "namespaces": "Namespaces and workload isolation",
    "dockerfile-practices": "Dockerfile practices",
    "kubernetes-cis": "Kubernetes node and control-plane hardening",
    "docker-host-hardening": "Docker host hardening",
    "runtime-threat": "Suspicious activity at run time",
    "admission-policy": "Deploys denied by admission policies",
}

#: Package types that are operating-system packages (Trivy OS families, Grype/Syft types, purl types).
OS_PACKAGE_TYPES = frozenset(
    {
        "alpine",
        "debian",
        "ubuntu",
        "redhat",
        "centos",
        "rocky",
        "alma",
        "almalinux",
        "amazon",
        "oracle",
        "photon",
        "suse",
        "opensuse",
        "opensuse.leap",
        "opensuse.tumbleweed",
        "sles",
        "slem",
        "cbl-mariner",
        "azurelinux",
        "wolfi",
        "chainguard",
        "bottlerocket",
        "echo",
        "minimos",
        "fedora",
        "apk",
        "deb",
        "dpkg",
        "rpm",
        "os",
        "os-pkgs",
    }
)

#: Trivy Kubernetes checks (KSVnnn) -> Vigil class.  Ids follow trivy-checks' avd_docs.
KSV_CLASSES: dict[int, str] = {
    1: "privilege-escalation",
    2: "seccomp",
    3: "capabilities",
    4: "capabilities",
    5: "privileged",
    6: "exposed-docker-daemon",
    8: "host-namespaces",
    9: "host-namespaces",
    10: "host-namespaces",
    11: "missing-limits",
    12: "root-container",
    13: "mutable-tags",
    14: "read-only-root-fs",
    15: "missing-limits",
    16: "missing-limits",
    17: "privileged",
    18: "missing-limits",
    20: "root-container",
    21: "root-container",
    22: "capabilities",
    23: "host-paths",
    24: "host-namespaces",
    25: "seccomp",
    26: "seccomp",
    27: "privileged",
    28: "host-paths",
    29: "root-container",
    30: "seccomp",
    32: "untrusted-registries",
    33: "untrusted-registries",
    34: "untrusted-registries",
    35: "untrusted-registries",
    36: "rbac",
    37: "namespaces",
    38: "network-policies",
    39: "missing-limits",
    40: "missing-limits",
    **dict.fromkeys(range(41, 57), "rbac"),
    103: "privileged",
    104: "seccomp",
    105: "root-container",
    106: "capabilities",
    110: "namespaces",
    **dict.fromkeys(range(111, 116), "rbac"),
    116: "root-container",
    117: "capabilities",
    119: "capabilities",
    121: "host-paths",
}

#: Trivy Dockerfile checks (DSnnn) with a more specific class than "dockerfile-practices".
DS_CLASSES: dict[int, str] = {1: "mutable-tags", 2: "root-container", 4: "shell-in-container", 25: "secrets-in-images"}

#: Other tools' rule ids with a known class (Dockle's CIS-DI checks, Checkov's Dockerfile checks).
RULE_CLASSES: dict[str, str] = {
    "CIS-DI-0001": "root-container",
    "CIS-DI-0005": "image-signing",
    "CIS-DI-0006": "dockerfile-practices",
    "CIS-DI-0008": "privilege-escalation",
    "CIS-DI-0009": "dockerfile-practices",
    "CIS-DI-0010": "secrets-in-images",
    "CKV_DOCKER_2": "dockerfile-practices",
    "CKV_DOCKER_3": "root-container",
    "CKV_DOCKER_7": "mutable-tags",
}

#: Keywords in policy names, Falco rule names and titles -> Vigil class.  First match wins per keyword.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("latesttag", "mutable-tags"),
    ("imagetag", "mutable-tags"),
    ("mutabletag", "mutable-tags"),
    ("disallowlatest", "mutable-tags"),
    ("allowedrepos", "untrusted-registries"),
    ("allowedregistr", "untrusted-registries"),
    ("trustedregistr", "untrusted-registries"),
    ("restrictimageregistr", "untrusted-registries"),
    ("invalidimagerepo", "untrusted-registries"),
    ("prodrepois", "untrusted-registries"),
    ("verifyimage", "image-signing"),
    ("verifysignature", "image-signing"),
    ("imagesignature", "image-signing"),
    ("notary", "image-signing"),
    ("cosign", "image-signing"),
    ("privilegeescalation", "privilege-escalation"),
    ("privileged", "privileged"),
    ("runasnonroot", "root-container"),
    ("runasroot", "root-container"),
    ("rootuser", "root-container"),
    ("asroot", "root-container"),
    ("nonroot", "root-container"),
    ("hostpath", "host-paths"),
    ("sensitivemount", "host-paths"),
    ("hostnamespace", "host-namespaces"),
    ("hostnetwork", "host-namespaces"),
    ("hostpid", "host-namespaces"),
    ("hostipc", "host-namespaces"),
    ("hostport", "host-namespaces"),
    ("containerlimits", "missing-limits"),
    ("requestslimits", "missing-limits"),
    ("resourcelimits", "missing-limits"),
    ("nolimits", "missing-limits"),
    ("hasnoresourcelimits", "missing-limits"),
    ("requiredresources", "missing-limits"),
    ("capabilit", "capabilities"),
    ("packetsocket", "capabilities"),
    ("ptrace", "capabilities"),
    ("seccomp", "seccomp"),
    ("apparmor", "seccomp"),
    ("selinux", "seccomp"),
    ("readonlyroot", "read-only-root-fs"),
    ("dockersock", "exposed-docker-daemon"),
    ("dockersocket", "exposed-docker-daemon"),
    ("containerruntimesocket", "exposed-docker-daemon"),
    ("tlsauthenticationfordockerdaemon", "exposed-docker-daemon"),
    ("writebelowetc", "writes-below-etc"),
    ("belowetc", "writes-below-etc"),
    ("metadataservice", "cloud-metadata-access"),
    ("instancemetadata", "cloud-metadata-access"),
    ("cloudmetadata", "cloud-metadata-access"),
    ("terminalshell", "shell-in-container"),
    ("shellincontainer", "shell-in-container"),
    ("rundshelluntrusted", "shell-in-container"),
    ("runshelluntrusted", "shell-in-container"),
    ("redirectstdout", "shell-in-container"),
    ("reverseshell", "shell-in-container"),
    ("ephemeralcontainer", "shell-in-container"),
    ("execintocontainer", "shell-in-container"),
    ("dropandexecute", "container-drift"),
    ("containerdrift", "container-drift"),
    ("newbinary", "container-drift"),
    ("sensitivefile", "sensitive-files"),
    ("secret", "secrets-in-images"),
    ("networkpolic", "network-policies"),
    ("defaultnamespace", "namespaces"),
    ("clusteradmin", "rbac"),
    ("serviceaccount", "rbac"),
    ("k8sapiserver", "rbac"),
    ("rolebinding", "rbac"),
    ("miner", "runtime-threat"),
    ("cryptomin", "runtime-threat"),
)

#: Keywords in CIS benchmark titles (docker-bench, kube-bench) that name a container-level class.
_COMPLIANCE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("tlsauthenticationfordockerdaemon", "exposed-docker-daemon"),
    ("dockersocketisnotmounted", "exposed-docker-daemon"),
    ("userforthecontainerhasbeencreated", "root-container"),
    ("privilegedcontainersarenotused", "privileged"),
    ("acquiringadditionalprivileges", "privilege-escalation"),
    ("acquiringnewprivileges", "privilege-escalation"),
    ("memoryusageforcontainersislimited", "missing-limits"),
    ("cpupriorityissetappropriately", "missing-limits"),
    ("pidscgrouplimit", "missing-limits"),
    ("rootfilesystemismountedasreadonly", "read-only-root-fs"),
    ("insecureregistries", "untrusted-registries"),
    ("seccompprofile", "seccomp"),
    ("selinuxsecurityoptions", "seccomp"),
    ("apparmorprofile", "seccomp"),
    ("hostsnetworknamespace", "host-namespaces"),
    ("hostsprocessnamespace", "host-namespaces"),
    ("hostsipcnamespace", "host-namespaces"),
    ("sensitivehostsystemdirectories", "host-paths"),
    ("linuxkernelcapabilities", "capabilities"),
    ("healthcheckinstructions", "dockerfile-practices"),
)

_CHECK_ID = re.compile(r"^(?:AVD-)?(?P<family>[A-Z]{2,4})-?(?P<number>\d{1,4})$")
_CWE = re.compile(r"^(?:CWE)?[-_ ]?(?P<number>\d{1,5})$", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
POLICY_SOURCES = frozenset({"kyverno", "gatekeeper", "admission-review"})


@dataclasses.dataclass(frozen=True)
class FindingFacts:
    """The fields of a finding that its classes depend on."""

    kind: str
    source: str
    rule_id: str
    title: str = ""
    cwe: tuple[str, ...] = ()
    package_name: str = ""
    package_type: str = ""
    fixed_version: str = ""
    resource_kind: str = ""
    details_class: str = ""
    purl: str = ""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> FindingFacts:
        """From a ``Finding`` or a ``.values()`` row (``details`` optional)."""
        details = values.get("details") or {}
        cwe = values.get("cwe") or ()
        return cls(
            kind=values.get("kind") or "",
            source=values.get("source") or "",
            rule_id=values.get("rule_id") or "",
            title=values.get("title") or "",
            cwe=tuple(str(item) for item in cwe if item) if isinstance(cwe, (list, tuple)) else (),
            package_name=values.get("package_name") or "",
            package_type=values.get("package_type") or "",
            fixed_version=values.get("fixed_version") or "",
            resource_kind=values.get("resource_kind") or "",
            details_class=str(details.get("class") or "") if isinstance(details, Mapping) else "",
            purl=str(details.get("purl") or "") if isinstance(details, Mapping) else "",
        )

    @classmethod
    def of(cls, finding: Any) -> FindingFacts:
        return cls.from_values({name: getattr(finding, name, None) for name in FACT_FIELDS})


#: Finding columns the classifier reads (use with ``.values(*FACT_FIELDS)``).
FACT_FIELDS = ("kind", "source", "rule_id", "title", "cwe", "package_name", "package_type", "fixed_version", "resource_kind", "details")


def squash(text: str) -> str:
    """Lower-case letters and digits only: ``Disallow-Latest_Tag`` -> ``disallowlatesttag``."""
    return _NOT_ALNUM.sub("", text.lower())


def normalise_check_id(rule_id: str) -> str | None:
    """``AVD-KSV-0012`` / ``KSV012`` / ``ksv-12`` -> ``KSV012``; None when it is not a check id."""
    match = _CHECK_ID.match(rule_id.strip().upper())
    if match is None or match.group("family") in ("CVE", "GHSA", "CWE"):
        return None
    return f"{match.group('family')}{int(match.group('number')):03d}"


def normalise_cwe(value: str) -> str | None:
    match = _CWE.match(value.strip())
    return f"CWE-{int(match.group('number'))}" if match else None


def policy_names(source: str, rule_id: str) -> list[str]:
    """The policy names in a policy result's rule id: ``policy/rule`` (Kyverno) or ``Kind/name`` (Gatekeeper)."""
    parts = [part.strip() for part in rule_id.split("/") if part.strip()]
    if not parts:
        return []
    if source == "gatekeeper" or (len(parts) == 2 and parts[0][:3] == "K8s"):
        return parts[:2]
    return parts[:1]


def keyword_classes(*texts: str, table: tuple[tuple[str, str], ...] = _KEYWORDS) -> set[str]:
    found: set[str] = set()
    for text in texts:
        flat = squash(text)
        if not flat:
            continue
        for keyword, klass in table:
            if keyword in flat:
                found.add(klass)
    return found


def is_os_package(facts: FindingFacts) -> bool:
    if facts.details_class == "os-pkgs":
        return True
    if facts.package_type.strip().lower() in OS_PACKAGE_TYPES:
        return True
    return facts.purl.startswith(("pkg:apk/", "pkg:deb/", "pkg:rpm/", "pkg:alpm/"))


def _vulnerability_classes(facts: FindingFacts) -> set[str]:
    if not facts.package_name and not facts.package_type:
        return set()
    if is_os_package(facts):
        classes = {"os-package-cves"}
        if facts.fixed_version:
            classes.add("outdated-base-image")
        return classes
    return {"vulnerable-dependencies"}


def _check_classes(check: str) -> set[str]:
    family, number = check[:-3], int(check[-3:])
    if family == "KSV":
        return {KSV_CLASSES[number]} if number in KSV_CLASSES else set()
    if family == "DS":
        return {DS_CLASSES.get(number, "dockerfile-practices"), "dockerfile-practices"}
    return set()


def _vigil_classes(facts: FindingFacts, check: str | None) -> set[str]:
    kind = facts.kind
    if kind == "vulnerability":
        return _vulnerability_classes(facts)
    if kind == "secret":
        return {"secrets-in-images"}
    classes = _check_classes(check) if check else set()
    if kind == "runtime":
        classes |= keyword_classes(facts.rule_id, facts.title)
        return classes or {"runtime-threat"}
    if kind == "compliance":
        classes |= keyword_classes(facts.title, table=_COMPLIANCE_KEYWORDS)
        if facts.source == "docker-bench":
            classes.add("docker-host-hardening")
        elif facts.source == "kube-bench":
            classes.add("kubernetes-cis")
        return classes
    known = RULE_CLASSES.get(facts.rule_id.strip().upper())
    if known:
        classes.add(known)
    if not classes:
        names = policy_names(facts.source, facts.rule_id) if kind == "policy" else [facts.rule_id]
        classes = keyword_classes(*names) or keyword_classes(facts.title)
    if kind == "policy" and not classes and facts.source in POLICY_SOURCES:
        classes.add("admission-policy")
    return classes


@lru_cache(maxsize=8192)
def classes_for(facts: FindingFacts) -> frozenset[str]:
    """Every class key of a finding (Vigil classes, CWEs, check ids, policies, Falco rules)."""
    keys: set[str] = set()
    check = normalise_check_id(facts.rule_id) if facts.kind in ("misconfiguration", "policy", "compliance") else None
    if check is not None and facts.source not in ("docker-bench", "kube-bench"):
        keys.add(f"check:{check}")
    else:
        check = None
    keys |= {f"vigil:{klass}" for klass in _vigil_classes(facts, check)}
    for value in facts.cwe:
        cwe = normalise_cwe(value)
        if cwe:
            keys.add(f"cwe:{cwe}")
    if facts.kind == "policy" or facts.source in POLICY_SOURCES:
        keys |= {f"policy:{name}" for name in policy_names(facts.source, facts.rule_id)}
    if facts.kind == "runtime" or facts.source == "falco":
        keys.add(f"falco:{facts.rule_id.strip().lower()}")
    return frozenset(keys)


def nudge_classes_for(facts: FindingFacts) -> frozenset[str]:
    """The keys that count towards nudges.

    A CVE in a third-party package is not a mistake the team wrote: its CWE says what the library got wrong.
    Those findings count as "OS package CVEs" or "vulnerable dependencies", never by CWE.
    """
    keys = classes_for(facts)
    if facts.kind == "vulnerability" and (facts.package_name or facts.package_type):
        return frozenset(key for key in keys if not key.startswith("cwe:"))
    return keys


def matching_topics(keys: Iterable[str], topic_keys: Mapping[int, Iterable[str]]) -> list[int]:
    """Topic ids (in ``topic_keys`` order) whose keys share at least one key with ``keys``."""
    wanted = {key.lower() for key in keys}
    return [topic_id for topic_id, candidates in topic_keys.items() if wanted & {key.lower() for key in candidates}]


def class_label(key: str) -> str:
    """A readable label for a class key."""
    family, _, value = key.partition(":")
    if family == "vigil":
        return VIGIL_CLASSES.get(value, value)
    if family == "falco":
        return f"Falco rule “{value}”"
    if family == "policy":
        return f"policy {value}"
    return value
