"""POST /api/v1/reports/ and GET /api/v1/reports/{id}/ (in-process tasks)."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import pytest
from celery import current_app
from django.db import IntegrityError, connection
from django.utils import timezone
from kombu import Message
from rest_framework.test import APIClient

from dashboard.ingest import claim, publish, receive
from dashboard.ingest.publish import drop_producer, publish_task
from dashboard.ingest.receive import report_submit
from dashboard.models import Finding, FindingEvent, Report, ReportPayload, ReportStatus
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)

ALPINE = "trivy/trivy-golden_alpine-310_image.json"


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


@pytest.fixture
def client(team) -> APIClient:
    _, token = token_create(team=team, name="payments CI")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post(client: APIClient, body: bytes, query: str = "", **extra: str):
    return client.generic("POST", f"/api/v1/reports/{query}", body, content_type=extra.pop("content_type", "application/json"), **extra)


def test_post_answers_202_with_id_status_url_and_stores_the_raw_report(client) -> None:
    response = post(client, fixture_bytes(ALPINE), "?image=registry.example.com/payments/api:1.4.1")

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "url"}
    assert body["url"] == f"http://testserver/api/v1/reports/{body['id']}/"
    payload = ReportPayload.objects.get(report_id=body["id"])
    assert payload.raw == fixture_bytes(ALPINE)
    assert (payload.encoding, len(payload.data) * 2 < len(fixture_bytes(ALPINE))) == ("lz4", True)


def test_report_reaches_done_with_exact_counts_and_findings_under_the_team(client, team) -> None:
    response = post(client, fixture_bytes(ALPINE), "?image=registry.example.com/payments/api:1.4.1")

    detail = client.get(response.json()["url"]).json()

    assert detail["status"] == "done"
    assert detail["format"] == "trivy"
    assert detail["counts"] == {"new": 4, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert detail["image"] == "registry.example.com/payments/api"
    assert Finding.objects.filter(team=team, image__repository="payments/api", status="open").count() == 4


def test_the_same_report_under_a_new_tag_changes_nothing_but_records_the_tag(client) -> None:
    post(client, fixture_bytes(ALPINE), "?image=registry.example.com/payments/api:1.4.1")
    events_before = FindingEvent.objects.count()

    second = post(client, fixture_bytes(ALPINE), "?image=registry.example.com/payments/api:1.4.2")

    detail = client.get(second.json()["url"]).json()
    assert detail["counts"] == {"new": 0, "reopened": 0, "unchanged": 4, "fixed": 0}
    assert FindingEvent.objects.count() == events_before
    assert Finding.objects.count() == 4
    tags = sorted(Finding.objects.first().occurrence_set.values_list("tag", flat=True))
    assert tags == ["1.4.1", "1.4.2"]


def test_gzip_body_is_accepted(client) -> None:
    response = post(client, gzip.compress(fixture_bytes(ALPINE)), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 202
    assert client.get(response.json()["url"]).json()["status"] == "done"


def test_multipart_file_field_is_accepted(client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("report.json", fixture_bytes(ALPINE), content_type="application/json")
    response = client.post("/api/v1/reports/", {"file": upload}, format="multipart")

    assert response.status_code == 202
    assert client.get(response.json()["url"]).json()["counts"]["new"] == 4


def test_unparsable_report_gets_422_naming_the_problem_and_is_recorded_as_failed(client) -> None:
    response = post(client, b'{"SchemaVersion": 2, "ArtifactName": "x", "Results": [')

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unparsable_report"
    assert "invalid JSON" in response.json()["error"]["message"]
    report = Report.objects.get(pk=response.json()["error"]["details"]["report"])
    assert report.status == "failed"
    assert Finding.objects.count() == 0


def alpine_with_a_list_for_severity() -> bytes:
    report = json.loads(fixture_bytes(ALPINE))
    report["Results"][0]["Vulnerabilities"][0]["Severity"] = ["HIGH"]
    return json.dumps(report).encode()


def test_a_small_report_that_fails_the_full_parse_gets_422_at_once(client) -> None:
    response = post(client, alpine_with_a_list_for_severity())

    assert response.status_code == 422
    assert response.json()["error"]["message"] == "Results[0].Vulnerabilities[0]: Severity is not a string"


def test_a_large_well_formed_report_that_fails_the_full_parse_is_accepted_then_failed_with_the_reason(client, settings) -> None:
    settings.VIGIL_VALIDATE_SYNC_BYTES = 1000  # the report is 16 kB: only the cheap checks run before the 202

    response = post(client, alpine_with_a_list_for_severity())

    assert response.status_code == 202
    report = Report.objects.get(pk=response.json()["id"])
    assert report.status == "failed"
    assert report.error == "Results[0].Vulnerabilities[0]: Severity is not a string"
    assert report.attempts == 1
    assert Finding.objects.count() == 0


def test_a_large_truncated_report_gets_422_at_once(client, settings) -> None:
    settings.VIGIL_VALIDATE_SYNC_BYTES = 1000
    body = fixture_bytes(ALPINE)[:-200]

    response = post(client, body)

    assert response.status_code == 422
    assert "invalid JSON" in response.json()["error"]["message"]
    report = Report.objects.get(pk=response.json()["error"]["details"]["report"])
    assert (report.status, report.attempts) == ("failed", 0)


def test_a_large_report_in_another_format_than_declared_gets_422_at_once(client, settings) -> None:
    settings.VIGIL_VALIDATE_SYNC_BYTES = 1000

    response = post(client, fixture_bytes(ALPINE), "?format=grype")

    assert response.status_code == 422
    assert response.json()["error"]["message"] == "declared format 'grype' but the report looks like 'trivy'"


def test_a_report_refused_by_the_database_stores_neither_row_nor_payload(team) -> None:
    token, _ = token_create(team=team, name="retrying sender")
    first, _ = report_submit(data=fixture_bytes(ALPINE), token=token, idempotency_key="build-7", enqueue_now=False)
    now = timezone.now()

    with pytest.raises(IntegrityError):  # what a concurrent request with the same Idempotency-Key meets
        receive._store(
            team=team, token=token, user=None, format_name="", stream="", image="", digest="0" * 64, stable="", data=b"{}",
            idempotency_key="build-7", observed_at=now, now=now, problem="", enqueue_now=False,
        )  # fmt: skip

    assert list(Report.objects.values_list("pk", flat=True)) == [first.pk]
    assert list(ReportPayload.objects.values_list("report_id", flat=True)) == [first.pk]


def test_missing_or_bad_token_is_refused_with_401() -> None:
    anonymous = APIClient()
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer vgl_notarealtoken")

    assert anonymous.post("/api/v1/reports/", b"{}", content_type="application/json").status_code == 401
    assert bad.post("/api/v1/reports/", b"{}", content_type="application/json").status_code == 401
    assert bad.post("/api/v1/reports/", b"{}", content_type="application/json").json()["error"]["code"] == "authentication_failed"


def test_a_token_cannot_post_for_another_team(client) -> None:
    TeamFactory(slug="storefront")

    response = post(client, fixture_bytes(ALPINE), "?team=storefront")

    assert response.status_code == 403
    assert Report.objects.exclude(status="failed").count() == 0
    assert Finding.objects.count() == 0


def test_unknown_format_and_wrong_content_type_are_refused(client) -> None:
    assert post(client, fixture_bytes(ALPINE), "?format=nessus").json()["error"]["code"] == "unknown_format"
    assert post(client, fixture_bytes(ALPINE), content_type="text/html").status_code == 415


# --- One Falco alert per request: the hot path ----------------------------------------------

ALERT = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0]
OTHER_ALERT = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[1]


@pytest.fixture
def published(settings, monkeypatch) -> list[tuple[str, list[str], str, bool]]:
    """Tasks are published to the broker (not run in-process); records (name, args, queue, inside a transaction).

    Event reports go to a private events queue: the pending marks of their senders are named after it.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = False
    events_queue = f"vigil-test-{uuid.uuid4().hex[:8]}-events"
    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES, receive.EVENTS_TASK: {"queue": events_queue}}
    sent: list[tuple[str, list[str], str, bool]] = []

    def publish_task(name: str, args: list[str], *, queue: str) -> str:
        sent.append((name, args, queue, connection.in_atomic_block))
        return "task-id"

    monkeypatch.setattr(publish, "publish_task", publish_task)
    return sent


def test_one_alert_costs_two_sql_statements_and_the_id_is_published_after_the_commit(
    require_postgres, client, published, settings, django_assert_num_queries
) -> None:
    post(client, OTHER_ALERT)  # the token's first use from this address is recorded (queries of its own)
    publish.pending_clear(claim.events_pending_key(Report.objects.get()))  # its task started

    with django_assert_num_queries(2):  # the token; one INSERT that checks for the same bytes and stores report and payload
        response = post(client, ALERT)

    assert response.status_code == 202
    assert published[-1] == ("vigil.events.process", [response.json()["id"], ""], publish.task_queue(receive.EVENTS_TASK), False)
    assert ReportPayload.objects.get(report_id=response.json()["id"]).raw == ALERT


def test_alerts_of_a_sender_whose_task_is_pending_are_not_published_and_that_task_applies_them(require_postgres, client, published) -> None:
    bodies = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()
    ids = [post(client, body).json()["id"] for body in bodies]
    pending_task = [args for name, args, _, _ in published if name == receive.EVENTS_TASK]

    claim.events_process(ids[0])
    after = post(client, ALERT.replace(b'"uuid": "', b'"uuid": "x', 1)).json()["id"]

    assert pending_task == [[ids[0], ""]]
    assert set(Report.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ReportStatus.DONE}
    assert [args for name, args, _, _ in published if name == receive.EVENTS_TASK] == [[ids[0], ""], [after, ""]]


def test_a_retried_alert_answers_the_first_report_and_is_not_published_again(client, published) -> None:
    first = post(client, ALERT)
    again = post(client, ALERT)

    assert (first.status_code, again.status_code, again.json()) == (202, 202, first.json())
    assert [args[0] for _, args, _, _ in published] == [first.json()["id"]]
    assert Report.objects.count() == ReportPayload.objects.count() == 1


@pytest.fixture(params=[receive.KNOWN_GOOD_BYTES, 0], ids=["checked in the INSERT", "checked before the INSERT"])
def duplicate_check(request, monkeypatch) -> None:
    """PostgreSQL checks small reports for the same bytes in the INSERT itself, larger ones before it."""
    monkeypatch.setattr(receive, "KNOWN_GOOD_BYTES", request.param)


@pytest.mark.parametrize(
    ("first_query", "second_query", "same"),
    [
        ("", "", True),
        ("", "?image=registry.example.com/payments/api:1.4.1", False),
        ("", "?format=falco", False),
        ("?stream=runtime", "?stream=runtime", True),
        ("?stream=runtime", "?stream=admission", False),
        ("?stream=runtime", "", True),  # no stream named: the earlier one matches whatever its stream
    ],
)
def test_the_same_bytes_are_one_report_for_the_same_format_image_and_stream(
    client, published, duplicate_check, first_query, second_query, same
) -> None:
    first = post(client, ALERT, first_query).json()["id"]
    second = post(client, ALERT, second_query).json()["id"]

    assert (second == first, Report.objects.count()) == (same, 1 if same else 2)


def test_the_same_bytes_from_another_team_are_another_report(client, published, duplicate_check) -> None:
    _, other_token = token_create(team=TeamFactory(slug="storefront"), name="storefront falco")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_token}")

    first = post(client, ALERT).json()["id"]
    second = post(other, ALERT).json()["id"]

    assert second != first
    assert sorted(Report.objects.values_list("team__slug", flat=True)) == ["payments", "storefront"]


def test_the_same_bytes_after_the_window_are_another_report(client, published, duplicate_check, settings) -> None:
    first = post(client, ALERT).json()["id"]
    Report.objects.filter(pk=first).update(received_at=timezone.now() - timezone.timedelta(seconds=settings.VIGIL_DEDUPLICATE_SECONDS + 1))

    second = post(client, ALERT).json()["id"]

    assert second != first
    assert Report.objects.count() == ReportPayload.objects.count() == 2


def test_a_broken_alert_sent_again_gets_its_422_again(client, published, duplicate_check) -> None:
    broken = ALERT[:-20]

    first = post(client, broken)
    again = post(client, broken)

    assert (first.status_code, again.status_code) == (422, 422)
    assert first.json()["error"]["details"]["report"] != again.json()["error"]["details"]["report"]
    assert list(Report.objects.values_list("status", flat=True)) == ["failed", "failed"]
    assert published == []


def _fetch(queue: str) -> Message:
    with current_app.connection_for_write() as conn:
        message = conn.default_channel.basic_get(queue, no_ack=True)
        conn.default_channel.queue_delete(queue)
    return message


def test_the_published_task_message_is_the_one_send_task_makes(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queue = f"vigil-test-{uuid.uuid4().hex[:8]}"
    report_id = str(uuid.uuid4())

    current_app.send_task(receive.PROCESS_TASK, args=[report_id], queue=queue, retry=False)
    by_celery = _fetch(queue)
    task_id = publish_task(receive.PROCESS_TASK, [report_id], queue=queue)
    ours = _fetch(queue)

    ids = {"id", "root_id", "correlation_id", "delivery_tag"}
    assert (ours.headers["id"], ours.headers["task"], ours.decode()[0]) == (task_id, "vigil.reports.process", [report_id])
    assert {k: v for k, v in ours.headers.items() if k not in ids} == {k: v for k, v in by_celery.headers.items() if k not in ids}
    assert {k: v for k, v in ours.properties.items() if k not in ids} == {k: v for k, v in by_celery.properties.items() if k not in ids}
    assert (ours.decode(), ours.content_type, ours.delivery_info) == (by_celery.decode(), by_celery.content_type, by_celery.delivery_info)


def test_a_broker_that_is_down_fails_the_publish_at_once_and_the_next_publish_connects_again(team, settings, monkeypatch) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = f"vigil-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ROUTES = {}  # every task on that private queue
    report, _ = report_submit(data=ALERT, team_slug="payments", enqueue_now=False)
    receive.enqueue(report.pk)  # this thread now holds a producer connected to the broker
    monkeypatch.setattr(current_app.conf, "broker_write_url", "redis://127.0.0.1:1/0")  # nothing listens there
    drop_producer()

    started = time.monotonic()
    while_down = receive.enqueue(report.pk)
    seconds = time.monotonic() - started
    monkeypatch.undo()
    after = receive.enqueue(report.pk)

    assert (while_down, seconds < 1.5, after) == (False, True, True)
    assert [_fetch(settings.CELERY_TASK_DEFAULT_QUEUE).decode()[0]] == [[str(report.pk)]]
