"""Every format through the API; policy reports close only what they evaluated; events aggregate and go quiet."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.ingest.quiet import resolve_quiet_events
from dashboard.models import Finding, Report, Status
from dashboard.services.tokens import token_create
from scanners import registry
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

ONE_PER_FORMAT = [
    "trivy/trivy-golden_alpine-310_image.json",
    "trivy/kubernetes.json",
    "trivy-operator/vulnerabilityreport_many.json",
    "grype/fix_available.json",
    "sarif/dockle_0_3_15.sarif",
    "cyclonedx/grype-golden_image_with-vulnerabilities.json",
    "kyverno/openreports_list_format.json",
    "gatekeeper/constraints_list_truncated.json",
    "admission-review/denied_pod_kyverno.json",
    "falco/falcosidekick_webhook_payloads.jsonl",
    "kube-bench/kube-bench-report-many-vuln.json",
    "docker-bench/docker-bench-report-many-vulns.json",
]


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


@pytest.mark.parametrize("name", ONE_PER_FORMAT)
def test_every_format_is_ingested_and_shown_on_the_findings_page(team, name: str) -> None:
    parser, parsed = registry.parse_bytes(fixture_bytes(name))
    champion = MembershipFactory(team=team).user
    browser = Client()
    browser.force_login(champion)

    report = ingest(fixture_bytes(name), team="payments")

    unique = len({finding.fingerprint for finding in parsed.findings})
    assert report.status == "done", report.error
    assert report.format == parser.name
    assert report.counts["new"] == unique > 0
    assert Finding.objects.filter(team=team, source=parser.name).count() == unique
    page = browser.get(f"/findings/?team=payments&status=&kind={parsed.findings[0].kind}")
    assert page.status_code == 200
    assert parsed.findings[0].rule_id in page.content.decode()


def kyverno_list() -> dict:
    return json.loads(fixture_bytes("kyverno/openreports_list_format.json"))


def test_a_policy_report_closes_only_results_of_the_resources_it_evaluated(team) -> None:
    ingest(fixture_bytes("kyverno/openreports_list_format.json"), team="payments")
    later = kyverno_list()
    later["items"] = [item for item in later["items"] if item["metadata"]["name"] != "deployment-app1-630fc"]
    app2 = later["items"][0]
    app2["results"] = [{**result, "result": "pass"} if result["policy"] == "CVE-2025-47907" else result for result in app2["results"]]

    report = ingest(json.dumps(later).encode(), team="payments")

    statuses = dict(Finding.objects.values_list("rule_id", "status"))
    assert report.counts == {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 1}
    assert statuses == {"CVE-2025-9232": Status.OPEN, "CVE-2025-47907": Status.FIXED, "SECURITY-001": Status.OPEN}


def test_runtime_alerts_aggregate_into_one_finding_per_identity_with_counts_and_samples(team) -> None:
    first = ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl"), team="payments")
    again = ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl") + b"\n", team="payments")

    shell = Finding.objects.get(rule_id="Terminal shell in container")
    assert first.counts == {"new": 5, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert again.counts == {"new": 0, "reopened": 0, "unchanged": 5, "fixed": 0}
    assert Finding.objects.count() == 5
    assert shell.occurrences == 4
    assert len(shell.details["samples"]) == 4
    assert shell.details["samples"][0]["resource"]["namespace"] == "payments"


def test_runtime_alerts_never_close_by_absence_but_resolve_after_a_quiet_period(team) -> None:
    start = timezone.now() - dt.timedelta(days=30)
    ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl"), team="payments", observed_at=start)
    ingest(fixture_bytes("falco/falco_alerts_array.json"), team="payments", observed_at=start + dt.timedelta(days=10))

    assert Finding.objects.filter(status=Status.OPEN).count() == 7
    resolved = resolve_quiet_events(now=start + dt.timedelta(days=20))
    again = resolve_quiet_events(now=start + dt.timedelta(days=20))

    assert (resolved, again) == (5, 0)
    assert Finding.objects.filter(status=Status.FIXED).count() == 5
    back = ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl"), team="payments", observed_at=start + dt.timedelta(days=21))
    assert back.counts["reopened"] == 5


def gatekeeper(violators: list[str], *, name: str = "ns-must-have-gk", total: int | None = None) -> bytes:
    violations = [{"enforcementAction": "deny", "kind": "Namespace", "message": "you must provide labels", "name": ns} for ns in violators]
    status = {
        "auditTimestamp": "2026-11-01T00:00:00Z",
        "totalViolations": len(violators) if total is None else total,
        "violations": violations,
    }
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sRequiredLabels",
        "metadata": {"name": name},
        "status": status,
    }
    return json.dumps(constraint).encode()


def test_a_constraint_report_closes_its_own_fixed_violations_and_never_another_constraints(team) -> None:
    ingest(gatekeeper(["default", "kube-public", "payments"]), team="payments")
    ingest(gatekeeper(["default"], name="ns-must-have-owner"), team="payments")

    later = ingest(gatekeeper(["default", "kube-public"]), team="payments")

    open_ = sorted(Finding.objects.filter(status=Status.OPEN).values_list("rule_id", "resource_name"))
    assert later.counts == {"new": 0, "reopened": 0, "unchanged": 2, "fixed": 1}
    assert open_ == [
        ("K8sRequiredLabels/ns-must-have-gk", "default"),
        ("K8sRequiredLabels/ns-must-have-gk", "kube-public"),
        ("K8sRequiredLabels/ns-must-have-owner", "default"),
    ]


def test_a_truncated_constraint_report_closes_nothing(team) -> None:
    ingest(gatekeeper(["default", "kube-public", "payments"]), team="payments")

    truncated = ingest(gatekeeper(["default"], total=20), team="payments")

    assert truncated.counts == {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 0}
    assert Finding.objects.filter(status=Status.OPEN).count() == 3


def test_a_per_policy_kyverno_report_never_closes_other_policies_on_the_same_resource(team) -> None:
    def report(policy: str, outcome: str) -> bytes:
        result = {
            "policy": policy,
            "rule": "check",
            "result": outcome,
            "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "namespace": "payments"}],
        }
        body = {
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {"name": f"cpol-{policy}", "namespace": "payments"},
        }
        return json.dumps({**body, "results": [result]}).encode()

    ingest(report("require-limits", "fail"), team="payments")
    ingest(report("disallow-latest", "fail"), team="payments")

    fixed = ingest(report("require-limits", "pass"), team="payments")

    assert fixed.counts == {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 1}
    assert dict(Finding.objects.values_list("rule_id", "status")) == {
        "require-limits/check": Status.FIXED,
        "disallow-latest/check": Status.OPEN,
    }


def test_a_severity_set_on_a_runtime_finding_survives_the_next_alert_of_another_pod(team) -> None:
    alert = json.loads(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0])
    ingest(json.dumps(alert).encode(), team="payments")
    Finding.objects.update(severity="low")  # as a set-severity triage rule leaves it
    alert.update(uuid="9f9f9f9f-0000-4000-8000-000000000001", time="2024-06-03T09:00:00Z")
    alert["output"] = alert["output"].replace("x2x4z", "q7r8s")
    alert["output_fields"].update({"k8s.pod.name": "api-7d9f8b6c5-q7r8s", "evt.time": 1717405200000000000})

    second = ingest(json.dumps(alert).encode(), team="payments")

    shell = Finding.objects.get()
    assert second.counts == {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 0}
    assert (shell.severity, shell.occurrences, shell.details["uuid"]) == ("low", 2, "9f9f9f9f-0000-4000-8000-000000000001")
    assert "q7r8s" in shell.description


# --- Kyverno's policy-reporter webhook: one result per request ------------------------------------------------


def lone_result(**changes: object) -> bytes:
    return json.dumps({**json.loads(fixture_bytes("kyverno/policy-reporter_webhook_fail.json")), **changes}).encode()


def test_a_policy_reporter_result_upserts_its_finding_and_closes_nothing_else(team) -> None:
    ingest(fixture_bytes("kyverno/openreports_single_report.json"), team="payments")  # three results on test/test-app

    again = ingest(lone_result(), team="payments", format_name="kyverno")
    other_policy = ingest(lone_result(policy="CVE-2026-0001", message="a new one"), team="payments", format_name="kyverno")

    statuses = dict(Finding.objects.values_list("rule_id", "status"))
    assert (again.status, again.counts) == ("done", {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 0})
    assert other_policy.counts == {"new": 1, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert statuses == {name: Status.OPEN for name in ("CVE-2025-9232", "CVE-2025-47907", "CIS-BENCH-001", "CVE-2026-0001")}


def test_a_policy_reporter_pass_fixes_exactly_its_finding(team) -> None:
    ingest(fixture_bytes("kyverno/openreports_single_report.json"), team="payments")

    passed = ingest(lone_result(status="pass"), team="payments", format_name="kyverno")
    unknown = ingest(lone_result(status="pass", policy="never-failed"), team="payments", format_name="kyverno")

    fixed = Finding.objects.get(rule_id="CVE-2025-47907")
    assert passed.counts == {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 1}
    assert unknown.counts == {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert sorted(Finding.objects.filter(status=Status.OPEN).values_list("rule_id", flat=True)) == ["CIS-BENCH-001", "CVE-2025-9232"]
    assert list(fixed.events.filter(type="fixed").values_list("reason", "report_id")) == [("evaluated again and passed", passed.pk)]
    assert ingest(lone_result(), team="payments", format_name="kyverno").counts["reopened"] == 1


def test_policy_reporter_posts_results_and_heartbeats_as_it_sends_them(team, django_capture_on_commit_callbacks) -> None:
    _, token = token_create(team=team, name="policy-reporter")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_USER_AGENT="Policy-Reporter")

    with django_capture_on_commit_callbacks(execute=True):
        result = client.post("/api/v1/reports/?format=kyverno", lone_result(), content_type="application/json; charset=utf-8")
        heartbeat = client.post(
            "/api/v1/reports/?format=kyverno",
            fixture_bytes("kyverno/policy-reporter_webhook_heartbeat.json"),
            content_type="application/json",
        )

    assert (result.status_code, heartbeat.status_code) == (202, 202)
    assert list(Report.objects.order_by("received_at").values_list("status", "findings_total")) == [("done", 1), ("done", 0)]
    assert list(Finding.objects.values_list("rule_id", "resource_namespace", "resource_kind", "resource_name")) == [
        ("CVE-2025-47907", "test", "Deployment", "test-app")
    ]
