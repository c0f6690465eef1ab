"""GitLab issues: ``POST /api/v4/projects/:id/issues`` with ``PRIVATE-TOKEN``; webhooks carry ``X-Gitlab-Token``.

https://docs.gitlab.com/api/issues/#new-issue and https://docs.gitlab.com/user/project/integrations/webhook_events/#issue-events
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from dashboard.trackers.base import Created, Draft, TrackerError, WebhookEvent, header, parse_json, post_json, same_secret


def create(*, base_url: str, project: str, username: str, secret: str, issue_type: str, draft: Draft) -> Created:
    # A project path ("group/project") is URL-encoded as the id, as GitLab's API expects.
    url = f"{base_url.rstrip('/')}/api/v4/projects/{quote(project, safe='')}/issues"
    body = {"title": draft.title, "description": draft.body, "labels": ",".join(draft.labels)}
    answer = post_json(url, headers={"PRIVATE-TOKEN": secret}, body=body)
    if "iid" not in answer:
        raise TrackerError("GitLab answered without an issue iid", retry=False)
    return Created(external_id=str(answer["iid"]), url=str(answer.get("web_url") or ""))


def webhook(*, headers: Mapping[str, str], body: bytes, secret: str) -> WebhookEvent | None:
    if not same_secret(header(headers, "X-Gitlab-Token"), secret):
        return None
    payload = parse_json(body) or {}
    attributes = payload.get("object_attributes")
    if payload.get("object_kind") != "issue" or not isinstance(attributes, dict) or "iid" not in attributes:
        return WebhookEvent(external_id="", closed=None)
    action = attributes.get("action")
    return WebhookEvent(external_id=str(attributes["iid"]), closed=True if action == "close" else False if action == "reopen" else None)
