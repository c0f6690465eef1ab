"""Repeated admission events of the webhook are counted (one row each), not stored as reports, and the flush turns
the counts into event reports: findings count every decision exactly (services/admission_repeats.py)."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.api.authentication import TokenPrincipal
from dashboard.db.admission_repeats import take_repeats
from dashboard.models import AdmissionRepeat, EnforcementPolicy, Finding, GateDecision, Report, Status
from dashboard.services import admission_repeats
from dashboard.services.admission import admission_validate
from dashboard.services.admission_repeats import REPEAT_WINDOW, forget_firsts, repeats_flush
from dashboard.services.posture_sources import event_counts
from dashboard.services.tokens import token_create
from scanners.base import ImageRef
from tests.conftest import FIXTURES
from tests.factories import (
    EnforcementPolicyFactory,
    EventSightingFactory,
    FindingFactory,
    ImageFactory,
    ImageVersionFactory,
    ReportFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

POD = FIXTURES / "admission-review" / "requests" / "pod_create.json"  # nginx:1.14.2, Pod nginx in namespace default
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
#: Pods of one ReplicaSet: each has its own generated name (and the API server gives each request its own uid).
SUFFIXES = ["x2x7k", "b4c5d", "g6h7j", "k8l9m", "n2p4q"]
WARNED = "vigil/CVE-2023-0286"


def pod(number: int = 0, *, namespace: str = "default", **request: object) -> dict:
    """The documentation's Pod CREATE, as the pod ``number`` of ReplicaSet nginx-7d9f8b6c5d in ``namespace``."""
    body = json.loads(POD.read_text())
    name = f"nginx-7d9f8b6c5d-{SUFFIXES[number % len(SUFFIXES)]}"
    body["request"].update(uid=f"705ab4f5-6393-11e8-b7cc-{number:012d}", name=name, namespace=namespace, **request)
    body["request"]["object"]["metadata"].update(name=name, namespace=namespace)
    return body


@pytest.fixture
def payments():
    return TeamFactory(slug="payments")


@pytest.fixture
def nginx(payments) -> Finding:
    """nginx:1.14.2 as Vigil scanned it: an open critical vulnerability with a fix (the default policy warns)."""
    ref = ImageRef.parse("nginx:1.14.2")
    image = ImageFactory(registry=ref.registry, repository=ref.repository, team=payments)
    ImageVersionFactory(image=image, tag=ref.tag)
    values = {"rule_id": "CVE-2023-0286", "severity": "critical", "package_name": "openssl", "fixed_version": "3.0.8"}
    return FindingFactory(image=image, team=payments, **values)


@pytest.fixture
def credentials(payments) -> tuple:
    return token_create(team=payments, name="prod webhook", scope="admission", cluster="prod")


@pytest.fixture
def webhook(credentials) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials[1]}")
    return client


@pytest.fixture
def principal(credentials) -> TokenPrincipal:
    return TokenPrincipal(credentials[0])


def validate(client: APIClient, body: dict) -> dict:
    """One decision through the API, what it stores committed (and applied, tasks being eager)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        answer = client.post("/api/v1/admission/validate", json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.content
    return answer.json()["response"]


def decide(principal: TokenPrincipal, body: dict, at: dt.datetime) -> None:
    """One decision at ``at`` (the service itself: the clock is the caller's)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        admission_validate(document=body, by=principal, now=at)


def flush(**options: int) -> int:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return repeats_flush(**options)


def stored() -> tuple[int, int]:
    """(admission event reports, repeat rows)."""
    return Report.objects.filter(declared_format="admission-review").count(), AdmissionRepeat.objects.count()


def observed() -> list[dt.datetime]:
    return sorted(Report.objects.filter(declared_format="admission-review").values_list("observed_at", flat=True))


def counted(rule_id: str = WARNED) -> list[tuple[str, int]]:
    """(namespace, occurrences) of the admission findings of ``rule_id``."""
    findings = Finding.objects.filter(stream="admission", rule_id=rule_id).order_by("resource_namespace")
    return list(findings.values_list("resource_namespace", "occurrences"))


def test_warned_decisions_of_one_workload_are_one_report_and_repeats_and_count_exactly_after_the_flush(webhook, nginx) -> None:
    answers = [validate(webhook, pod(number)) for number in range(5)]
    before = (stored(), counted())

    reports = flush()

    finding = Finding.objects.get(stream="admission", rule_id=WARNED)
    last = GateDecision.objects.order_by("created_at").last()
    assert [answer["allowed"] for answer in answers] == [True] * 5
    assert (before, reports, stored(), counted()) == (((1, 4), [("default", 1)]), 1, (2, 0), [("default", 5)])
    assert finding.last_seen == last.created_at
    assert Report.objects.get(occurrences=4).observed_at == last.created_at


def test_denials_in_enforce_mode_count_exactly_after_the_flush(webhook, nginx, payments) -> None:
    EnforcementPolicyFactory(team=payments, mode="enforce")
    answers = [validate(webhook, pod(number)) for number in range(3)]
    before = stored()

    flush()

    denial = Finding.objects.get(stream="admission", rule_id="vigil-policy")
    assert [answer["allowed"] for answer in answers] == [False] * 3
    assert (before, stored(), counted("vigil-policy"), counted()) == ((1, 2), (2, 0), [("default", 3)], [("default", 3)])
    assert denial.last_seen == GateDecision.objects.order_by("created_at").last().created_at


def test_two_workloads_never_share_a_key(webhook, nginx) -> None:
    for number in range(4):
        validate(webhook, pod(number, namespace=["default", "shop"][number % 2]))
    repeated = AdmissionRepeat.objects.values("report_id").distinct().count()
    before = stored()

    flush()

    assert (before, repeated, stored(), counted()) == ((2, 2), 2, (4, 0), [("default", 2), ("shop", 2)])


def test_a_finding_marked_false_positive_between_decisions_changes_the_key(webhook, nginx, payments) -> None:
    second = FindingFactory(image=nginx.image, team=payments, rule_id="CVE-2022-4450", severity="critical", fixed_version="3.0.8")
    validate(webhook, pod(0))
    Finding.objects.filter(pk=second.pk).update(status=Status.FALSE_POSITIVE)
    validate(webhook, pod(1))
    validate(webhook, pod(2))
    before = stored()

    flush()

    assert (before, stored(), counted(), counted("vigil/CVE-2022-4450")) == ((2, 1), (3, 0), [("default", 3)], [("default", 1)])


def test_a_new_policy_version_changes_the_key(webhook, nginx, payments) -> None:
    policy = EnforcementPolicyFactory(team=payments, mode="warn", version=1)
    validate(webhook, pod(0))
    EnforcementPolicy.objects.filter(pk=policy.pk).update(version=2)
    validate(webhook, pod(1))
    validate(webhook, pod(2))
    before = stored()

    flush()

    assert (before, stored(), counted()) == ((2, 1), (3, 0), [("default", 3)])


def test_the_flush_run_again_changes_nothing(webhook, nginx) -> None:
    for number in range(3):
        validate(webhook, pod(number))
    first = flush()
    after_first = (stored(), counted(), Finding.objects.get(stream="admission").last_seen)

    second = flush()

    assert (first, second) == (1, 0)
    assert (stored(), counted(), Finding.objects.get(stream="admission").last_seen) == after_first


def killed(**_: object) -> None:
    raise RuntimeError("the worker was killed before the commit")


def test_a_flush_that_fails_before_its_commit_loses_nothing(webhook, nginx, monkeypatch) -> None:
    for number in range(3):
        validate(webhook, pod(number))

    with monkeypatch.context() as broken:
        broken.setattr(admission_repeats, "report_submit", killed)
        with pytest.raises(RuntimeError, match="killed"):
            flush()
    left = stored()
    flush()

    assert (left, stored(), counted()) == ((1, 2), (2, 0), [("default", 3)])


def test_repeats_of_a_dry_run_record_nothing(webhook, nginx) -> None:
    answers = [validate(webhook, pod(number, dryRun=True)) for number in range(3)]

    flushed = flush()

    assert [bool(answer["warnings"]) for answer in answers] == [True] * 3
    assert (flushed, stored(), GateDecision.objects.count(), counted()) == (0, (0, 0), 0, [])


def test_after_the_window_the_next_event_is_a_full_report_again(principal, nginx) -> None:
    window = REPEAT_WINDOW.total_seconds()
    moments = [T0, T0 + dt.timedelta(seconds=window / 2), T0 + REPEAT_WINDOW, T0 + dt.timedelta(seconds=window * 1.5)]
    for number, moment in enumerate(moments):
        decide(principal, pod(number), moment)
    before = (stored(), observed())

    flush()

    finding = Finding.objects.get(stream="admission")
    assert (before, stored(), counted(), finding.last_seen) == (((2, 2), [moments[0], moments[2]]), (4, 0), [("default", 4)], moments[-1])
    assert observed() == moments


def test_a_memo_lost_costs_one_more_full_report_and_no_count(webhook, nginx) -> None:
    validate(webhook, pod(0))
    validate(webhook, pod(1))
    forget_firsts()  # a restart, or the next request went to another gunicorn worker
    validate(webhook, pod(2))
    validate(webhook, pod(3))
    before = stored()

    flush()

    assert (before, stored(), counted()) == ((2, 2), (4, 0), [("default", 4)])


def test_the_flush_goes_in_batches_until_none_is_left(webhook, nginx) -> None:
    for number in range(6):
        validate(webhook, pod(number, namespace=["default", "shop", "web"][number % 3]))

    reports = flush(batch=2)

    assert (reports, stored(), counted()) == (3, (6, 0), [("default", 2), ("shop", 2), ("web", 2)])


def statements(captured: CaptureQueriesContext) -> list[str]:
    """Each statement as its first three words (verb and table), left out what stores a report (its row, its payload and
    the savepoint around them)."""
    sqls = [query["sql"] for query in captured.captured_queries]
    repeat = 'INSERT INTO "dashboard_admissionrepeat"'  # it names the report it checks
    kept = [sql.strip() for sql in sqls if not sql.startswith(("SAVEPOINT", "RELEASE"))]
    return [" ".join(sql.split()[:3]) for sql in kept if sql.startswith(repeat) or "dashboard_report" not in sql]


def test_a_repeat_costs_one_insert_beyond_the_decisions_own_statements(webhook, nginx, django_assert_num_queries, settings) -> None:
    settings.VIGIL_DECISION_MEMO_SECONDS = 0  # the decision reads its inputs on every database (the memo: test_decision_memo.py)
    validate(webhook, pod(0))  # the token's first use from this address, the catalogue read, the first event stored
    body = json.dumps(pod(1))
    with CaptureQueriesContext(connection) as repeat, django_assert_num_queries(7 + 2):  # + the records' savepoint and release
        webhook.post("/api/v1/admission/validate", body, content_type="application/json")
    forget_firsts()
    with CaptureQueriesContext(connection) as full:  # the same decision, its event stored in full (the worker not run)
        webhook.post("/api/v1/admission/validate", body, content_type="application/json")

    assert statements(repeat) == [*statements(full), 'INSERT INTO "dashboard_admissionrepeat"']
    assert len(full) > len(repeat) and AdmissionRepeat.objects.count() == 1


def test_the_repeats_are_taken_in_one_statement_on_postgresql(require_postgres, webhook, nginx, django_assert_num_queries) -> None:
    for number in range(4):
        validate(webhook, pod(number, namespace=["default", "shop"][number % 2]))

    with django_assert_num_queries(1):
        taken = take_repeats(limit=10)

    assert ([group.count for group in taken], AdmissionRepeat.objects.count()) == ([1, 1], 0)


def take_in_transactions(rounds: int) -> int:
    """A flush's takes (without storing), each in its own transaction, on this thread's own connection."""
    try:
        total = 0
        for _ in range(rounds):
            with transaction.atomic():
                total += sum(group.count for group in take_repeats(limit=10))
        return total
    finally:
        connections.close_all()


def repeat_arriving(report: Report, count: int) -> int:
    try:
        for _ in range(count):
            AdmissionRepeat.objects.create(report=report, at=T0)
        return 0
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_flushes_at_once_while_repeats_arrive_count_every_repeat_exactly_once() -> None:
    report = ReportFactory(team=None, format="admission-review", declared_format="admission-review")
    AdmissionRepeat.objects.bulk_create(AdmissionRepeat(report=report, at=T0) for _ in range(300))

    with ThreadPoolExecutor(max_workers=3) as pool:
        running = [pool.submit(take_in_transactions, 30), pool.submit(take_in_transactions, 30), pool.submit(repeat_arriving, report, 100)]
        taken = sum(future.result() for future in running)
    left = sum(group.count for group in take_repeats(limit=10))  # what arrived after the last take

    assert (taken + left, AdmissionRepeat.objects.count()) == (400, 0)


def test_posture_counts_every_occurrence_a_report_stands_for(payments) -> None:
    denial = FindingFactory(team=payments, stream="admission", kind="policy", source="admission-review")
    alone = ReportFactory(team=payments, declared_format="admission-review", stream="admission")
    repeats = ReportFactory(team=payments, declared_format="admission-review", stream="admission", occurrences=4)
    EventSightingFactory(finding=denial, report=alone)
    EventSightingFactory(finding=denial, report=repeats)

    today = timezone.localdate()
    counts = event_counts(start=today, end=today)
    assert {key: dict(value) for key, value in counts.items()} == {(payments.pk, 0): {"admission": 5}}


def test_a_repeat_of_a_report_deleted_inside_its_minute_is_stored_in_full(webhook, nginx) -> None:
    validate(webhook, pod(0))
    Report.objects.filter(declared_format="admission-review").delete()  # an operator, within the minute

    validate(webhook, pod(1))
    validate(webhook, pod(2))

    assert stored() == (1, 1)  # the second event stored in full, the third a repeat of it
