"""The tracker clients against a real local HTTP server: the exact request each API documents, and its webhooks."""

from __future__ import annotations

import base64
import json

import pytest

from dashboard.trackers import github, gitlab, jira
from dashboard.trackers.base import Draft, TrackerError, WebhookEvent, hmac_sha256
from tests.dashboard.tracker_receiver import Tracker

DRAFT = Draft(title="Upgrade openssl to 3.0.13 in payments/api (2 findings)", body="Fix these.\n- CVE-2024-0001\n- CVE-2024-0002")


def test_github_gets_a_bearer_token_the_api_version_and_title_body_labels(tracker: Tracker) -> None:
    tracker.answer = {"number": 42, "html_url": "https://github.com/acme/payments/issues/42"}

    created = github.create(base_url=tracker.url, project="acme/payments", username="", secret="ghp_x", issue_type="", draft=DRAFT)

    (request,) = tracker.received
    assert (request.method, request.path) == ("POST", "/repos/acme/payments/issues")
    assert request.headers["authorization"] == "Bearer ghp_x"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"title": DRAFT.title, "body": DRAFT.body, "labels": ["security", "vigil"]}
    assert created.external_id == "42"
    assert created.url == "https://github.com/acme/payments/issues/42"


def test_gitlab_gets_a_private_token_an_encoded_project_path_and_comma_separated_labels(tracker: Tracker) -> None:
    tracker.answer = {"id": 84, "iid": 7, "web_url": "https://gitlab.example.com/acme/payments/-/issues/7"}

    created = gitlab.create(base_url=tracker.url, project="acme/payments", username="", secret="glpat-x", issue_type="", draft=DRAFT)

    (request,) = tracker.received
    assert (request.method, request.path) == ("POST", "/api/v4/projects/acme%2Fpayments/issues")
    assert request.headers["private-token"] == "glpat-x"
    assert "authorization" not in request.headers
    assert request.body == {"title": DRAFT.title, "description": DRAFT.body, "labels": "security,vigil"}
    assert created.external_id == "7"
    assert created.url == "https://gitlab.example.com/acme/payments/-/issues/7"


def test_jira_gets_basic_auth_of_email_and_token_and_fields_with_an_adf_description(tracker: Tracker) -> None:
    tracker.answer = {"id": "10000", "key": "SEC-12", "self": f"{tracker.url}/rest/api/3/issue/10000"}

    created = jira.create(base_url=tracker.url, project="SEC", username="champion@acme.example", secret="jira-x", issue_type="Task",
                          draft=DRAFT)  # fmt: skip

    (request,) = tracker.received
    assert (request.method, request.path) == ("POST", "/rest/api/3/issue")
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"champion@acme.example:jira-x").decode()
    assert request.headers["accept"] == "application/json"
    fields = request.body["fields"]
    assert fields["project"] == {"key": "SEC"}
    assert fields["summary"] == DRAFT.title
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["labels"] == ["security", "vigil"]
    assert fields["description"]["type"] == "doc"
    assert fields["description"]["version"] == 1
    assert [p["content"][0]["text"] for p in fields["description"]["content"]] == ["Fix these.", "- CVE-2024-0001", "- CVE-2024-0002"]
    assert created.external_id == "SEC-12"
    assert created.url == f"{tracker.url}/browse/SEC-12"


def test_a_refusal_is_not_retried_and_an_outage_is(tracker: Tracker) -> None:
    tracker.status, tracker.answer = 422, {"message": "Validation Failed"}
    with pytest.raises(TrackerError) as refused:
        github.create(base_url=tracker.url, project="acme/payments", username="", secret="x", issue_type="", draft=DRAFT)
    tracker.status = 503
    with pytest.raises(TrackerError) as down:
        github.create(base_url=tracker.url, project="acme/payments", username="", secret="x", issue_type="", draft=DRAFT)

    assert refused.value.retry is False
    assert "422" in str(refused.value)
    assert down.value.retry is True


def test_an_unreachable_tracker_is_retried() -> None:
    with pytest.raises(TrackerError) as unreachable:
        gitlab.create(base_url="http://127.0.0.1:9", project="1", username="", secret="x", issue_type="", draft=DRAFT)

    assert unreachable.value.retry is True


GITHUB_CLOSED = json.dumps({"action": "closed", "issue": {"number": 42, "state": "closed"}, "repository": {"full_name": "acme/p"}}).encode()


def test_a_github_webhook_is_read_only_with_its_hmac_signature() -> None:
    signed = {"X-GitHub-Event": "issues", "X-Hub-Signature-256": github.signature(GITHUB_CLOSED, "s3cret")}
    forged = {"X-GitHub-Event": "issues", "X-Hub-Signature-256": github.signature(GITHUB_CLOSED, "guess")}

    assert github.webhook(headers=signed, body=GITHUB_CLOSED, secret="s3cret") == WebhookEvent("42", closed=True)
    assert github.webhook(headers=forged, body=GITHUB_CLOSED, secret="s3cret") is None
    assert github.webhook(headers={"X-GitHub-Event": "issues"}, body=GITHUB_CLOSED, secret="s3cret") is None
    assert github.webhook(headers=signed, body=GITHUB_CLOSED + b" ", secret="s3cret") is None


def test_the_known_hmac_example_from_githubs_documentation_verifies() -> None:
    # docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody", payload "Hello, World!".
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    assert github.signature(b"Hello, World!", "It's a Secret to Everybody") == expected


def test_a_gitlab_webhook_needs_its_token_and_reads_close_and_reopen() -> None:
    closed = json.dumps({"object_kind": "issue", "event_type": "issue", "object_attributes": {"iid": 7, "action": "close"}}).encode()
    reopened = json.dumps({"object_kind": "issue", "object_attributes": {"iid": 7, "action": "reopen"}}).encode()

    assert gitlab.webhook(headers={"X-Gitlab-Token": "tok"}, body=closed, secret="tok") == WebhookEvent("7", closed=True)
    assert gitlab.webhook(headers={"x-gitlab-token": "tok"}, body=reopened, secret="tok") == WebhookEvent("7", closed=False)
    assert gitlab.webhook(headers={"X-Gitlab-Token": "other"}, body=closed, secret="tok") is None
    assert gitlab.webhook(headers={}, body=closed, secret="tok") is None


def test_a_jira_webhook_needs_its_hmac_signature_and_done_means_closed() -> None:
    done = json.dumps(
        {"webhookEvent": "jira:issue_updated", "issue": {"key": "SEC-12", "fields": {"status": {"statusCategory": {"key": "done"}}}}}
    ).encode()
    doing = done.replace(b'"done"', b'"indeterminate"')

    assert jira.webhook(headers={"X-Hub-Signature": hmac_sha256(done, "abc")}, body=done, secret="abc") == WebhookEvent("SEC-12", True)
    assert jira.webhook(headers={"X-Hub-Signature": hmac_sha256(doing, "abc")}, body=doing, secret="abc") == WebhookEvent("SEC-12", False)
    assert jira.webhook(headers={"X-Hub-Signature": hmac_sha256(done, "abd")}, body=done, secret="abc") is None
    assert jira.webhook(headers={"X-Hub-Signature": hmac_sha256(done, "")}, body=done, secret="") is None
