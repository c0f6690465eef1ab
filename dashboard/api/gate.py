"""GET /api/v1/gate/?image=REF: may this image ship?  The answer as JSON, or as readable text (``Accept: text/plain``).

The text is what ``ci/vigil-scan`` prints: first line ``decision: pass|warn|fail``, then the image, the policy
and one block per reason with its fix and the training module that teaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import renderers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import metrics
from dashboard.api.permissions import ScopePermission
from dashboard.models import TokenScope
from dashboard.services.gate import GateResult, gate_check


def counted_gate_check(*, ref: str, by: Any, report: Any = None) -> GateResult:
    """The gate's decision, counted by outcome with its latency (both ways of asking: GET /gate/ and ``?wait=``)."""
    with metrics.decision(metrics.GATE_DECISIONS, metrics.GATE_LATENCY) as outcome:
        result = gate_check(ref=ref, by=by, report=report)
        outcome.value = result.decision.decision
    return result


def gate_body(result: GateResult, *, request: Request) -> dict[str, Any]:
    """The gate's JSON answer (also the ``gate`` of ``POST /api/v1/reports/?wait=``)."""
    decision = result.decision
    policy = decision.policy
    reasons = []
    for reason in decision.reasons:
        finding = reason.finding
        reasons.append(
            {
                "finding": finding.id,
                "rule_id": finding.rule_id,
                "severity": finding.severity,
                "title": finding.title,
                "package": finding.package or None,
                "version": finding.version or None,
                "fix": finding.fix or None,
                "kev": finding.kev,
                "epss": finding.epss,
                "status": finding.status,
                "rules": list(reason.rules),
                "module": result.modules.get(finding.id),
                "url": request.build_absolute_uri(f"/findings/{finding.id}/"),
            }
        )
    return {
        "decision": decision.decision,
        "image": result.inputs.ref,
        "known": not decision.unknown_image,
        "mode": decision.mode,
        "policy": {
            "team": policy.team,
            "version": policy.version,
            "mode": policy.mode,
            "rules": policy.rules(),
            "unknown_image": policy.unknown_image,
        },
        "reasons": reasons,
        "exempted": list(decision.exempted),
        "evaluated_at": decision.evaluated_at.isoformat(),
        "id": result.record.pk,
    }


def _gate_lines(gate: dict[str, Any]) -> list[str]:
    policy = gate.get("policy") or {}
    owner = f"team {policy.get('team')}" if policy.get("team") else "the organisation default"
    lines = [
        f"decision: {gate.get('decision')}",
        f"image: {gate.get('image')}" + ("" if gate.get("known", True) else " (never seen by Vigil)"),
        f"policy: {owner}, version {policy.get('version')}, mode {gate.get('mode')}",
    ]
    reasons = gate.get("reasons") or []
    if not reasons and gate.get("known", True):
        lines.append("nothing in the image violates the policy")
    elif not reasons:
        lines.append(f"unknown image: the policy answers {policy.get('unknown_image')}")
    else:
        lines.append(f"{len(reasons)} findings violate the policy:" if len(reasons) != 1 else "1 finding violates the policy:")
    for reason in reasons:
        package = f" in {reason['package']} {reason.get('version') or ''}".rstrip() if reason.get("package") else ""
        lines.append(f"- {reason['rule_id']} ({reason['severity']}){package} [{', '.join(reason.get('rules') or [])}]")
        lines.append(f"    fix: upgrade to {reason['fix']}" if reason.get("fix") else "    fix: none available yet")
        module = reason.get("module")
        if module:
            lines.append(f"    learn: {module['title']} <{module['url']}>")
        lines.append(f"    triage: {reason['url']}")
    return lines


def gate_text(data: Any) -> str:
    """Readable text for a gate answer, a report answer (with or without its gate) or an error."""
    if not isinstance(data, dict):
        return f"{data}\n"
    if isinstance(data.get("error"), dict):  # the one error shape (a report's own "error" is text)
        error = data["error"]
        return f"error: {error.get('code')}: {error.get('message')}\n"
    if "decision" in data:
        return "\n".join(_gate_lines(data)) + "\n"
    lines = [f"report {data.get('id')}: {data.get('status')}"]
    if data.get("counts"):
        counts = data["counts"]
        lines.append("findings: " + ", ".join(f"{counts.get(key, 0)} {key}" for key in ("new", "reopened", "unchanged", "fixed")))
    if data.get("error"):
        lines.append(f"error: {data['error']}")
    if data.get("gate"):
        lines.extend(_gate_lines(data["gate"]))
    elif data.get("status") in ("queued", "processing"):
        lines.append(f"not done yet: GET {data.get('url')}")
    return "\n".join(lines) + "\n"


class GateTextRenderer(renderers.BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        return gate_text(data).encode("utf-8")


class GateView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": (TokenScope.INGEST, TokenScope.READ)}
    renderer_classes = [renderers.JSONRenderer, GateTextRenderer]

    def get(self, request: Request) -> Response:
        result = counted_gate_check(ref=request.query_params.get("image", ""), by=request.user)
        return Response(gate_body(result, request=request))
