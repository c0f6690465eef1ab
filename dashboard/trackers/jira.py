"""Jira Cloud issues: ``POST /rest/api/3/issue`` with basic auth (email and API token); the description is
Atlassian Document Format.  Jira's admin webhooks registered with a secret sign the raw body with HMAC-SHA256 in
``X-Hub-Signature: sha256=<hex>`` (WebSub style); a secret in the URL is not offered: Vigil refuses credentials in
query strings, since URLs end up in access logs.

https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-post and
https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from dashboard.trackers.base import Created, Draft, TrackerError, WebhookEvent, header, hmac_sha256, parse_json, post_json, same_secret


def document(text: str) -> dict[str, Any]:
    """Plain text as an ADF document, one paragraph per line."""
    paragraphs = [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.splitlines() if line.strip()]
    return {"type": "doc", "version": 1, "content": paragraphs}


def create(*, base_url: str, project: str, username: str, secret: str, issue_type: str, draft: Draft) -> Created:
    root = base_url.rstrip("/")
    credentials = base64.b64encode(f"{username}:{secret}".encode()).decode()
    fields = {
        "project": {"key": project},
        "summary": draft.title,
        "issuetype": {"name": issue_type or "Bug"},
        "description": document(draft.body),
        "labels": list(draft.labels),
    }
    answer = post_json(f"{root}/rest/api/3/issue", headers={"Authorization": f"Basic {credentials}", "Accept": "application/json"},
                       body={"fields": fields})  # fmt: skip
    if "key" not in answer:
        raise TrackerError("Jira answered without an issue key", retry=False)
    return Created(external_id=str(answer["key"]), url=f"{root}/browse/{answer['key']}")


def webhook(*, headers: Mapping[str, str], body: bytes, secret: str) -> WebhookEvent | None:
    if not secret or not same_secret(header(headers, "X-Hub-Signature"), hmac_sha256(body, secret)):
        return None
    payload = parse_json(body) or {}
    issue = payload.get("issue")
    if not isinstance(issue, dict) or "key" not in issue or payload.get("webhookEvent") != "jira:issue_updated":
        return WebhookEvent(external_id="", closed=None)
    category = ((issue.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
    return WebhookEvent(external_id=str(issue["key"]), closed=category.get("key") == "done")
