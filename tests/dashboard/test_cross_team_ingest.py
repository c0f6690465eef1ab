"""Cross-team ingest: with team alpha's ingest token, reports about what team bravo owns change nothing of bravo's.

Each attack of the red-team exercise is reproduced as it was run (alpha's token, bravo's image or resource owned
by an ownership rule or because bravo's own reports created it), for every stream and format family, partial and
empty reports.  A report about nothing but bravo's findings is refused: 403 at receive time when the API parses it
there (``receive``), ``failed`` with the same reason in the worker otherwise (``worker``: reports too large to parse
while answering, and event reports).  A report about a scope shared with bravo applies to alpha's findings only and
counts bravo's as ``not_yours``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from dashboard.errors import ApplicationError
from dashboard.ingest import apply as ingest_service
from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_confirm_closures, report_submit
from dashboard.ingest.rights import FOREIGN_SCOPE, ForeignScopeError
from dashboard.models import Finding, FindingOccurrence, OwnershipRule, Report, ReportStatus, Role, Status
from dashboard.services.ownership_rules import finding_set_owner
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import MembershipFactory, OwnershipRuleFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

BRAVO_IMAGE = "registry.example.com/bravo/api"
ALPHA_IMAGE = "registry.example.com/alpha/api"
ALPINE = json.loads(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"))


def trivy(numbers: range | list[int], *, severity: str = "HIGH", title: str = "") -> bytes:
    """The real alpine report with one vulnerability per number, each its own CVE id."""
    vulnerability = ALPINE["Results"][0]["Vulnerabilities"][0]
    listed = [
        {**vulnerability, "VulnerabilityID": f"CVE-2026-{n:05d}", "Severity": severity, **({"Title": title} if title else {})}
        for n in numbers
    ]
    return json.dumps({**ALPINE, "Results": [{**ALPINE["Results"][0], "Vulnerabilities": listed}]}).encode()


class Sender:
    """A team's ingest token, sending as CI does: stored by the API path, applied by the worker."""

    def __init__(self, team: Any, *, all_teams: bool = False) -> None:
        self.team = team
        self.token, self.plaintext = token_create(team=team, name=f"{team.slug} CI", all_teams=all_teams)

    def send(self, body: bytes, *, image: str = "", format_name: str = "", tag: str = "1.0") -> Report | str:
        """The applied report, or the message of a refusal at receive time."""
        try:
            report, _ = report_submit(
                data=body,
                token=self.token,
                image=f"{image}:{tag}" if image else "",
                format_name=format_name,
                enqueue_now=False,
                deduplicate=False,
            )
        except ForeignScopeError as exc:
            return exc.message
        report_process(report.pk)
        report.refresh_from_db()
        return report


def bravo_state() -> list[tuple[Any, ...]]:
    """Everything about bravo's findings alpha must not change."""
    columns = ("fingerprint", "status", "title", "severity", "occurrences", "last_report_id", "team__slug")
    return list(Finding.objects.filter(team__slug="bravo").order_by("fingerprint").values_list(*columns))


def refused(outcome: Report | str, mode: str) -> bool:
    """Refused as the mode says: a 403 message at receive time, or a report failed with the reason in the worker."""
    if mode == "receive":
        return outcome == FOREIGN_SCOPE
    return isinstance(outcome, Report) and (outcome.status, outcome.error, outcome.held_closures) == (
        ReportStatus.FAILED,
        FOREIGN_SCOPE,
        [],
    )


@pytest.fixture
def teams() -> tuple[Any, Any]:
    return TeamFactory(slug="alpha"), TeamFactory(slug="bravo")


@pytest.fixture(params=["rule", "reports"])
def owned_by(request: pytest.FixtureRequest, teams: tuple[Any, Any]) -> str:
    """Bravo owns its image by an ownership rule, or because bravo's own reports created it."""
    if request.param == "rule":
        OwnershipRuleFactory(team=teams[1], kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/bravo/*")
    return request.param


@pytest.fixture(params=["receive", "worker"])
def mode(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "worker":
        settings.VIGIL_VALIDATE_SYNC_BYTES = 0  # only the cheap checks at receive time: the worker decides
    return request.param


@pytest.fixture
def alpha(teams: tuple[Any, Any]) -> Sender:
    return Sender(teams[0])


@pytest.fixture
def bravo(teams: tuple[Any, Any]) -> Sender:
    return Sender(teams[1])


# --- scans: Trivy ------------------------------------------------------------------------------------------


def test_a_partial_scan_of_bravos_image_fixes_none_of_bravos_findings(alpha, bravo, owned_by, mode) -> None:
    assert bravo.send(trivy(range(12)), image=BRAVO_IMAGE).counts["new"] == 12
    before = bravo_state()

    outcome = alpha.send(trivy(range(7)), image=BRAVO_IMAGE, tag="1.1")

    assert refused(outcome, mode)
    assert bravo_state() == before
    assert Finding.objects.filter(team__slug="bravo", status=Status.OPEN).count() == 12


def test_repeated_halving_closes_nothing_of_bravos(alpha, bravo, owned_by, mode) -> None:
    bravo.send(trivy(range(12)), image=BRAVO_IMAGE)
    before = bravo_state()

    outcomes = [alpha.send(trivy(range(count)), image=BRAVO_IMAGE, tag=f"1.{count}") for count in (7, 4, 2)]

    assert [refused(outcome, mode) for outcome in outcomes] == [True, True, True]
    assert bravo_state() == before
    assert Report.objects.exclude(held_closures=[]).count() == 0


def test_an_empty_scan_of_bravos_image_holds_no_closures(alpha, bravo, owned_by, mode) -> None:
    bravo.send(trivy(range(12)), image=BRAVO_IMAGE)
    before = bravo_state()

    outcome = alpha.send(trivy([]), image=BRAVO_IMAGE, tag="2.0")

    assert refused(outcome, mode)
    assert bravo_state() == before
    assert Report.objects.exclude(held_closures=[]).count() == 0


def test_re_reporting_bravos_fixed_findings_with_another_title_and_severity_reopens_none(alpha, bravo, owned_by, mode) -> None:
    first = bravo.send(trivy(range(10)), image=BRAVO_IMAGE)
    ingest_service.close_findings(ids=list(Finding.objects.values_list("pk", flat=True)), report=first, now=first.observed_at)
    before = bravo_state()

    outcome = alpha.send(trivy(range(10), severity="CRITICAL", title="rewritten by alpha"), image=BRAVO_IMAGE, tag="1.1")

    assert refused(outcome, mode)
    assert bravo_state() == before
    assert set(Finding.objects.values_list("status", "severity")) == {(Status.FIXED, "high")}


def test_no_finding_is_created_in_bravos_image(alpha, bravo, owned_by, mode) -> None:
    bravo.send(trivy(range(3)), image=BRAVO_IMAGE)

    outcome = alpha.send(trivy(range(100, 105)), image=BRAVO_IMAGE, tag="1.1")

    assert refused(outcome, mode)
    assert Finding.objects.count() == 3


def test_with_a_rule_no_finding_is_created_for_bravo_even_in_an_image_nobody_reported(alpha, teams, mode) -> None:
    OwnershipRuleFactory(team=teams[1], kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/bravo/*")

    outcome = alpha.send(trivy(range(4)), image=BRAVO_IMAGE)

    assert refused(outcome, mode)
    assert Finding.objects.count() == 0


# --- scans: every format family, partial and empty ----------------------------------------------------------


def _trim(name: str, keep: int) -> bytes:
    """The real report with only its first ``keep`` findings (0: empty)."""
    document = json.loads(fixture_bytes(name))
    if "matches" in document:
        document["matches"] = document["matches"][:keep]
    elif "runs" in document:
        document["runs"][0]["results"] = document["runs"][0]["results"][:keep]
    elif "vulnerabilities" in document:
        document["vulnerabilities"] = document["vulnerabilities"][:keep]
    else:
        document["Results"][0]["Vulnerabilities"] = document["Results"][0]["Vulnerabilities"][:keep]
    return json.dumps(document).encode()


FAMILIES = [
    ("trivy", "trivy/trivy-golden_alpine-310_image.json"),
    ("grype", "grype/grype-golden_image.json"),
    ("sarif", "sarif/trivy-golden_alpine-310_image-vulns.sarif"),
    ("cyclonedx", "cyclonedx/grype-golden_image_with-vulnerabilities.json"),
]


@pytest.mark.parametrize(("format_name", "name"), FAMILIES)
@pytest.mark.parametrize("keep", [1, 0], ids=["partial", "empty"])
def test_a_scan_of_bravos_image_in_any_format_changes_nothing_of_bravos(alpha, bravo, owned_by, mode, format_name, name, keep) -> None:
    created = bravo.send(fixture_bytes(name), image=BRAVO_IMAGE, format_name=format_name)
    assert created.counts["new"] >= 2
    before = bravo_state()

    outcome = alpha.send(_trim(name, keep), image=BRAVO_IMAGE, format_name=format_name, tag="1.1")

    assert refused(outcome, mode)
    assert bravo_state() == before


# --- a scope shared with bravo: alpha's findings only, bravo's counted as not yours ----------------------------


@pytest.fixture
def shared(alpha, teams) -> list[int]:
    """Alpha's image with 14 findings, 12 of them handed to bravo by an administrator."""
    alpha.send(trivy(range(14)), image=ALPHA_IMAGE)
    staff = UserFactory(is_staff=True)
    bravos = list(Finding.objects.order_by("rule_id")[:12])
    for finding in bravos:
        finding_set_owner(finding=finding, team=teams[1], by=staff)
    return [finding.pk for finding in bravos]


def test_in_a_shared_scope_the_report_applies_to_alphas_findings_and_counts_bravos_as_not_yours(alpha, shared) -> None:
    before = bravo_state()

    report = alpha.send(trivy([*range(7), 12]), image=ALPHA_IMAGE, tag="1.1")  # 7 of bravo's, one of alpha's two

    assert (report.status, report.counts) == ("done", {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 1, "not_yours": 12})
    assert report.held_closures == []
    assert bravo_state() == before
    answer = Client(HTTP_AUTHORIZATION=f"Bearer {alpha.plaintext}").get(f"/api/v1/reports/{report.pk}/").json()
    assert answer["counts"]["not_yours"] == 12
    assert answer["message"].startswith("not yours: 12 findings belong to a team this sender may not change")
    assert "bravo" not in answer["message"]


def test_in_a_shared_scope_the_hold_rule_counts_alphas_findings_only(alpha, shared) -> None:
    report = alpha.send(trivy([]), image=ALPHA_IMAGE, tag="2.0")

    assert report.counts == {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0, "not_yours": 12}
    assert sorted(report.held_closures) == sorted(Finding.objects.filter(team__slug="alpha").values_list("pk", flat=True))
    assert len(report.held_closures) == 2


def test_in_a_shared_scope_repeated_halving_never_touches_bravos_findings(alpha, shared) -> None:
    before = bravo_state()

    reports = [alpha.send(trivy([*range(count), 12, 13]), image=ALPHA_IMAGE, tag=f"1.{count}") for count in (7, 4, 2)]

    assert [(r.counts["fixed"], r.counts["not_yours"], r.held_closures) for r in reports] == [(0, 12, [])] * 3
    assert bravo_state() == before


def test_a_repeat_of_a_report_with_findings_not_yours_takes_the_full_path_and_counts_the_same(alpha, shared) -> None:
    body = trivy([*range(7), 12, 13])
    first = alpha.send(body, image=ALPHA_IMAGE, tag="1.1")
    before = bravo_state()

    again = alpha.send(body, image=ALPHA_IMAGE, tag="1.1")

    assert again.counts == first.counts == {"new": 0, "reopened": 0, "unchanged": 2, "fixed": 0, "not_yours": 12}
    assert bravo_state() == before


def test_an_organisation_wide_token_changes_any_teams_findings(teams, bravo, owned_by) -> None:
    platform = Sender(TeamFactory(slug="platform"), all_teams=True)
    bravo.send(trivy(range(12)), image=BRAVO_IMAGE)

    report = platform.send(trivy(range(7)), image=BRAVO_IMAGE, tag="1.1")

    assert report.counts == {"new": 0, "reopened": 0, "unchanged": 7, "fixed": 5}
    assert Finding.objects.filter(team__slug="bravo", status=Status.FIXED).count() == 5


# --- admission: Kyverno and Gatekeeper policy reports, a policy-reporter lone pass ------------------------------


def lone_result(**changes: object) -> bytes:
    return json.dumps({**json.loads(fixture_bytes("kyverno/policy-reporter_webhook_fail.json")), **changes}).encode()


@pytest.fixture(params=["rule", "reports"])
def bravos_namespace(request: pytest.FixtureRequest, teams: tuple[Any, Any]) -> str:
    """Bravo owns the namespace ``test`` (of the Kyverno fixtures) by a rule, or because its reports created the findings."""
    if request.param == "rule":
        OwnershipRuleFactory(team=teams[1], kind=OwnershipRule.Kind.NAMESPACE, pattern="test")
    return request.param


def test_a_policy_reporter_pass_for_bravos_resource_does_not_fix_bravos_triaged_finding(alpha, bravo, bravos_namespace, mode) -> None:
    bravo.send(fixture_bytes("kyverno/openreports_single_report.json"))
    Finding.objects.filter(rule_id="CVE-2025-47907").update(status=Status.TRIAGED)
    before = bravo_state()

    outcome = alpha.send(lone_result(status="pass"), format_name="kyverno")

    assert refused(outcome, mode)
    assert bravo_state() == before
    assert Finding.objects.get(rule_id="CVE-2025-47907").status == Status.TRIAGED


def kyverno(keep: int) -> bytes:
    """The real OpenReports report of test/test-app with its first ``keep`` results."""
    document = json.loads(fixture_bytes("kyverno/openreports_single_report.json"))
    document["results"] = document["results"][:keep]
    document["summary"] = {"fail": keep, "pass": 0, "warn": 0, "error": 0, "skip": 0}
    return json.dumps(document).encode()


def test_a_partial_kyverno_report_of_bravos_resource_changes_nothing_of_bravos(alpha, bravo, bravos_namespace, mode) -> None:
    bravo.send(fixture_bytes("kyverno/openreports_single_report.json"))
    before = bravo_state()

    outcome = alpha.send(kyverno(1), format_name="kyverno")

    assert refused(outcome, mode)
    assert bravo_state() == before


def test_an_empty_kyverno_report_of_bravos_resource_is_about_nothing_and_changes_nothing(alpha, bravo, bravos_namespace, mode) -> None:
    bravo.send(fixture_bytes("kyverno/openreports_single_report.json"))
    before = bravo_state()

    outcome = alpha.send(kyverno(0), format_name="kyverno")

    assert (outcome.status, outcome.counts) == ("done", {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0})  # no policy evaluated
    assert bravo_state() == before


def gatekeeper(violators: list[str]) -> bytes:
    """A Gatekeeper constraint listing every violator (its whole policy is the scope)."""
    violations = [{"enforcementAction": "deny", "kind": "Namespace", "message": "you must provide labels", "name": ns} for ns in violators]
    status = {"auditTimestamp": "2026-11-01T00:00:00Z", "totalViolations": len(violators), "violations": violations}
    return json.dumps(
        {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": "K8sRequiredLabels",
            "metadata": {"name": "ns-must-have-gk"},
            "status": status,
        }
    ).encode()


@pytest.mark.parametrize("violators", [["bravo-a"], []], ids=["partial", "empty"])
def test_a_gatekeeper_constraint_report_changes_nothing_of_bravos(alpha, bravo, mode, violators) -> None:
    bravo.send(gatekeeper(["bravo-a", "bravo-b", "bravo-c"]))
    before = bravo_state()

    outcome = alpha.send(gatekeeper(violators))

    assert refused(outcome, mode)
    assert bravo_state() == before


# --- events: admission denials and Falco alerts (decided in the worker) ------------------------------------------

FALCO = json.loads(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0])


def falco(pod: str, namespace: str, number: int) -> bytes:
    """The real alert, from ``pod`` in ``namespace`` running that team's image (``<namespace>/api``)."""
    image = f"registry.example.com/{namespace.split('-')[0]}/api"
    fields = {
        **FALCO["output_fields"],
        "k8s.pod.name": pod,
        "k8s.ns.name": namespace,
        "evt.time": number,
        "container.image.repository": image,
    }
    return json.dumps({**FALCO, "uuid": f"00000000-0000-4000-8000-{number:012d}", "output_fields": fields}).encode()


def test_a_falco_alert_is_not_counted_on_bravos_workload(alpha, bravo) -> None:
    bravo.send(falco("api-7d9f8b6c5-x2x4", "bravo-prod", 1))
    before = (bravo_state(), FindingOccurrence.objects.count())

    outcome = alpha.send(falco("api-7d9f8b6c5-x2x4", "bravo-prod", 2))

    assert refused(outcome, "worker")
    assert (bravo_state(), FindingOccurrence.objects.count()) == before


def test_in_a_batch_of_alerts_only_the_one_about_bravos_workload_is_refused(alpha, bravo) -> None:
    bravo.send(falco("api-7d9f8b6c5-x2x4", "bravo-prod", 1))
    before = bravo_state()
    queued = [
        report_submit(data=falco(pod, namespace, number), token=alpha.token, enqueue_now=False)[0]
        for pod, namespace, number in (
            ("web-6b7c8d9f5-x2x4", "alpha-prod", 2),
            ("api-7d9f8b6c5-x2x4", "bravo-prod", 3),
            ("web-6b7c8d9f5-x2x4", "alpha-prod", 4),
        )
    ]

    report_process(queued[0].pk)

    answers = [Report.objects.values_list("status", "error", "counts").get(pk=report.pk) for report in queued]
    assert answers == [
        ("done", "", {"new": 1, "reopened": 0, "unchanged": 0, "fixed": 0}),
        ("failed", FOREIGN_SCOPE, {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0, "not_yours": 1}),
        ("done", "", {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 0}),
    ]
    assert bravo_state() == before


def test_an_admission_denial_is_not_counted_on_bravos_finding(alpha, bravo, teams) -> None:
    body = fixture_bytes("admission-review/denied_pod_kyverno.json")
    bravo.send(body)
    before = bravo_state()
    assert before

    outcome = alpha.send(body)

    assert refused(outcome, "worker")
    assert bravo_state() == before


# --- confirming held closures needs the triage right on the owning team -----------------------------------------


@pytest.fixture
def held(bravo) -> Report:
    bravo.send(trivy(range(12)), image=BRAVO_IMAGE)
    report = bravo.send(trivy([]), image=BRAVO_IMAGE, tag="2.0")
    assert len(report.held_closures) == 12
    return report


@pytest.mark.parametrize(
    "role",
    [{"role": Role.MANAGER, "can_triage": False}, {"role": Role.CHAMPION, "team": "alpha"}],
    ids=["bravo-manager-without-the-triage-grant", "alphas-champion"],
)
def test_confirming_held_closures_without_the_triage_right_on_the_owner_is_refused(held, teams, role) -> None:
    team = teams[0] if role.pop("team", "") == "alpha" else teams[1]
    user = MembershipFactory(team=team, **role).user

    with pytest.raises(ApplicationError) as refusal:
        report_confirm_closures(report=held, user=user)

    assert (refusal.value.status, refusal.value.code) == (403, "forbidden")
    assert Finding.objects.filter(status=Status.OPEN).count() == 12


def test_bravos_member_confirms_held_closures(held, teams) -> None:
    user = MembershipFactory(team=teams[1], role=Role.MEMBER).user

    assert report_confirm_closures(report=held, user=user) == 12

    assert Finding.objects.filter(status=Status.FIXED).count() == 12


def test_the_api_refuses_a_scan_of_bravos_image_with_403_naming_the_reason_not_the_team(alpha, bravo, owned_by) -> None:
    bravo.send(trivy(range(12)), image=BRAVO_IMAGE)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {alpha.plaintext}")

    response = client.generic("POST", f"/api/v1/reports/?image={BRAVO_IMAGE}:1.1", trivy(range(7)), content_type="application/json")

    error = response.json()["error"]
    assert (response.status_code, error["code"], error["message"]) == (403, "not_your_scope", FOREIGN_SCOPE)
    assert "bravo" not in error["message"]
    refusal = Report.objects.get(pk=error["details"]["report"])
    assert (refusal.status, refusal.token_id, refusal.error) == (ReportStatus.FAILED, alpha.token.pk, f"refused: {FOREIGN_SCOPE}")
    assert Finding.objects.filter(team__slug="bravo", status=Status.OPEN).count() == 12
