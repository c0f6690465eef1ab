"""trivy-operator custom resources (``aquasecurity.github.io/v1alpha1``), as JSON or YAML.

Accepted: one report object, a Kubernetes ``kind: List`` (``kubectl get ... -o json``), a JSON array
or a multi-document YAML stream of them.  Findings come from

- VulnerabilityReport / ClusterVulnerabilityReport: ``report.vulnerabilities[]``;
- ConfigAuditReport, RbacAssessmentReport, InfraAssessmentReport and their Cluster* variants:
  ``report.checks[]`` whose ``success`` is false (misconfigurations);
- ExposedSecretReport: ``report.secrets[]``.

Other trivy-operator kinds in a list (SbomReport, ClusterComplianceReport, ...) carry no findings
and are skipped.  The workload comes from the ``trivy-operator.resource.*`` labels, else from the
controller owner reference.  Identities match the ``trivy`` parser's, so the same vulnerability
in the same image repository has one fingerprint whichever Trivy front end reported it.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    opt_str,
)
from scanners.fingerprint import make_fingerprint, workload_name
from scanners.moments import latest_moment
from scanners.trivy import iso_timestamp, pick_cvss, severity_word

API_GROUP = "aquasecurity.github.io/"
VULNERABILITY_KINDS = ("VulnerabilityReport", "ClusterVulnerabilityReport")
CHECK_KINDS = (
    "ConfigAuditReport",
    "ClusterConfigAuditReport",
    "RbacAssessmentReport",
    "ClusterRbacAssessmentReport",
    "InfraAssessmentReport",
    "ClusterInfraAssessmentReport",
)
SECRET_KINDS = ("ExposedSecretReport",)
SUPPORTED_KINDS = VULNERABILITY_KINDS + CHECK_KINDS + SECRET_KINDS

LABEL_KIND = "trivy-operator.resource.kind"
LABEL_NAME = "trivy-operator.resource.name"
LABEL_NAMESPACE = "trivy-operator.resource.namespace"
LABEL_CONTAINER = "trivy-operator.container.name"


def _is_operator_object(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("apiVersion"), str)
        and value["apiVersion"].startswith(API_GROUP)
        and isinstance(value.get("kind"), str)
    )


def _is_report(value: Any) -> bool:
    return _is_operator_object(value) and value["kind"] in SUPPORTED_KINDS


def _items(document: Any) -> tuple[list[Any], str]:
    """The report objects and the path prefix their errors are reported under."""
    if isinstance(document, list):
        return document, ""
    if isinstance(document, dict) and document.get("kind") == "List":
        return expect_list(document.get("items"), "items"), "items"
    return [document], ""


class TrivyOperatorParser:
    name = "trivy-operator"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        if _is_report(document):
            return True
        items: Any = None
        if isinstance(document, list):
            items = document
        elif isinstance(document, dict) and document.get("kind") == "List":
            items = document.get("items")
        if not isinstance(items, list) or not items:
            return False
        return all(_is_operator_object(item) for item in items) and any(_is_report(item) for item in items)

    def parse(self, document: Any) -> ParseResult:
        items, prefix = _items(document)
        findings: dict[str, Finding] = {}
        evaluated: dict[ResourceRef, None] = {}
        images: dict[ImageRef, None] = {}
        labels: dict[str, str] = {}
        reports = 0
        times: list[str | None] = []  # when each report was last updated
        for index, item in enumerate(items):
            where = f"{prefix}[{index}]" if isinstance(document, list) or prefix else ""
            obj = expect_dict(item, where or "document")
            at = f"{where}." if where else ""
            api_version = opt_str(obj, "apiVersion", where or "document", 255)
            kind = opt_str(obj, "kind", where or "document", 255)
            if not api_version.startswith(API_GROUP):
                raise ParseError(f"{where or 'document'}: not a trivy-operator object (apiVersion {api_version or 'missing'!r})")
            if kind not in SUPPORTED_KINDS:
                continue  # SbomReport, ClusterComplianceReport, ...: no findings
            reports += 1
            metadata = expect_dict(obj.get("metadata") or {}, f"{at}metadata")
            resource, container = self._resource(metadata, kind, f"{at}metadata")
            evaluated[resource] = None
            report = expect_dict(obj.get("report"), f"{at}report")
            occurred_at = iso_timestamp(report.get("updateTimestamp")) or iso_timestamp(metadata.get("creationTimestamp"))
            times.append(occurred_at)
            image = self._image(report, f"{at}report")
            if image is not None:
                images[image] = None
            context = _Context(resource, image, container, occurred_at, kind)
            if kind in VULNERABILITY_KINDS:
                entries = expect_list(report.get("vulnerabilities"), f"{at}report.vulnerabilities")
                for v_index, entry in enumerate(entries):
                    _add(findings, self._vulnerability(entry, f"{at}report.vulnerabilities[{v_index}]", context))
            elif kind in CHECK_KINDS:
                for c_index, entry in enumerate(expect_list(report.get("checks"), f"{at}report.checks")):
                    check = self._check(entry, f"{at}report.checks[{c_index}]", context)
                    if check is not None:
                        _add(findings, check)
            else:
                for s_index, entry in enumerate(expect_list(report.get("secrets"), f"{at}report.secrets")):
                    _add(findings, self._secret(entry, f"{at}report.secrets[{s_index}]", context))
            if len(items) == 1:
                raw_labels = expect_dict(metadata.get("labels") or {}, f"{at}metadata.labels")
                labels = {clean_text(k, 255): clean_text(v, 255) for k, v in raw_labels.items() if isinstance(v, str)}
        if not reports:
            raise ParseError("no trivy-operator VulnerabilityReport, ConfigAuditReport or ExposedSecretReport found")
        return ParseResult(
            findings=list(findings.values()),
            artifact=next(iter(images)) if len(images) == 1 else None,
            evaluated=list(evaluated),
            labels=labels,
            observed_at=latest_moment(times),
        )

    @staticmethod
    def _resource(metadata: Mapping[str, Any], kind: str, where: str) -> tuple[ResourceRef, str]:
        labels = expect_dict(metadata.get("labels") or {}, f"{where}.labels")
        owner: Mapping[str, Any] = {}
        owners = expect_list(metadata.get("ownerReferences"), f"{where}.ownerReferences")
        for o_index, item in enumerate(owners):
            ref = expect_dict(item, f"{where}.ownerReferences[{o_index}]")
            if ref.get("controller") is True or not owner:
                owner = ref
        namespace = opt_str(labels, LABEL_NAMESPACE, f"{where}.labels", 255)
        if not namespace and not kind.startswith("Cluster"):
            namespace = opt_str(metadata, "namespace", where, 255)
        resource = ResourceRef(
            cluster="",
            namespace=namespace,
            kind=opt_str(labels, LABEL_KIND, f"{where}.labels", 255) or opt_str(owner, "kind", where, 255),
            name=opt_str(labels, LABEL_NAME, f"{where}.labels", 255) or opt_str(owner, "name", where, 255),
        )
        if not resource.kind or not resource.name:
            raise ParseError(
                f"{where}: cannot tell which workload the report is about (no {LABEL_KIND}/{LABEL_NAME} labels and no ownerReferences)"
            )
        return resource, opt_str(labels, LABEL_CONTAINER, f"{where}.labels", 255)

    @staticmethod
    def _image(report: Mapping[str, Any], where: str) -> ImageRef | None:
        if report.get("artifact") is None:
            return None
        artifact = expect_dict(report.get("artifact"), f"{where}.artifact")
        registry = expect_dict(report.get("registry") or {}, f"{where}.registry")
        repository = opt_str(artifact, "repository", f"{where}.artifact", 255)
        if not repository:
            return None
        server = opt_str(registry, "server", f"{where}.registry", 255)
        tag = opt_str(artifact, "tag", f"{where}.artifact", 128)
        digest = opt_str(artifact, "digest", f"{where}.artifact", 255)
        reference = f"{server}/{repository}" if server else repository
        if tag:
            reference += f":{tag}"
        if digest:
            reference += f"@{digest}"
        return ImageRef.parse(reference) or ImageRef.parse(f"{server}/{repository}" if server else repository)

    def _vulnerability(self, value: Any, where: str, context: _Context) -> Finding:
        vuln = expect_dict(value, where)
        vuln_id = opt_str(vuln, "vulnerabilityID", where, 255)
        pkg_name = opt_str(vuln, "resource", where, 255)
        if not vuln_id:
            raise ParseError(f"{where}: missing vulnerabilityID")
        if not pkg_name:
            raise ParseError(f"{where}: missing resource (the package name)")
        target = opt_str(vuln, "target", where, 1000)
        result_class = opt_str(vuln, "class", where, 64)
        pkg_path = opt_str(vuln, "pkgPath", where, 1000).lstrip("/")
        if not pkg_path and result_class == "lang-pkgs":
            pkg_path = target.lstrip("/")  # same rule as the trivy parser: a lock file is the path
        cvss = clean_cvss(vuln.get("score"))
        cvss_source = ""
        if cvss is None and vuln.get("cvss") is not None:
            cvss, cvss_source, _ = pick_cvss(vuln.get("cvss"), opt_str(vuln, "cvsssource", where, 64), where)
        fixed = opt_str(vuln, "fixedVersion", where, 255)
        links = expect_list(vuln.get("links"), f"{where}.links")
        scope = context.image.name if context.image else target
        details: dict[str, Any] = {
            "report_kind": context.report_kind,
            "container": context.container,
            "target": target,
            "class": result_class,
            "fixed_versions": [v.strip() for v in fixed.split(",") if v.strip()],
            "cvss_source": cvss_source,
            "published": iso_timestamp(vuln.get("publishedDate")),
            "last_modified": iso_timestamp(vuln.get("lastModifiedDate")),
        }
        return Finding(
            kind="vulnerability",
            source=self.name,
            rule_id=vuln_id,
            title=opt_str(vuln, "title", where, MAX_TITLE) or vuln_id,
            severity=severity_word(vuln, "severity", where),
            fingerprint=make_fingerprint("vuln", scope, vuln_id, pkg_name, pkg_path),
            image=context.image,
            package=PackageRef(
                name=pkg_name,
                version=opt_str(vuln, "installedVersion", where, 255),
                fixed_version=fixed,
                type=opt_str(vuln, "packageType", where, 64),
                path=pkg_path,
            ),
            resource=context.resource,
            cvss=cvss,
            references=clean_references([opt_str(vuln, "primaryLink", where, 2000), *links]),
            occurred_at=context.occurred_at,
            description=opt_str(vuln, "description", where),
            details={k: v for k, v in details.items() if v not in ("", None, [])},
        )

    def _check(self, value: Any, where: str, context: _Context) -> Finding | None:
        check = expect_dict(value, where)
        success = check.get("success")
        if not isinstance(success, bool):
            raise ParseError(f"{where}: success is not true or false")
        if success:
            return None
        check_id = opt_str(check, "checkID", where, 255) or opt_str(check, "ID", where, 255)
        if not check_id:
            raise ParseError(f"{where}: missing checkID")
        messages = [clean_text(m, 2000) for m in expect_list(check.get("messages"), f"{where}.messages") if m]
        description = opt_str(check, "description", where)
        details: dict[str, Any] = {
            "report_kind": context.report_kind,
            "category": opt_str(check, "category", where, 255),
            "messages": messages,
            "remediation": opt_str(check, "remediation", where),
        }
        return Finding(
            kind="misconfiguration",
            source=self.name,
            rule_id=check_id,
            title=opt_str(check, "title", where, MAX_TITLE) or check_id,
            severity=severity_word(check, "severity", where),
            # Same parts as trivy k8s misconfigurations: resource + check (never the messages).
            fingerprint=make_fingerprint("misconfig", *context.resource_parts(), "", "", check_id, ""),
            resource=context.resource,
            occurred_at=context.occurred_at,
            description="\n\n".join([*messages, description] if description else messages),
            details={k: v for k, v in details.items() if v not in ("", None, [])},
        )

    def _secret(self, value: Any, where: str, context: _Context) -> Finding:
        secret = expect_dict(value, where)
        rule_id = opt_str(secret, "ruleID", where, 255)
        if not rule_id:
            raise ParseError(f"{where}: missing ruleID")
        target = opt_str(secret, "target", where, 1000)
        details: dict[str, Any] = {
            "report_kind": context.report_kind,
            "container": context.container,
            "target": target,
            "category": opt_str(secret, "category", where, 255),
            # trivy-operator stores Trivy's redacted match; we keep no more than that.
            "match": opt_str(secret, "match", where, 1000),
        }
        return Finding(
            kind="secret",
            source=self.name,
            rule_id=rule_id,
            title=opt_str(secret, "title", where, MAX_TITLE) or rule_id,
            severity=severity_word(secret, "severity", where),
            fingerprint=make_fingerprint("secret", *context.resource_parts(), "", target, rule_id, ""),
            image=context.image,
            resource=context.resource,
            occurred_at=context.occurred_at,
            details={k: v for k, v in details.items() if v not in ("", None, [])},
        )


class _Context:
    def __init__(self, resource: ResourceRef, image: ImageRef | None, container: str, occurred_at: str | None, report_kind: str) -> None:
        self.resource = resource
        self.image = image
        self.container = container
        self.occurred_at = occurred_at
        self.report_kind = report_kind

    def resource_parts(self) -> tuple[str, str, str, str]:
        r = self.resource
        return r.cluster, r.namespace, r.kind, workload_name(r.name, kind=r.kind)


def _add(findings: dict[str, Finding], finding: Finding) -> None:
    """One finding per fingerprint: the same image's vulnerability in several workloads is listed once."""
    first = findings.get(finding.fingerprint)
    if first is None:
        findings[finding.fingerprint] = finding
        return
    if finding.resource is not None and finding.resource != first.resource:
        seen = first.details.setdefault("also_seen", [])
        place = {"resource": finding.resource.to_dict(), "container": finding.details.get("container", "")}
        if place not in seen and len(seen) < 100:
            seen.append(place)


parser = TrivyOperatorParser()
