"""What every tracker client shares: the issue to create, what the tracker answered, one JSON POST."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

#: Seconds to wait for a tracker: the task retries later rather than hold a worker.
TIMEOUT = 15


class TrackerError(Exception):
    """The tracker refused or could not be reached; ``retry`` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclasses.dataclass(frozen=True)
class Draft:
    title: str
    body: str
    labels: tuple[str, ...] = ("security", "vigil")


@dataclasses.dataclass(frozen=True)
class Created:
    #: Jira key ("SEC-12"), GitHub number, GitLab iid, as text.
    external_id: str
    url: str


@dataclasses.dataclass(frozen=True)
class WebhookEvent:
    """A proved webhook about one issue: closed (True) or reopened (False); ``None`` for anything else."""

    external_id: str
    closed: bool | None


def post_json(url: str, *, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **headers})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - the team's configured tracker
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode("utf-8", "replace")
        raise TrackerError(f"{url} answered {error.code}: {detail}", retry=error.code >= 500 or error.code == 429) from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise TrackerError(f"{url} could not be reached: {error}", retry=True) from error
    except ValueError as error:
        raise TrackerError(f"{url} answered something that is not JSON", retry=False) from error
    if not isinstance(answer, dict):
        raise TrackerError(f"{url} answered JSON that is not an object", retry=False)
    return answer


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an empty expected secret never matches."""
    return bool(expected) and given is not None and hmac.compare_digest(given.encode(), expected.encode())


def hmac_sha256(body: bytes, secret: str) -> str:
    """The ``sha256=<hex>`` signature GitHub (X-Hub-Signature-256) and Jira (X-Hub-Signature) send."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def parse_json(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
