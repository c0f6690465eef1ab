"""Sending the outbox: webhook channels get one JSON POST, email channels one message per member who may read it.

At least once: a row is locked while it is sent and marked sent only after the receiver accepted it; if the
worker dies in between, the row is still pending and is sent again (the ``X-Vigil-Notification`` header carries
its key, so a receiver can drop the repeat).  A refusal is retried with backoff (1, 2, 4 ... minutes) up to
``VIGIL_NOTIFY_MAX_ATTEMPTS``.  Rate-limited: a channel gets at most ``VIGIL_NOTIFY_MAX_PER_HOUR`` messages an
hour; the rest wait for the next run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from dashboard.models import Membership, Notification, NotificationChannel

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5
#: Rows looked at per run (a backlog drains over several runs).
BATCH = 200


class DeliveryError(Exception):
    """The receiver refused or could not be reached: retried later."""


@dataclasses.dataclass
class DeliveryOutcome:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    throttled: int = 0


def post_json(*, url: str, body: dict[str, object], key: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError("webhook URL must be http(s)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above; URL set by a team administrator
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "X-Vigil-Notification": key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered {exc.code}") from None
    except OSError as exc:
        raise DeliveryError(f"webhook unreachable: {type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered {status}")


def email_recipients(channel: NotificationChannel) -> list[str]:
    """Active members of the channel's team (a membership is the right to read its findings), in the chosen roles."""
    members = Membership.objects.filter(team_id=channel.team_id, user__is_active=True).exclude(user__email="")
    roles = channel.role_values()
    if roles:
        members = members.filter(role__in=roles)
    return sorted(set(members.values_list("user__email", flat=True)))


def _send_email(*, subject: str, text: str, to: list[str]) -> None:
    if not to:
        return
    connection = get_connection()
    try:
        connection.send_messages([EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, [address]) for address in to])
    except OSError as exc:
        raise DeliveryError(f"mail server refused: {type(exc).__name__}") from None


def _send(row: Notification) -> None:
    if row.recipient_id is not None:
        if not row.recipient or not row.recipient.is_active or not row.recipient.email:
            return  # nobody to tell any more
        _send_email(subject=row.subject, text=row.text, to=[row.recipient.email])
        return
    channel = row.channel
    if channel is None or not channel.active:
        return
    if channel.kind == NotificationChannel.Kind.WEBHOOK:
        body: dict[str, object] = {"text": f"*{row.subject}*\n{row.text}", "vigil": {"event": row.event, "key": row.key, "link": row.link}}
        post_json(url=channel.url, body=body, key=row.key)
    else:
        _send_email(subject=row.subject, text=row.text, to=email_recipients(channel))


def _throttled(row: Notification, *, now: dt.datetime, sent_now: dict[int, int]) -> bool:
    if row.channel_id is None:
        return False
    if row.channel_id not in sent_now:
        sent_now[row.channel_id] = Notification.objects.filter(channel_id=row.channel_id, sent_at__gt=now - dt.timedelta(hours=1)).count()
    return sent_now[row.channel_id] >= settings.VIGIL_NOTIFY_MAX_PER_HOUR


def _deliver_one(pk: int, *, now: dt.datetime, outcome: DeliveryOutcome, sent_now: dict[int, int]) -> None:
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel", "recipient")
            .filter(pk=pk, state=Notification.State.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if row is None:
            return  # another worker has it, or it is done
        if _throttled(row, now=now, sent_now=sent_now):
            outcome.throttled += 1
            return
        row.attempts += 1
        try:
            _send(row)
        except DeliveryError as exc:
            row.last_error = str(exc)[:500]
            if row.attempts >= settings.VIGIL_NOTIFY_MAX_ATTEMPTS:
                row.state = Notification.State.FAILED
                outcome.failed += 1
                logger.warning("notification %s given up after %d attempts: %s", row.key, row.attempts, exc)
            else:
                row.next_attempt_at = now + dt.timedelta(minutes=2 ** (row.attempts - 1))
                outcome.retried += 1
        else:
            row.state, row.sent_at, row.last_error = Notification.State.SENT, timezone.now(), ""
            outcome.sent += 1
            if row.channel_id is not None:
                sent_now[row.channel_id] = sent_now.get(row.channel_id, 0) + 1
        row.save(update_fields=["attempts", "state", "sent_at", "last_error", "next_attempt_at"])


def notifications_deliver(*, now: dt.datetime | None = None) -> DeliveryOutcome:
    """Send the pending notifications that are due (oldest first)."""
    now = now or timezone.now()
    outcome = DeliveryOutcome()
    sent_now: dict[int, int] = {}
    due = Notification.objects.filter(state=Notification.State.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at", "id")
    for pk in list(due.values_list("pk", flat=True)[:BATCH]):
        _deliver_one(pk, now=now, outcome=outcome, sent_now=sent_now)
    return outcome
