"""Kyverno policy reports: wgpolicyk8s.io PolicyReport / ClusterPolicyReport and openreports.io Report / ClusterReport.

The format is the report *shape*: any engine that writes these CRDs (Kyverno, Falco's policy-report adapter,
image scanners writing OpenReports) is parsed here.  Accepted documents: one report, a Kubernetes ``List`` of
reports, or a list of reports (multi-document YAML).

Only ``fail``, ``warn`` and ``error`` results are findings; every result (including ``pass`` and ``skip``)
names a resource that was evaluated, which the lifecycle uses to close findings by absence.  A result with
``scored: false`` is downgraded from fail to warn.  Severity comes from ``result.severity`` when present,
else fail → medium, warn → low, error → low.

Kyverno's policy-reporter forwards reports one *result* per request to a webhook target (its
``pkg/target/http`` Result: ``policy``, ``rule``, ``status``, ``resource``, ``message``, ``severity``, ...)
and sends ``{"event": "heartbeat"}`` keep-alives.  A lone result is read as the one result of a report on
its resource: it speaks for that result only, so it closes nothing by absence; a ``pass`` or ``skip``
resolves exactly that (resource, policy, rule) (``ParseResult.resolved``).  A heartbeat has no findings.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from scanners.base import (
    Finding,
    PackageRef,
    ParseError,
    ParseResult,
    ResourceRef,
    clean_references,
    clean_text,
    expect_dict,
    expect_list,
    normalise_severity,
    opt_str,
    req_str,
    type_name,
)
from scanners.fingerprint import make_fingerprint, workload_name
from scanners.kubernetes import join_path, objects_in
from scanners.moments import latest_moment, parse_moment
from scanners.trivy import iso_timestamp

_GROUPS = ("wgpolicyk8s.io/", "openreports.io/")
_REPORT_KINDS = frozenset({"PolicyReport", "ClusterPolicyReport", "Report", "ClusterReport"})
_CLUSTER_KINDS = frozenset({"ClusterPolicyReport", "ClusterReport"})
_RESULTS = frozenset({"pass", "fail", "warn", "error", "skip"})
_FINDING_RESULTS = frozenset({"fail", "warn", "error"})
_DEFAULT_SEVERITY = {"fail": "medium", "warn": "low", "error": "low"}


def _is_report(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    api_version = value.get("apiVersion")
    kind = value.get("kind")
    return isinstance(api_version, str) and api_version.startswith(_GROUPS) and isinstance(kind, str) and kind in _REPORT_KINDS


def timestamp_to_iso(value: Any, where: str) -> str | None:
    """A protobuf-style ``{seconds, nanos}`` timestamp as ISO 8601 (UTC), or None when absent."""
    if value is None:
        return None
    stamp = expect_dict(value, where)
    seconds = stamp.get("seconds")
    nanos = stamp.get("nanos") or 0
    if seconds is None:
        return None
    if isinstance(seconds, str) and seconds.isdigit():
        seconds = int(seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ParseError(f"{where}: seconds is not an integer")
    if isinstance(nanos, bool) or not isinstance(nanos, int) or not 0 <= nanos < 1_000_000_000:
        raise ParseError(f"{where}: nanos is not an integer in 0..999999999")
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where}: seconds {seconds} is out of range") from None
    return moment.replace(microsecond=nanos // 1000).isoformat()


class KyvernoParser:
    name = "kyverno"
    stream = "admission"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        if _is_lone_result(document) or _is_heartbeat(document):
            return True
        try:
            candidates = objects_in(document)
        except ParseError:
            return False
        return bool(candidates) and all(_is_report(obj) for _, obj in candidates)

    def parse(self, document: Any) -> ParseResult:
        if _is_heartbeat(document):
            return ParseResult(findings=[])
        if _is_lone_result(document):
            return self._parse_lone_result(document)
        if not isinstance(document, (dict, list)):
            raise ParseError(f"not a policy report: expected an object or a list, got {type_name(document)}")
        findings: list[Finding] = []
        evaluated: list[ResourceRef] = []
        pairs: list[tuple[ResourceRef | None, str]] = []
        times: list[Any] = []
        for where, report in objects_in(document):
            self._parse_report(report, where, findings, evaluated, pairs)
            times.append(_report_time(report))
        return ParseResult(findings=findings, evaluated=evaluated, evaluated_policies=pairs, observed_at=latest_moment(times))

    def _parse_lone_result(self, result: Mapping[str, Any]) -> ParseResult:
        """policy-reporter's webhook body, read as a report with this one result on its resource."""
        status = req_str(result, "status", "result").strip().lower()
        if status not in _RESULTS:
            raise ParseError(f"status: unknown result {status!r} (expected pass, fail, warn, error or skip)")
        policy = req_str(result, "policy", "result")
        rule = opt_str(result, "rule", "result", 255)
        cluster_level = not result.get("resource")  # a check of the cluster itself: policy-reporter omits the resource
        resource_raw = {} if cluster_level else self._object_ref(expect_dict(result["resource"], "resource"), "resource")
        namespace = resource_raw.get("namespace", "")
        one = {key: result[key] for key in _LONE_RESULT_KEYS if key in result}
        one.update(result=status, resources=[] if cluster_level else [resource_raw])
        stamp = iso_timestamp(result.get("creationTimestamp"))
        if stamp is not None and stamp >= "1970":  # Go's zero time when the result had none
            moment = datetime.datetime.fromisoformat(stamp)
            one["timestamp"] = {"seconds": int(moment.timestamp()), "nanos": moment.microsecond * 1000}
        report = {
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
            "metadata": {"namespace": namespace},
            "results": [one],
        }
        findings: list[Finding] = []
        self._parse_report(report, "", findings, [], [])
        if cluster_level:
            # The same identity as that result in a ClusterPolicyReport (no resource), shown on the cluster.
            findings = [dataclasses.replace(finding, resource=CLUSTER_RESOURCE) for finding in findings]
        resource = None if cluster_level else self._resource(resource_raw, namespace, not namespace)
        resolved = [] if status in _FINDING_RESULTS else [_fingerprint(resource, namespace, policy, rule)]
        observed = parse_moment(result.get("creationTimestamp"))
        return ParseResult(findings=findings, incomplete_policies=[policy], resolved=resolved, observed_at=observed)

    # ------------------------------------------------------------------

    def _parse_report(
        self,
        value: Any,
        where: str,
        findings: list[Finding],
        evaluated: list[ResourceRef],
        pairs: list[tuple[ResourceRef | None, str]],
    ) -> None:
        report, header = self._header(value, where)
        if header.scope is not None:
            _add(evaluated, header.scope)
        results = expect_list(report.get("results"), join_path(where, "results"))
        for index, raw in enumerate(results):
            result_where = f"{join_path(where, 'results')}[{index}]"
            result = expect_dict(raw, result_where)
            resources = self._result_resources(result, result_where, header)
            for ref, _ in resources:
                _add(evaluated, ref)
            outcome = req_str(result, "result", result_where).strip().lower()
            if outcome not in _RESULTS:
                raise ParseError(f"{result_where}: unknown result {outcome!r} (expected pass, fail, warn, error or skip)")
            policy = req_str(result, "policy", result_where)
            for ref, _ in resources:
                _add_pair(pairs, (ref, policy))
            if outcome in _FINDING_RESULTS:
                findings.extend(self._result_findings(result, result_where, header, outcome=outcome, policy=policy, resources=resources))

    def _header(self, value: Any, where: str) -> tuple[Mapping[str, Any], _Report]:
        """The report and what its results share: kind, namespace, name, source and scope."""
        label = where or "report"
        report = expect_dict(value, label)
        if not _is_report(report):
            api_version = report.get("apiVersion")
            raise ParseError(
                f"{label}: not a policy report (apiVersion {api_version!r}, kind {report.get('kind')!r}); expected "
                "wgpolicyk8s.io PolicyReport/ClusterPolicyReport or openreports.io Report/ClusterReport"
            )
        report_kind = str(report["kind"])
        cluster_scoped = report_kind in _CLUSTER_KINDS
        metadata = expect_dict(report.get("metadata") or {}, join_path(where, "metadata"))
        report_namespace = "" if cluster_scoped else opt_str(metadata, "namespace", join_path(where, "metadata"))
        report_name = opt_str(metadata, "name", join_path(where, "metadata"))
        scope: ResourceRef | None = None
        scope_raw: dict[str, str] = {}
        if report.get("scope") is not None:
            scope_where = join_path(where, "scope")
            scope_raw = self._object_ref(expect_dict(report["scope"], scope_where), scope_where)
            scope = self._resource(scope_raw, report_namespace, cluster_scoped)
        report_source = opt_str(report, "source", label)
        header = _Report(report_kind, cluster_scoped, report_namespace, report_name, report_source, scope, scope_raw)
        return report, header

    def _result_resources(self, result: Mapping[str, Any], result_where: str, header: _Report) -> list[tuple[ResourceRef, dict[str, str]]]:
        """The resources a result names (with their raw references), else the report's scope."""
        resources: list[tuple[ResourceRef, dict[str, str]]] = []
        for sub, entry in enumerate(expect_list(result.get("resources"), f"{result_where}.resources")):
            entry_where = f"{result_where}.resources[{sub}]"
            ref_raw = self._object_ref(expect_dict(entry, entry_where), entry_where)
            resources.append((self._resource(ref_raw, header.namespace, header.cluster_scoped), ref_raw))
        if not resources and header.scope is not None:
            resources.append((header.scope, header.scope_raw))
        return resources

    def _result_findings(
        self,
        result: Mapping[str, Any],
        result_where: str,
        header: _Report,
        *,
        outcome: str,
        policy: str,
        resources: list[tuple[ResourceRef, dict[str, str]]],
    ) -> list[Finding]:
        """A failed (or warned, errored) result as one finding per resource it names, or one without a resource."""
        rule = opt_str(result, "rule", result_where, 255)
        scored = result.get("scored")
        if scored is not None and not isinstance(scored, bool):
            raise ParseError(f"{result_where}: scored is not a boolean")
        effective = "warn" if outcome == "fail" and scored is False else outcome
        severity_word = opt_str(result, "severity", result_where, 64)
        severity = normalise_severity(severity_word) if severity_word else "unknown"
        if severity == "unknown":
            severity = _DEFAULT_SEVERITY[effective]
        message = opt_str(result, "message", result_where)
        properties = self._properties(result.get("properties"), f"{result_where}.properties")
        occurred_at = timestamp_to_iso(result.get("timestamp"), f"{result_where}.timestamp")
        references = clean_references([properties.get("primaryURL"), properties.get("url")])
        details: dict[str, Any] = {"policy": policy, "rule": rule, "result": outcome, "effective_result": effective}
        details.update(_result_details(result, result_where, header, scored=scored, properties=properties))
        title = message.strip().splitlines()[0] if message.strip() else (f"{policy} {rule}".strip())
        targets: list[tuple[ResourceRef | None, dict[str, str]]] = list(resources) or [(None, {})]
        findings = []
        for resource, raw_ref in targets:
            finding_details = dict(details)
            if raw_ref.get("name") and resource is not None and raw_ref["name"] != resource.name:
                finding_details["resource_name"] = raw_ref["name"]
            if raw_ref.get("uid"):
                finding_details["resource_uid"] = raw_ref["uid"]
            findings.append(
                Finding(
                    kind="policy",
                    source=self.name,
                    rule_id=f"{policy}/{rule}" if rule else policy,
                    title=title,
                    severity=severity,
                    fingerprint=_fingerprint(resource, header.namespace, policy, rule),
                    resource=resource,
                    package=_package(properties),
                    references=references,
                    occurred_at=occurred_at,
                    description=message,
                    details=finding_details,
                )
            )
        return findings

    @staticmethod
    def _object_ref(ref: Mapping[str, Any], where: str) -> dict[str, str]:
        out = {key: opt_str(ref, key, where, 255) for key in ("apiVersion", "kind", "name", "namespace", "uid")}
        if not out["kind"] and not out["name"]:
            raise ParseError(f"{where}: resource has neither kind nor name")
        return out

    @staticmethod
    def _resource(ref: Mapping[str, str], report_namespace: str, cluster_scoped: bool) -> ResourceRef:
        kind = ref.get("kind", "")
        namespace = ref.get("namespace", "") or ("" if cluster_scoped else report_namespace)
        return ResourceRef(cluster="", namespace=namespace, kind=kind, name=workload_name(ref.get("name", ""), kind=kind))

    @staticmethod
    def _properties(value: Any, where: str) -> dict[str, str]:
        if value is None:
            return {}
        properties = expect_dict(value, where)
        out: dict[str, str] = {}
        for key, item in properties.items():
            if item is None or isinstance(item, (dict, list)):
                continue
            out[clean_text(key, 255)] = clean_text(item, 2000)
        return out


#: The keys of a policy-reporter result that a report's result has too (``status`` is ``result`` there).
_LONE_RESULT_KEYS = ("policy", "rule", "message", "severity", "category", "scored", "properties", "source")


#: Where a cluster-level result (no resource) is shown: on the cluster itself.
CLUSTER_RESOURCE = ResourceRef(cluster="", namespace="", kind="Cluster", name="")


def _is_lone_result(value: Any) -> bool:
    """policy-reporter's webhook body: one result, with ``status`` and the ``resource`` it is about; a
    cluster-level check has no resource, and is told from other JSON by policy-reporter's own fields."""
    if not isinstance(value, dict) or "status" not in value or not isinstance(value.get("policy"), str):
        return False
    if isinstance(value.get("resource"), dict):
        return True
    return value.get("resource") is None and "results" not in value and {"creationTimestamp", "scored"} <= value.keys()


def _is_heartbeat(value: Any) -> bool:
    return isinstance(value, dict) and value.get("event") == "heartbeat" and "policy" not in value and "results" not in value


def _fingerprint(resource: ResourceRef | None, report_namespace: str, policy: str, rule: str) -> str:
    """A policy result's identity: (cluster, namespace, kind, name, policy, rule)."""
    if resource is None:
        return make_fingerprint("policy", "", report_namespace, "", "", policy, rule)
    return make_fingerprint("policy", resource.cluster, resource.namespace, resource.kind, resource.name, policy, rule)


def _add_pair(pairs: list[tuple[ResourceRef | None, str]], pair: tuple[ResourceRef | None, str]) -> None:
    if pair not in pairs:
        pairs.append(pair)


def _add(resources: list[ResourceRef], resource: ResourceRef) -> None:
    if resource not in resources:
        resources.append(resource)


@dataclasses.dataclass(frozen=True)
class _Report:
    """What the results of one policy report share."""

    kind: str
    cluster_scoped: bool
    namespace: str
    name: str
    source: str
    scope: ResourceRef | None
    scope_raw: dict[str, str]


def _package(properties: Mapping[str, str]) -> PackageRef | None:
    """The package a result's properties name (a vulnerability reported through a policy report)."""
    if not properties.get("pkgName"):
        return None
    return PackageRef(
        name=clean_text(properties["pkgName"], 255),
        version=clean_text(properties.get("installedVersion", ""), 255),
        fixed_version=clean_text(properties.get("fixedVersion", ""), 255),
    )


def _result_details(
    result: Mapping[str, Any], result_where: str, header: _Report, *, scored: bool | None, properties: Mapping[str, str]
) -> dict[str, Any]:
    """The rest of a result's details, after its policy, rule and outcome (only the keys it gives)."""
    details: dict[str, Any] = {"report_kind": header.kind}
    if scored is not None:
        details["scored"] = scored
    for key in ("category", "source"):
        text = opt_str(result, key, result_where, 255)
        if text:
            details[key] = text
    if "source" not in details and header.source:
        details["source"] = header.source
    if header.name:
        details["report"] = header.name
    if properties:
        details["properties"] = properties
    return details


parser = KyvernoParser()


def _report_time(report: Any) -> Any:
    """When a policy report was last evaluated: its latest result's timestamp, else when it was created."""
    if not isinstance(report, dict):
        return None
    results = report.get("results")
    latest = latest_moment(r.get("timestamp") for r in results if isinstance(r, dict)) if isinstance(results, list) else None
    metadata = report.get("metadata")
    return latest or (metadata.get("creationTimestamp") if isinstance(metadata, dict) else None)
