"""Issue-tracker clients: pure HTTP (urllib), no ORM.  Each module creates an issue and reads the tracker's webhook.

``CLIENTS[kind]`` has ``create(base_url=..., project=..., username=..., secret=..., issue_type=..., draft=...)`` and
``webhook(headers=..., body=..., secret=...)`` (``None`` when the request is not proved).
"""

from __future__ import annotations

from types import ModuleType

from dashboard.trackers import github, gitlab, jira
from dashboard.trackers.base import Created, Draft, TrackerError, WebhookEvent

CLIENTS: dict[str, ModuleType] = {"jira": jira, "github": github, "gitlab": gitlab}

__all__ = ["CLIENTS", "Created", "Draft", "TrackerError", "WebhookEvent"]
