"""Demo data: a small organisation's last 90 days, made by ingesting real sample reports.

Reports are backdated (``observed_at``) and processed in date order; the posture snapshots are then
rebuilt from the findings' events, so the trend charts show real history.
Loaded by ``manage.py load_demo`` (and `make run`) only into an empty database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_confirm_closures, report_submit
from dashboard.models import Finding, Nudge, NudgeState, Report, Role, Team
from dashboard.services.base_image_counts import base_image_counts_refresh
from dashboard.services.demo_base_images import demo_base_images
from dashboard.services.demo_history import demo_history
from dashboard.services.demo_policies import demo_policies
from dashboard.services.nudges import nudge_complete, nudge_open, nudges_compute
from dashboard.services.posture_demo import posture_demo
from dashboard.services.teams import membership_set, team_create, user_create
from dashboard.services.training import training_load

FIXTURES = Path(settings.BASE_DIR) / "tests" / "fixtures"
DEMO_PASSWORD = "vigil-demo"  # noqa: S105 - printed by `make run`; demo databases only

TEAMS = [("payments", "Payments"), ("storefront", "Storefront"), ("platform", "Platform")]
#: What each demo login sees, as ``load_demo`` prints it.
LOGIN_NOTES = {
    "champion": "team Payments (champion)",
    "manager": "all three teams (manager; triage grant on Platform)",
    "storefront-champion": "team Storefront (champion)",
    "admin": "everything, incl. unowned findings and Django admin (superuser)",
}
USERS = [
    # username, staff, memberships
    ("champion", False, [("payments", Role.CHAMPION)]),
    ("manager", False, [("payments", Role.MANAGER), ("storefront", Role.MANAGER), ("platform", Role.MANAGER)]),
    ("storefront-champion", False, [("storefront", Role.CHAMPION)]),
    ("admin", True, []),
]


@dataclasses.dataclass(frozen=True)
class DemoReport:
    days_ago: int
    team: str
    file: str
    image: str = ""


TIMELINE = [
    DemoReport(88, "payments", "trivy/trivy-golden_alpine-310_image.json", "registry.example.com/payments/api:1.0.0"),
    DemoReport(86, "storefront", "trivy/trivy-golden_fluentd-image_os-and-ruby-gems.json", "registry.example.com/storefront/web:2.3.0"),
    DemoReport(80, "platform", "kube-bench/kube-bench-report-many-vuln.json"),
    DemoReport(78, "platform", "grype/many_vulns.json", "registry.example.com/platform/ingress:1.8.0"),
    DemoReport(74, "payments", "grype/fix_available.json", "registry.example.com/payments/worker:0.9.0"),
    DemoReport(70, "storefront", "sarif/dockle_0_3_15.sarif", "registry.example.com/storefront/web:2.3.0"),
    DemoReport(66, "platform", "kyverno/openreports_list_format.json"),
    DemoReport(60, "payments", "trivy/trivy-golden_alpine-310_image.json", "registry.example.com/payments/api:1.1.0"),
    DemoReport(52, "storefront", "trivy/scheme_2_many_vulns.json", "registry.example.com/storefront/checkout:1.0.0"),
    DemoReport(45, "platform", "trivy/kubernetes.json"),
    DemoReport(40, "payments", "trivy/scheme_2_many_vulns.json", "registry.example.com/payments/api:1.2.0"),
    DemoReport(33, "storefront", "trivy/misconfigurations_and_secrets.json", "registry.example.com/storefront/web:2.4.0"),
    DemoReport(26, "platform", "docker-bench/docker-bench-report-many-vulns.json"),
    DemoReport(21, "payments", "grype/same_cve_different_paths.json", "registry.example.com/payments/worker:1.0.0"),
    DemoReport(14, "storefront", "trivy/scheme_2_many_vulns.json", "registry.example.com/storefront/checkout:1.0.1"),
    DemoReport(12, "payments", "falco/falcosidekick_webhook_payloads.jsonl"),
    DemoReport(11, "platform", "trivy-operator/configauditreport_many.json"),
    DemoReport(8, "storefront", "admission-review/denied_pod_kyverno.json"),
    DemoReport(6, "platform", "gatekeeper/constraint_ns_must_have_gk.yaml"),
    DemoReport(9, "platform", "trivy-operator/vulnerabilityreport_many.json"),
    DemoReport(5, "payments", "cyclonedx/grype-golden_image_with-vulnerabilities.json", "registry.example.com/payments/ledger:3.1.0"),
    DemoReport(3, "payments", "falco/falco_alerts_array.json"),
    DemoReport(2, "payments", "trivy/scheme_2_many_vulns.json", "registry.example.com/payments/api:1.2.1"),
    DemoReport(1, "storefront", "admission-review/reviews_deployment_job.jsonl"),
]


def demo_is_needed() -> bool:
    return not Team.objects.exists() and not Finding.objects.exists() and not Report.objects.exists()


#: Held closures of Payments' reports this recent are left for the champion to confirm.
HELD_WAITING_DAYS = 30


@transaction.atomic
def demo_load(*, today: dt.date | None = None) -> dict[str, int]:
    """Create teams, users and 90 days of history.  Returns counts of what was made."""
    today = today or timezone.localdate()
    teams = {slug: team_create(slug=slug, name=name) for slug, name in TEAMS}
    users = {}
    for username, staff, memberships in USERS:
        # The demo's staff user is the administrator the README sends to Django's admin: a superuser.
        user = user_create(username=username, password=DEMO_PASSWORD, email=f"{username}@example.com", is_staff=staff, is_superuser=staff)
        users[username] = user
        for slug, role in memberships:
            membership_set(user=user, team=teams[slug], role=role)
    training_load()
    by_day: dict[int, list[DemoReport]] = {}
    for item in TIMELINE:
        by_day.setdefault(item.days_ago, []).append(item)
    reports = 0
    for days_ago in range(90, -1, -1):
        day = today - dt.timedelta(days=days_ago)
        for item in by_day.get(days_ago, []):
            observed = timezone.make_aware(dt.datetime.combine(day, dt.time(9, 30)))
            report, _ = report_submit(
                data=(FIXTURES / item.file).read_bytes(), team_slug=item.team, image=item.image, observed_at=observed, enqueue_now=False
            )
            processed = report_process(report.pk)
            if processed is not None and processed.held_closures and not (item.team == "payments" and days_ago <= HELD_WAITING_DAYS):
                # Confirmed by someone with the triage right on the team: its champion, else an administrator.
                # Payments' recent ones stay waiting, so the champion's home shows a confirmation to make.
                report_confirm_closures(report=processed, user=users["champion" if item.team == "payments" else "admin"])
            reports += 1
        _demo_nudges(now=timezone.make_aware(dt.datetime.combine(day, dt.time(10, 0))), champion=users["champion"])
    demo_base_images(today=today)
    demo_history(users=users, teams=teams, today=today)
    demo_policies(users=users)
    posture_demo()  # last: the snapshots are rebuilt from everything the demo did
    base_image_counts_refresh()  # as the hourly snapshot task would
    return {"teams": len(teams), "users": len(users), "reports": reports, "findings": Finding.objects.count()}


def _demo_nudges(*, now: dt.datetime, champion: Any) -> None:
    """Training nudges as the days pass; Payments' champion works through each one within two weeks."""
    nudges_compute(now=now)
    for nudge in Nudge.objects.filter(team__slug="payments", state=NudgeState.NEW, created_at__lte=now - dt.timedelta(days=12)):
        nudge_open(nudge=nudge, by=champion, now=now)
        nudge_complete(nudge=nudge, by=champion, shared_with_team=True, now=now)
