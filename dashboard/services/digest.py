"""The weekly digest: each champion gets their team's nudges by email, each team by its chat webhook.

Idempotent per week: a ``NudgeDigest`` row is claimed before sending (unique per team, channel,
recipient and week) and released if sending fails, so the next run retries.
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
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from dashboard.models import Membership, Nudge, NudgeDigest, NudgeState, Role, Team, TeamWebhook
from dashboard.services.nudge_rules import NudgeConfig
from dashboard.services.nudges import week_start

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 5


@dataclasses.dataclass
class DigestOutcome:
    emails: int = 0
    webhooks: int = 0
    failures: int = 0


def digest_nudges(*, team: Team, now: dt.datetime) -> list[Nudge]:
    """What a digest lists: nudges still waiting (new, opened, snooze over) and any made in the last 7 days."""
    waiting = Q(state__in=[NudgeState.NEW, NudgeState.OPENED]) | Q(state=NudgeState.SNOOZED, snooze_until__lte=now)
    recent = Q(created_at__gt=now - dt.timedelta(days=7))
    return list(
        Nudge.objects.filter(waiting | recent, team=team, created_at__lte=now)
        .select_related("topic", "module")
        .order_by("-created_at", "-id")
    )


def _link(path: str) -> str:
    return f"{settings.VIGIL_BASE_URL}{path}"


def digest_text(*, team: Team, nudges: list[Nudge]) -> str:
    """The digest in plain text (email body, and chat message)."""
    lines = [f"Hello from Vigil! This week's learning nudges for {team.name}:", ""]
    for nudge in nudges:
        lines.append(f"• {nudge.topic.name} ({nudge.get_state_display()})")
        lines.append(f"  Why you see this: {nudge.reason}")
        if nudge.module is not None:
            lines.append(f"  {nudge.module.title}, {nudge.module.provider}, about {nudge.module.minutes} min: {nudge.module.url}")
        lines.append(f"  Open, mark done, snooze or dismiss: {_link(reverse('nudge', args=[nudge.pk]))}")
        lines.append("")
    lines.append(f"All nudges and whether they helped: {_link(reverse('nudges'))}")
    return "\n".join(lines)


def _claim(*, team: Team, channel: str, recipient: str, week: dt.date, count: int, now: dt.datetime) -> NudgeDigest | None:
    try:
        with transaction.atomic():
            return NudgeDigest.objects.create(team=team, channel=channel, recipient=recipient, week=week, nudges=count, sent_at=now)
    except IntegrityError:
        return None  # already sent this week


def post_webhook(*, url: str, text: str) -> None:
    """POST {"text": ...} as JSON (Slack and Microsoft Teams incoming webhooks accept it)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"webhook URL must be http(s): {url[:80]!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above; URL set by an administrator
        url, data=json.dumps({"text": text}).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "webhook refused the digest", response.headers, None)


def digest_is_due(*, now: dt.datetime, config: NudgeConfig) -> bool:
    local = timezone.localtime(now)
    return (local.weekday(), local.hour) >= (config.digest_weekday, config.digest_hour)


def digest_send_weekly(*, now: dt.datetime | None = None, config: NudgeConfig | None = None, force: bool = False) -> DigestOutcome:
    """Send this week's digests that are not sent yet (from the configured weekday and hour on)."""
    now = now or timezone.now()
    config = config or NudgeConfig.from_settings()
    outcome = DigestOutcome()
    if not force and not digest_is_due(now=now, config=config):
        return outcome
    week = week_start(timezone.localtime(now).date())
    champions: dict[int, list[str]] = {}
    for team_id, email in (
        Membership.objects.filter(role=Role.CHAMPION, user__is_active=True).exclude(user__email="").values_list("team_id", "user__email")
    ):
        champions.setdefault(team_id, []).append(email)
    webhooks = {hook.team_id: hook.url for hook in TeamWebhook.objects.filter(active=True)}
    for team in Team.objects.filter(pk__in=set(champions) | set(webhooks)).order_by("pk"):
        nudges = digest_nudges(team=team, now=now)
        if not nudges:
            continue
        text = digest_text(team=team, nudges=nudges)
        subject = f"Vigil: {len(nudges)} learning nudge{'s' if len(nudges) != 1 else ''} for {team.name} this week"
        for email in sorted(set(champions.get(team.pk, []))):
            claim = _claim(team=team, channel=NudgeDigest.Channel.EMAIL, recipient=email, week=week, count=len(nudges), now=now)
            if claim is None:
                continue
            try:
                send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [email])
                outcome.emails += 1
            except Exception:
                logger.exception("digest email to %s failed", email)
                claim.delete()
                outcome.failures += 1
        url = webhooks.get(team.pk)
        if url:
            claim = _claim(team=team, channel=NudgeDigest.Channel.WEBHOOK, recipient="webhook", week=week, count=len(nudges), now=now)
            if claim is None:
                continue
            try:
                post_webhook(url=url, text=text)
                outcome.webhooks += 1
            except (OSError, ValueError):
                logger.warning("digest webhook for team %s failed; retried next run", team.slug, exc_info=True)
                claim.delete()
                outcome.failures += 1
    return outcome
