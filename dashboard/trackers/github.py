"""GitHub issues: ``POST /repos/{owner}/{repo}/issues``; webhooks signed with ``X-Hub-Signature-256``.

https://docs.github.com/en/rest/issues/issues#create-an-issue and
https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from dashboard.trackers.base import Created, Draft, TrackerError, WebhookEvent, header, hmac_sha256, parse_json, post_json, same_secret

API_VERSION = "2022-11-28"


def create(*, base_url: str, project: str, username: str, secret: str, issue_type: str, draft: Draft) -> Created:
    owner, _, repo = project.partition("/")
    if not owner or not repo:
        raise TrackerError(f"GitHub project must be owner/repo, not {project!r}", retry=False)
    url = f"{base_url.rstrip('/')}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/issues"
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    answer = post_json(url, headers=headers, body={"title": draft.title, "body": draft.body, "labels": list(draft.labels)})
    if "number" not in answer:
        raise TrackerError("GitHub answered without an issue number", retry=False)
    return Created(external_id=str(answer["number"]), url=str(answer.get("html_url") or ""))


def signature(body: bytes, secret: str) -> str:
    return hmac_sha256(body, secret)


def webhook(*, headers: Mapping[str, str], body: bytes, secret: str) -> WebhookEvent | None:
    if not secret or not same_secret(header(headers, "X-Hub-Signature-256"), signature(body, secret)):
        return None
    payload = parse_json(body) or {}
    issue = payload.get("issue")
    if header(headers, "X-GitHub-Event") != "issues" or not isinstance(issue, dict) or "number" not in issue:
        return WebhookEvent(external_id="", closed=None)
    action = payload.get("action")
    return WebhookEvent(external_id=str(issue["number"]), closed=True if action == "closed" else False if action == "reopened" else None)
