"""OPA Gatekeeper audit results: constraint objects (``constraints.gatekeeper.sh/*``) with ``status.violations``.

Accepted documents: one constraint, a Kubernetes ``List`` of constraints (``kubectl get constraints -o json``),
or a list of constraints (multi-document YAML).  Each entry of ``status.violations`` is one finding about the
violating resource.  Gatekeeper truncates the list at ``--constraint-violations-limit``; ``totalViolations``
(the real count) is kept in ``details`` together with a ``truncated`` flag.

Severity: Gatekeeper has none.  ``deny`` (and ``scoped``) → medium, ``warn`` / ``dryrun`` → low.

``ParseResult.evaluated`` stays empty: a constraint's status lists only violating resources, and the resources a
constraint audited (or the other constraints on those resources) are not known from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from scanners.base import Finding, ParseError, ParseResult, ResourceRef, expect_dict, expect_list, opt_str, req_str, type_name
from scanners.fingerprint import make_fingerprint, workload_name
from scanners.kubernetes import join_path, objects_in, rfc3339_to_iso
from scanners.moments import latest_moment

_GROUP = "constraints.gatekeeper.sh/"
_SEVERITY = {"deny": "medium", "scoped": "medium", "warn": "low", "dryrun": "low"}


def _is_constraint(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    api_version = value.get("apiVersion")
    return isinstance(api_version, str) and api_version.startswith(_GROUP) and isinstance(value.get("kind"), str)


class GatekeeperParser:
    name = "gatekeeper"
    stream = "admission"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        try:
            candidates = objects_in(document)
        except ParseError:
            return False
        return bool(candidates) and all(_is_constraint(obj) for _, obj in candidates)

    def parse(self, document: Any) -> ParseResult:
        if not isinstance(document, (dict, list)):
            raise ParseError(f"not a Gatekeeper constraint: expected an object or a list, got {type_name(document)}")
        result = ParseResult(findings=[])
        times: list[Any] = []
        for where, constraint in objects_in(document):
            self._parse_constraint(constraint, where, result)
            status = constraint.get("status") if isinstance(constraint, dict) else None
            times.append(status.get("auditTimestamp") if isinstance(status, dict) else None)
        result.observed_at = latest_moment(times)
        return result

    def _parse_constraint(self, value: Any, where: str, result: ParseResult) -> None:
        """Add the constraint's violations; its status lists every violator (unless truncated)."""
        label = where or "constraint"
        constraint = expect_dict(value, label)
        if not _is_constraint(constraint):
            raise ParseError(
                f"{label}: not a Gatekeeper constraint (apiVersion {constraint.get('apiVersion')!r}); "
                "expected apiVersion constraints.gatekeeper.sh/*"
            )
        constraint_kind = req_str(constraint, "kind", label)
        metadata = expect_dict(constraint.get("metadata"), join_path(where, "metadata"))
        constraint_name = req_str(metadata, "name", join_path(where, "metadata"))
        spec = expect_dict(constraint.get("spec") or {}, join_path(where, "spec"))
        spec_action = opt_str(spec, "enforcementAction", join_path(where, "spec"), 64) or "deny"
        policy = f"{constraint_kind}/{constraint_name}"
        if constraint.get("status") is None:
            return  # not audited yet: says nothing about its violations
        status_where = join_path(where, "status")
        status = expect_dict(constraint["status"], status_where)
        violations = expect_list(status.get("violations"), f"{status_where}.violations")
        total = status.get("totalViolations")
        if isinstance(total, float) and total.is_integer():
            total = int(total)
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ParseError(f"{status_where}: totalViolations is not a non-negative integer")
        total_count = total if total is not None else len(violations)
        audit_timestamp = rfc3339_to_iso(opt_str(status, "auditTimestamp", status_where, 64), f"{status_where}.auditTimestamp")
        result.evaluated_policies.append((None, policy))
        if total_count > len(violations):
            result.incomplete_policies.append(policy)
        audited = _Audited(
            kind=constraint_kind,
            name=constraint_name,
            action=spec_action,
            total=total_count,
            truncated=total_count > len(violations),
            audit_timestamp=audit_timestamp,
        )
        for index, raw in enumerate(violations):
            result.findings.append(self._violation(raw, f"{status_where}.violations[{index}]", audited))

    def _violation(self, raw: Any, violation_where: str, constraint: _Audited) -> Finding:
        """One violator of an audited constraint as a policy finding."""
        violation = expect_dict(raw, violation_where)
        kind = req_str(violation, "kind", violation_where)
        name = req_str(violation, "name", violation_where)
        namespace = opt_str(violation, "namespace", violation_where, 255)
        message = opt_str(violation, "message", violation_where)
        action = opt_str(violation, "enforcementAction", violation_where, 64) or constraint.action
        details: dict[str, Any] = {
            "policy": constraint.policy,
            "constraint_kind": constraint.kind,
            "constraint_name": constraint.name,
            "enforcement_action": action,
            "total_violations": constraint.total,
            "truncated": constraint.truncated,
        }
        scoped_actions = violation.get("enforcementActions")
        if isinstance(scoped_actions, list):
            details["enforcement_actions"] = [str(item) for item in scoped_actions if isinstance(item, str)]
        group = opt_str(violation, "group", violation_where, 255)
        version = opt_str(violation, "version", violation_where, 64)
        if group or version:
            details["api_version"] = f"{group}/{version}" if group else version
        resource_name = workload_name(name, kind=kind)
        if resource_name != name:
            details["resource_name"] = name
        resource = ResourceRef(cluster="", namespace=namespace, kind=kind, name=resource_name)
        first_line = message.strip().splitlines()[0] if message.strip() else ""
        return Finding(
            kind="policy",
            source=self.name,
            rule_id=constraint.policy,
            title=first_line or f"{constraint.kind} {constraint.name}",
            severity=_SEVERITY.get(action.lower(), "medium"),
            fingerprint=make_fingerprint("policy", resource.cluster, namespace, kind, resource_name, constraint.kind, constraint.name),
            resource=resource,
            occurred_at=constraint.audit_timestamp,
            description=message,
            details=details,
        )


@dataclasses.dataclass(frozen=True)
class _Audited:
    """What every violation of one audited constraint shares."""

    kind: str
    name: str
    #: The constraint's enforcementAction (a violation may name its own).
    action: str
    total: int
    truncated: bool
    audit_timestamp: str | None

    @property
    def policy(self) -> str:
        return f"{self.kind}/{self.name}"


parser = GatekeeperParser()
