"""The admission webhook's decision: every image of a workload, decided with the namespace's policy and mode.

Whose policy decides: the team that owns the namespace (ownership rules), else the team that owns the image, else
the organisation default.  The decision is ``dashboard.enforcement.decision.decide`` on the image's findings read
as they are now: a false positive marked or an acceptance revoked a moment ago counts in the next decision (the
memo, selectors/decision_memo.py, answers a repeated request only while nothing the decision reads has changed).  The
answer teaches: each warning names the finding's vulnerability id, the image, its fix and the training module.

Every decision is recorded: a GateDecision row per image (services/gate.py); a denial or warnings (audit findings
too) become an admission event, posted as the AdmissionReview (request and the answer) through the report path
like any other admission event, so they aggregate into findings like Kyverno's or Gatekeeper's; an allowed deploy
records a sighting of each image in its workload (services/running.py).  A dry run records nothing (the webhook
declares ``sideEffects: NoneOnDryRun``).

A repeated event (the API server asks about the same workload again and again: every pod of a ReplicaSet, a
crash-looping Job, a controller's retries) costs one small row instead of a report: within a minute of the first
event making the same findings, a repeat is counted on the first one's report and a beat task turns the counts into
reports every minute (services/admission_repeats.py).  Counts stay exact; an event shows up at once, its repeats
within a minute.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from dashboard.enforcement.decision import FAIL, PASS, Decision, decide, worst_of
from dashboard.errors import ApplicationError
from dashboard.models import GateDecision, WorkloadSighting
from dashboard.selectors.decision_memo import remembered
from dashboard.selectors.enforcement import ImageFindings, images_findings, modules_for_findings, namespace_owner, policies_read_once
from dashboard.services.admission_repeats import admission_event_record
from dashboard.services.clusters import resolve_cluster
from dashboard.services.gate import decision_record
from dashboard.services.running import Sighting, sightings_record
from scanners.admission_request import AdmissionRequest, Container, read_request, render_response
from scanners.base import ParseError

logger = logging.getLogger(__name__)

#: ``status.reason`` of a denial: the admission-review parser takes it as the rule of the recorded denial.
DENIAL_REASON = "vigil-policy"
_RULE_SAFE = re.compile(r"[^\w-]+")


@dataclasses.dataclass(frozen=True)
class ImageDecision:
    container: Container
    inputs: ImageFindings
    decision: Decision


@dataclasses.dataclass(frozen=True)
class AdmissionOutcome:
    """The answer (an AdmissionReview) and what it was made of."""

    review: dict[str, Any]
    request: AdmissionRequest
    decisions: list[ImageDecision]

    @property
    def allowed(self) -> bool:
        return bool(self.review["response"]["allowed"])


def admission_validate(*, document: Any, by: Any, cluster: str = "", now: dt.datetime | None = None) -> AdmissionOutcome:
    """Decide on an AdmissionReview request; ``by`` is the webhook's token principal (any image, reads nothing)."""
    try:
        request = read_request(document)
    except ParseError as exc:
        raise ApplicationError(f"not an admission.k8s.io/v1 AdmissionReview request: {exc}", code="invalid_admission_review") from exc
    if not request.decided:  # DELETE, CONNECT, kinds without a pod template, a scale: nothing to decide
        return AdmissionOutcome(render_response(api_version=request.api_version, uid=request.uid, allowed=True), request, [])
    token = getattr(by, "api_token", None)
    cluster = resolve_cluster(token=token, requested=cluster)
    moment = timezone.localtime(now or timezone.now())
    decisions, modules = _decided(request, moment)
    worst = worst_of(item.decision for item in decisions)
    lines = _warnings(decisions, modules)
    shown = [line for item, line in lines if item.decision.decision != PASS]
    review = render_response(
        api_version=request.api_version,
        uid=request.uid,
        allowed=worst != FAIL,
        message=_message(request, decisions, worst),
        code=403 if worst == FAIL else None,
        reason=DENIAL_REASON if worst == FAIL else "",
        warnings=shown,
    )
    if not request.dry_run:
        every_line = [line for _, line in lines]
        with transaction.atomic():  # the decision's records land together, with one commit
            _record(
                request=request, document=document, review=review, decisions=decisions, lines=every_line, by=by, cluster=cluster, now=moment
            )
            if worst != FAIL:
                _sightings(request, decisions, cluster, moment)
    return AdmissionOutcome(review, request, decisions)


def _decided(request: AdmissionRequest, now: dt.datetime) -> tuple[list[ImageDecision], dict[int, dict[str, str]]]:
    """The decision on each distinct image (a pod's init containers often repeat an image) and the modules that
    teach their reasons; kept while nothing they read changes (selectors/decision_memo.py)."""
    containers = list({container.reference: container for container in request.containers}.values())
    refs = tuple(container.reference for container in containers)
    key = ("admission", request.namespace, refs)
    kept, modules = remembered(key=key, by=None, refs=refs, day=now.date(), compute=lambda: _taught(_decide(request, containers, now)))
    decisions = [
        ImageDecision(container, item.inputs, dataclasses.replace(item.decision, evaluated_at=now))
        for container, item in zip(containers, kept, strict=True)
    ]
    return decisions, modules


def _taught(decisions: list[ImageDecision]) -> tuple[list[ImageDecision], dict[int, dict[str, str]]]:
    """The decisions with the training module of each reason (from what the decision read)."""
    reasons = {reason.finding.id: item.inputs.learning for item in decisions for reason in item.decision.reasons}
    known = {pk: learning[pk] for pk, learning in reasons.items() if pk in learning}
    return decisions, modules_for_findings(ids=sorted(reasons), known=known)


def _decide(request: AdmissionRequest, containers: Sequence[Container], now: dt.datetime) -> list[ImageDecision]:
    team_of_namespace = namespace_owner(request.namespace)
    policy_of = policies_read_once()
    refs = [container.reference for container in containers]
    # Only the findings that could violate each image's policy are read: the same decision from fewer rows.
    inputs = images_findings(refs=refs, user=None, policy_of=lambda image: policy_of(team_of_namespace or image.team_id), today=now.date())
    out = []
    for container in containers:
        found = inputs[container.reference]
        image_team = found.image.team_id if found.image is not None else None
        team_id = team_of_namespace or image_team
        findings = found.findings if container.image is not None else None  # an unreadable reference is an unknown image
        decision = decide(policy=policy_of(team_id), findings=findings, now=now, namespace=request.namespace)
        out.append(ImageDecision(container, found, decision))
    return out


def _rule_word(rule_id: str) -> str:
    """A rule id as the warning's ``policy vigil.<rule>:`` prefix carries it (what the admission-review parser reads)."""
    return _RULE_SAFE.sub("-", rule_id).strip("-")[:120] or "finding"


def _warnings(decisions: Sequence[ImageDecision], modules: Mapping[int, Mapping[str, str]]) -> list[tuple[ImageDecision, str]]:
    """One line per blocking finding (and per unknown image): what, where, the fix, and what to learn."""
    lines: list[tuple[ImageDecision, str]] = []
    for item in decisions:
        ref = item.container.reference
        if item.decision.unknown_image and item.decision.decision != PASS:
            lines.append((item, f"policy vigil.unknown-image: {ref} was never scanned by Vigil: scan it in CI before deploying"))
        for reason in item.decision.reasons:
            finding = reason.finding
            facts = [finding.severity, *(["KEV"] if finding.kev else []), *([f"EPSS {finding.epss:.2f}"] if finding.epss else [])]
            package = f" in {finding.package} {finding.version}".rstrip() if finding.package else ""
            fix = f"fix: upgrade to {finding.fix}" if finding.fix else "no fix published yet: mitigate or accept the risk in Vigil"
            module = modules.get(finding.id)
            learn = f"; learn: {module['title']} {module['url']}" if module else ""
            text = f"policy vigil.{_rule_word(finding.rule_id)}: {finding.rule_id}{package} ({', '.join(facts)}) in {ref}; {fix}{learn}"
            lines.append((item, text))
    return lines


def _message(request: AdmissionRequest, decisions: Sequence[ImageDecision], worst: str) -> str:
    where = f"{request.workload_kind} {request.namespace}/{request.workload_name}".strip()
    blocking = [item for item in decisions if item.decision.decision == worst and worst != PASS]
    if not blocking:
        return ""
    first = blocking[0].decision
    whose = f"team {first.policy.team}" if first.policy.team else "the organisation"
    ids = sorted({reason.finding.rule_id for item in blocking for reason in item.decision.reasons})
    named = f": {', '.join(ids[:5])}{' and more' if len(ids) > 5 else ''}" if ids else ": image never scanned"
    verb = "denied" if worst == FAIL else "allowed with warnings"
    return f"Vigil {verb} {where} under the policy of {whose} (v{first.policy.version}, mode {first.mode}){named}"


def _record(
    *,
    request: AdmissionRequest,
    document: Any,
    review: dict[str, Any],
    decisions: Sequence[ImageDecision],
    lines: list[str],
    by: Any,
    cluster: str,
    now: dt.datetime,
) -> None:
    """A GateDecision per image; the denial and the warnings (audit ones too) as one admission event (a repeat of one
    recorded within the minute: counted on it, services/admission_repeats.py)."""
    for item in decisions:
        decision_record(
            decision=item.decision,
            point=GateDecision.Point.ADMISSION,
            ref=item.container.reference,
            inputs=item.inputs,
            by=by,
            cluster=cluster,
            namespace=request.namespace,
        )
    if review["response"]["allowed"] and not lines:
        return
    response = {**review["response"], "warnings": lines}
    event = {"apiVersion": request.api_version, "kind": "AdmissionReview", "request": document["request"], "response": response}
    policies = [(item.decision.policy.team_id, item.decision.policy.version, item.decision.mode) for item in decisions]
    try:
        # Vigil's own record of its decision, not a report of the admission token's team (admission_repeats.py).
        admission_event_record(event=event, cluster=cluster, policies=policies, now=now)
    except ApplicationError:
        logger.exception("the admission event of request %s could not be stored", request.uid)


def _sightings(request: AdmissionRequest, decisions: Sequence[ImageDecision], cluster: str, now: dt.datetime) -> None:
    found = [
        Sighting(
            cluster=cluster,
            namespace=request.namespace,
            workload_kind=request.workload_kind,
            workload_name=request.workload_name,
            image=item.container.image,
            team_id=item.decision.policy.team_id,
            source=WorkloadSighting.Source.ADMISSION,
        )
        for item in decisions
        if item.container.image is not None and request.workload_name
    ]
    sightings_record(sightings=found, now=now)
