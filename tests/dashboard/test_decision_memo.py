"""The decision memo (selectors/decision_memo.py): a repeated decision reads only the record of changes, and every
kind of write that can move a decision is in that record, so the very next decision after it is the fresh one.

Each change is made with the memo warm (the same decision asked just before), by the path Vigil or an operator
uses: the triage service, an ORM ``update()``, a factory's INSERT, raw SQL, the policy service.  The decision after
it must be the expected one and the one computed with nothing kept.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.api.authentication import TokenPrincipal
from dashboard.db import decision_findings
from dashboard.models import ApiToken, DecisionChange, Finding, Image, OwnershipRule, RiskAcceptance, Status
from dashboard.selectors.decision_memo import forget_decisions
from dashboard.services.gate import gate_check
from dashboard.services.policies import policy_update
from dashboard.services.running import forget_written
from dashboard.services.tokens import token_create
from dashboard.services.triage import findings_set_status
from dashboard.tasks import fold_decision_changes
from scanners.base import ImageRef
from tests.conftest import FIXTURES
from tests.factories import (
    EnforcementPolicyFactory,
    FindingFactory,
    ImageFactory,
    ImageVersionFactory,
    OwnershipRuleFactory,
    RiskAcceptanceFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.usefixtures("require_postgres")

REF = "nginx:1.14.2"
POD = FIXTURES / "admission-review" / "requests" / "pod_create.json"  # nginx:1.14.2 in namespace default


@pytest.fixture
def world() -> dict[str, Any]:
    forget_written()
    payments, ops = TeamFactory(slug="payments"), TeamFactory(slug="ops")
    parsed = ImageRef.parse(REF)
    image = ImageFactory(registry=parsed.registry, repository=parsed.repository, team=payments)
    ImageVersionFactory(image=image, tag=parsed.tag)
    critical = FindingFactory(
        image=image, team=payments, rule_id="CVE-2023-0286", severity="critical", package_name="openssl", fixed_version="3.0.8"
    )
    low = FindingFactory(image=image, team=payments, rule_id="CVE-2024-0001", severity="low", fixed_version="1.2")
    reader, _ = token_create(team=payments, name="ci", scope="read")
    outsider, _ = token_create(team=ops, name="ops ci", scope="read")
    return {
        "payments": payments,
        "ops": ops,
        "image": image,
        "critical": critical,
        "low": low,
        "reader": reader,
        "outsider": outsider,
        "staff": UserFactory(is_staff=True),
    }


def gate(token: ApiToken, ref: str = REF, now: dt.datetime | None = None) -> str:
    return gate_check(ref=ref, by=TokenPrincipal(ApiToken.objects.get(pk=token.pk)), now=now).decision.decision


def kept_and_fresh(token: ApiToken, ref: str = REF, now: dt.datetime | None = None) -> tuple[str, str]:
    """The decision with the memo as it is, then with nothing kept."""
    kept = gate(token, ref, now)
    forget_decisions()
    return kept, gate(token, ref, now)


def _false_positive(world: dict[str, Any]) -> None:
    findings_set_status(ids=[world["critical"].pk], by=world["staff"], status=Status.FALSE_POSITIVE, reason="not reachable")


def _fixed_by_update(world: dict[str, Any]) -> None:
    Finding.objects.filter(pk=world["critical"].pk).update(status=Status.FIXED)


def _accepted(world: dict[str, Any]) -> None:
    RiskAcceptanceFactory(team=world["payments"], findings=[world["critical"]])
    Finding.objects.filter(pk=world["critical"].pk).update(status=Status.RISK_ACCEPTED)


def _enforced(world: dict[str, Any]) -> None:
    policy_update(team=world["payments"], by=world["staff"], changes={"mode": "enforce"})


def _deleted_by_sql(world: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM dashboard_finding WHERE id = %s", [world["critical"].pk])


def _given_away(world: dict[str, Any]) -> None:
    """The image and its findings now belong to ops: payments' token no longer reads them (an unknown image)."""
    Image.objects.filter(pk=world["image"].pk).update(team=world["ops"])
    Finding.objects.filter(image=world["image"]).update(team=world["ops"])


CHANGES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("a false positive marked by the triage service", _false_positive, "pass"),
    ("fixed by an ORM update()", _fixed_by_update, "pass"),
    ("an approved risk acceptance", _accepted, "pass"),
    ("the team's policy set to enforce", _enforced, "fail"),
    ("the finding deleted by an operator's SQL", _deleted_by_sql, "pass"),
    ("the image given to another team", _given_away, "warn"),
]


@pytest.mark.parametrize(("change", "expected"), [(change, expected) for _, change, expected in CHANGES], ids=[n for n, _, _ in CHANGES])
def test_a_change_counts_at_the_very_next_decision(world, change, expected) -> None:
    before = gate(world["reader"])
    change(world)
    assert (before, *kept_and_fresh(world["reader"])) == ("warn", expected, expected)


def test_a_revoked_acceptance_counts_at_the_very_next_decision(world) -> None:
    _accepted(world)
    before = gate(world["reader"])
    RiskAcceptance.objects.filter(findings=world["critical"]).update(state=RiskAcceptance.State.REJECTED)
    assert (before, *kept_and_fresh(world["reader"])) == ("pass", "warn", "warn")


def test_a_new_finding_makes_a_passing_image_warn(world) -> None:
    Finding.objects.filter(pk=world["critical"].pk).update(status=Status.FIXED)
    before = gate(world["reader"])
    FindingFactory(image=world["image"], team=world["payments"], severity="critical", fixed_version="2.0", rule_id="CVE-2025-9")
    assert (before, *kept_and_fresh(world["reader"])) == ("pass", "warn", "warn")


def test_a_tag_seen_for_the_first_time_is_no_longer_unknown(world) -> None:
    Finding.objects.filter(pk=world["critical"].pk).update(status=Status.FIXED)
    before = gate(world["reader"], "nginx:1.15.0")
    ImageVersionFactory(image=world["image"], tag="1.15.0")
    assert (before, *kept_and_fresh(world["reader"], "nginx:1.15.0")) == ("warn", "pass", "pass")


def test_an_image_reported_for_the_first_time_is_no_longer_unknown(world) -> None:
    ref = "registry.example.com/payments/api:2.0"
    parsed = ImageRef.parse(ref)
    before = gate(world["reader"], ref)
    image = ImageFactory(registry=parsed.registry, repository=parsed.repository, team=world["payments"])
    ImageVersionFactory(image=image, tag="2.0")
    FindingFactory(image=image, team=world["payments"], severity="low")
    assert (before, *kept_and_fresh(world["reader"], ref)) == ("warn", "pass", "pass")


def test_a_team_added_to_a_token_reads_its_images_at_the_next_decision(world) -> None:
    Finding.objects.filter(pk=world["critical"].pk).update(status=Status.FIXED)
    before = gate(world["outsider"])  # ops reads nothing of payments' image: unknown
    world["outsider"].extra_teams.add(world["payments"])
    assert (before, *kept_and_fresh(world["outsider"])) == ("warn", "pass", "pass")


def test_a_due_date_passing_overnight_counts_the_next_morning(world) -> None:
    EnforcementPolicyFactory(team=world["payments"], min_severity="", kev=False, sla_overdue=True)
    today = timezone.localtime()
    Finding.objects.filter(pk=world["critical"].pk).update(due_date=today.date())
    before = gate(world["reader"], now=today)
    tomorrow = today + dt.timedelta(days=1)
    assert (before, *kept_and_fresh(world["reader"], now=tomorrow)) == ("pass", "warn", "warn")


def test_a_namespace_given_to_an_enforcing_team_denies_the_next_admission(world) -> None:
    _, plaintext = token_create(team=world["ops"], name="webhook", scope="admission", cluster="prod")
    webhook = APIClient()
    webhook.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    EnforcementPolicyFactory(team=world["ops"], mode="enforce")

    def allowed() -> bool:
        answer = webhook.post("/api/v1/admission/validate", POD.read_text(), content_type="application/json")
        return bool(json.loads(answer.content)["response"]["allowed"])

    before = allowed()
    OwnershipRuleFactory(team=world["ops"], kind=OwnershipRule.Kind.NAMESPACE, pattern="default")
    assert (before, allowed()) == (True, False)


def test_a_repeated_decision_reads_the_record_of_changes_and_writes_its_own(world, django_assert_num_queries) -> None:
    principal = TokenPrincipal(world["reader"])
    gate_check(ref=REF, by=principal)
    with django_assert_num_queries(2):  # the record of changes; the GateDecision row
        again = gate_check(ref=REF, by=principal)
    assert (again.decision.decision, [r.finding.rule_id for r in again.decision.reasons]) == ("warn", ["CVE-2023-0286"])


def test_a_finding_rewritten_only_for_its_count_and_last_seen_keeps_the_decision(world, django_assert_num_queries) -> None:
    principal = TokenPrincipal(world["reader"])
    gate_check(ref=REF, by=principal)
    Finding.objects.filter(pk=world["critical"].pk).update(occurrences=7, last_seen=timezone.now(), details={"sample": 2})
    with django_assert_num_queries(2):  # what an alert's or a denial's count moves is no input of a decision
        gate_check(ref=REF, by=principal)


def test_the_trigger_compares_every_column_a_decision_reads() -> None:
    """All but the classifier's columns, which only pick the training module (kept at most the memo's minute)."""
    trigger = importlib.import_module("dashboard.migrations.0008_decision_changes")
    read = {*decision_findings.COLUMNS, "team_id"} - {"id"}
    assert read - set(trigger.DECIDING) == set()


def test_without_the_memo_every_decision_reads_its_inputs(world, settings, django_assert_num_queries) -> None:
    settings.VIGIL_DECISION_MEMO_SECONDS = 0
    principal = TokenPrincipal(world["reader"])
    gate_check(ref=REF, by=principal)
    with django_assert_num_queries(4):  # image and versions, the policy, the findings; the row (the token's teams are read once)
        gate_check(ref=REF, by=principal)


def test_a_kept_decision_answers_with_the_time_it_is_asked(world) -> None:
    earlier = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
    principal = TokenPrincipal(world["reader"])
    first = gate_check(ref=REF, by=principal, now=earlier)
    second = gate_check(ref=REF, by=principal, now=earlier + dt.timedelta(minutes=5))
    assert second.decision.evaluated_at - first.decision.evaluated_at == dt.timedelta(minutes=5)


def test_folding_keeps_one_row_per_image_and_the_next_change_still_counts(world) -> None:
    gate(world["reader"])
    Finding.objects.filter(pk=world["low"].pk).update(title="touched")  # a change that moves nothing
    fold_decision_changes()  # the beat's task
    rows = list(DecisionChange.objects.values_list("image_id", flat=True).order_by("image_id"))
    after_fold = gate(world["reader"])
    _false_positive(world)
    assert (rows.count(world["image"].pk), after_fold, *kept_and_fresh(world["reader"])) == (1, "warn", "pass", "pass")


def test_a_repeated_warned_admission_reads_the_token_and_the_record_of_changes_and_writes_two_rows(
    world, django_assert_num_queries, django_capture_on_commit_callbacks
) -> None:
    _, plaintext = token_create(team=world["ops"], name="webhook", scope="admission", cluster="prod")
    webhook = APIClient()
    webhook.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    with django_capture_on_commit_callbacks(execute=True):  # first use; the event stored and, once committed, remembered
        webhook.post("/api/v1/admission/validate", POD.read_text(), content_type="application/json")
    # The event's finding (the worker, run eagerly) is new on the image: the next decision reads its inputs once.
    webhook.post("/api/v1/admission/validate", POD.read_text(), content_type="application/json")
    # The token, the record of changes; the GateDecision row, the repeat's row, in a transaction of their own (a
    # savepoint and its release inside the test's transaction).
    with django_assert_num_queries(4 + 2):
        answer = webhook.post("/api/v1/admission/validate", POD.read_text(), content_type="application/json")
    assert [line.split(":")[1].split()[0] for line in answer.json()["response"]["warnings"]] == ["CVE-2023-0286"]
