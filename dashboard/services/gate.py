"""The CI gate: decide on an image with the policy of the team that owns it, and record every decision.

The points of enforcement only gather inputs (dashboard/selectors/enforcement.py) and render the answer; the
decision is ``dashboard.enforcement.decision.decide``.  ``decision_record`` is shared with the other points
(admission, runtime), so every decision leaves one GateDecision row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.utils import timezone

from dashboard.db.decision_record import insert_decision
from dashboard.enforcement.decision import Decision, decide
from dashboard.errors import ApplicationError
from dashboard.models import GateDecision, Report
from dashboard.selectors.decision_memo import remembered
from dashboard.selectors.enforcement import ImageFindings, image_findings, modules_for_findings, policies_read_once
from dashboard.services.audit import actor_label
from scanners.base import ImageRef

#: Reasons kept on a GateDecision row (the answer itself lists them all).
RECORDED_REASONS = 50


@dataclasses.dataclass(frozen=True)
class GateResult:
    """A decision with what it was made on: the image as Vigil knows it, the modules that teach the fixes, its record."""

    decision: Decision
    inputs: ImageFindings
    modules: dict[int, dict[str, str]]
    record: GateDecision


def decision_record(
    *,
    decision: Decision,
    point: str,
    ref: str,
    inputs: ImageFindings | None = None,
    by: Any = None,
    cluster: str = "",
    namespace: str = "",
    report: Report | None = None,
    team_id: int | None = None,
) -> GateDecision:
    """Record one decision (any point of enforcement): image, whose policy and which version, answer, reasons, who asked.

    ``team_id`` is the team the decision is for (who reads it); by default the owner of the image in ``inputs``.
    """
    token = getattr(by, "api_token", None)
    person = by if token is None and getattr(by, "is_authenticated", False) else None
    reasons = [
        {"finding": reason.finding.id, "rule_id": reason.finding.rule_id, "severity": reason.finding.severity, "rules": list(reason.rules)}
        for reason in decision.reasons[:RECORDED_REASONS]
    ]
    record = GateDecision(
        created_at=decision.evaluated_at,
        point=point,
        image_ref=ref[:600],
        image=inputs.image if inputs is not None else None,
        team_id=team_id if team_id is not None else (inputs.team_id if inputs is not None else None),
        policy_team=decision.policy.team or "",
        policy_version=decision.policy.version,
        mode=decision.mode,
        decision=decision.decision,
        unknown_image=decision.unknown_image,
        reasons=reasons,
        reason_count=len(decision.reasons),
        cluster=cluster[:255],
        namespace=namespace[:255] or decision.namespace[:255],
        token=token,
        actor=person,
        actor_label=actor_label(by)[:255] if by is not None else "Vigil",
        report=report,
    )
    return insert_decision(record)


def gate_check(*, ref: str, by: Any, report: Report | None = None, now: dt.datetime | None = None) -> GateResult:
    """May this image ship?  Decided on the findings ``by`` may read, with the policy of the team owning the image
    (else the organisation default); recorded as a CI decision."""
    ref = (ref or "").strip()
    if not ref:
        raise ApplicationError("name the image: ?image=REGISTRY/REPOSITORY[:TAG][@DIGEST]", code="missing_image")
    moment = timezone.localtime(now or timezone.now())
    if ImageRef.parse(ref) is None:
        raise ApplicationError(f"{ref[:200]!r} is not an image reference (REGISTRY/REPOSITORY[:TAG][@DIGEST])", code="invalid_image")
    inputs, kept, modules = remembered(key=("gate", ref), by=by, refs=[ref], day=moment.date(), compute=lambda: _decide(ref, by, moment))
    decision = dataclasses.replace(kept, evaluated_at=moment)
    record = decision_record(decision=decision, point=GateDecision.Point.CI, ref=ref, inputs=inputs, by=by, report=report)
    return GateResult(decision=decision, inputs=inputs, modules=modules, record=record)


def _decide(ref: str, by: Any, now: dt.datetime) -> tuple[ImageFindings, Decision, dict[int, dict[str, str]]]:
    policy_of = policies_read_once()
    # Only the findings that could violate the image's policy are read: the same decision from fewer rows.
    inputs = image_findings(ref=ref, user=by, policy_of=lambda image: policy_of(image.team_id), today=now.date())
    decision = decide(policy=policy_of(inputs.team_id), findings=inputs.findings, now=now)
    modules = modules_for_findings(ids=[reason.finding.id for reason in decision.reasons], known=inputs.learning)
    return inputs, decision, modules
