"""Trivy misconfigurations and secrets: one entry of a result's ``Misconfigurations`` or ``Secrets`` becomes
one finding (a passed check none).  Identity: the Kubernetes resource, else the image and target, + the check
(and the cause resource) or the secret rule and its line; never the message."""

from __future__ import annotations

from typing import Any

from scanners.base import MAX_TITLE, Finding, ParseError, clean_references, expect_dict, opt_str
from scanners.fingerprint import make_fingerprint
from scanners.trivy_fields import Scope, line_number, severity_word, strings

SOURCE = "trivy"


def misconfiguration(value: Any, where: str, scope: Scope, target: str, result_type: str) -> Finding | None:
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
        "start_line": line_number(cause, "StartLine", f"{where}.CauseMetadata"),
        "end_line": line_number(cause, "EndLine", f"{where}.CauseMetadata"),
    }
    return Finding(
        kind="misconfiguration",
        source=SOURCE,
        rule_id=rule_id,
        title=opt_str(misconfig, "Title", where, MAX_TITLE) or rule_id,
        severity=severity_word(misconfig, "Severity", where),
        fingerprint=fingerprint,
        image=scope.image,
        resource=scope.resource,
        references=clean_references(
            [
                opt_str(misconfig, "PrimaryURL", where, 2000),
                *strings(misconfig.get("References"), where, "References"),
            ]
        ),
        occurred_at=scope.occurred_at,
        description="\n\n".join(part for part in (message, description) if part),
        details={k: v for k, v in details.items() if v not in ("", None, [])},
    )


def secret(value: Any, where: str, scope: Scope, target: str) -> Finding:
    secret = expect_dict(value, where)
    rule_id = opt_str(secret, "RuleID", where, 255)
    if not rule_id:
        raise ParseError(f"{where}: missing RuleID")
    start_line = line_number(secret, "StartLine", where)
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
        "end_line": line_number(secret, "EndLine", where),
        # Trivy redacts the match itself; we keep no more of the secret than it shows.
        "match": opt_str(secret, "Match", where, 1000),
    }
    return Finding(
        kind="secret",
        source=SOURCE,
        rule_id=rule_id,
        title=opt_str(secret, "Title", where, MAX_TITLE) or rule_id,
        severity=severity_word(secret, "Severity", where),
        fingerprint=fingerprint,
        image=scope.image,
        resource=scope.resource,
        occurred_at=scope.occurred_at,
        details={k: v for k, v in details.items() if v not in ("", None, [])},
    )
