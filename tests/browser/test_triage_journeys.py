"""A champion's morning in the browser: filter the queue, bulk-accept risk with four-eyes approval,
mark a false positive that survives a re-scan of a new tag, and see an expired acceptance reopen."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.utils import timezone

from bench.reportgen import trivy_report
from dashboard.models import Finding, RiskAcceptance, Role, Status
from dashboard.services.risk_acceptance import acceptances_expire
from tests.browser.conftest import login
from tests.dashboard.ingest_helpers import ingest
from tests.factories import FindingFactory, MembershipFactory, RiskAcceptanceFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PASSWORD = "correct-horse-battery"
IMAGE = "registry.example.com/payments/api"


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team(transactional_db):
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris")).user


def test_a_champion_filters_the_queue_and_the_filters_stay_in_the_url(live_server, page, team, champion) -> None:
    FindingFactory(
        team=team, title="critical in KEV", severity="critical", kev=True, risk_score=80, risk_parts={"severity": 52.2, "kev": 15.0}
    )
    FindingFactory(team=team, title="critical, not in KEV", severity="critical", risk_score=52)
    FindingFactory(team=team, title="a low one", severity="low", risk_score=14)
    login(page, live_server.url, "chris", PASSWORD)

    page.goto(f"{live_server.url}/findings/")
    page.select_option("select[name=severity]", "critical")
    page.click("#queue-filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    after_severity = page.locator("table.queue td.title").all_inner_texts()
    page.click(".more-filters summary")
    page.select_option("select[name=kev]", "yes")
    page.click("#queue-filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    bookmarked = page.url
    page.goto(bookmarked)

    assert after_severity == ["critical in KEV", "critical, not in KEV"]
    assert re.search(r"severity=critical.*kev=yes", bookmarked)
    assert page.locator("table.queue td.title").all_inner_texts() == ["critical in KEV"]
    assert page.input_value("select[name=kev]") == "yes"
    assert page.get_attribute("table.queue .risk", "title") == "severity / CVSS 52.2 + in CISA KEV 15 = 67.2"
    assert page.console_errors == []


def test_bulk_accept_risk_with_four_eyes_approved_by_a_second_champion(live_server, browser, page, team, champion) -> None:
    team.four_eyes = True
    team.save()
    second = MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="sam")).user
    chosen = [FindingFactory(team=team, title=f"accept me {n}", risk_score=60 - n) for n in range(2)]
    FindingFactory(team=team, title="leave me", risk_score=10)
    login(page, live_server.url, "chris", PASSWORD)

    page.goto(f"{live_server.url}/findings/")
    for finding in chosen:
        page.check(f"tr[data-id='{finding.pk}'] input.select-row")
    page.select_option("#bulk-action", "accept_risk")
    page.fill("#bulk-reason", "internal admin tool behind the VPN")
    page.click("#bulk-apply")
    page.wait_for_selector("#bulk-flash:not([hidden])")
    requested = page.inner_text("#bulk-flash .flash-text")
    acceptance = RiskAcceptance.objects.get()
    statuses_while_pending = sorted(Finding.objects.values_list("status", flat=True))

    approver = browser.new_context().new_page()
    login(approver, live_server.url, "sam", PASSWORD)
    approver.goto(f"{live_server.url}/")
    waiting = approver.locator("#to-approve tbody tr").all_inner_texts()
    approver.click(f"#to-approve button:has-text('Approve #{acceptance.pk}')")
    approver.wait_for_load_state("networkidle")
    approved = approver.inner_text("ul.messages")
    approver.goto(f"{live_server.url}/findings/?status=risk_accepted")

    assert requested == f"Risk acceptance #{acceptance.pk} waits for a second person's approval."
    assert statuses_while_pending == ["open", "open", "open"]
    assert len(waiting) == 1
    assert "internal admin tool behind the VPN" in waiting[0]
    assert approved == f"Risk acceptance #{acceptance.pk} approved: 2 findings risk accepted."
    assert approver.locator("table.queue td.title").all_inner_texts() == ["accept me 0", "accept me 1"]
    assert (RiskAcceptance.objects.get().approved_by, RiskAcceptance.objects.get().requested_by) == (second, champion)
    assert page.console_errors == []


def test_a_false_positive_stays_false_after_a_rescan_of_a_new_tag(live_server, page, team, champion) -> None:
    ingest(json.dumps(trivy_report(3, image=IMAGE, tag="1.4.1")).encode(), team="payments", image=f"{IMAGE}:1.4.1")
    finding = Finding.objects.order_by("-risk_score", "id").first()
    login(page, live_server.url, "chris", PASSWORD)

    page.goto(f"{live_server.url}/findings/{finding.pk}/")
    page.select_option("#status-select", "false_positive")
    page.fill("#status-form input[name=reason]", "the parser is only used in tests")
    page.click("#status-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    ingest(json.dumps(trivy_report(3, image=IMAGE, tag="1.4.2")).encode(), team="payments", image=f"{IMAGE}:1.4.2")
    page.reload()

    assert page.inner_text("#finding-status") == "false positive"
    assert page.locator("#occurrences tbody tr td:nth-child(2)").all_inner_texts() == ["1.4.2", "1.4.1"]
    assert "status open → false positive by chris: the parser is only used in tests" in " ".join(page.inner_text("#history").split())
    page.goto(f"{live_server.url}/findings/")
    assert page.locator(f"tr[data-id='{finding.pk}']").count() == 0
    assert page.console_errors == []


def test_an_expired_acceptance_reopens_and_the_champion_sees_it(live_server, page, team, champion) -> None:
    finding = FindingFactory(team=team, title="accepted for a while", status=Status.RISK_ACCEPTED)
    acceptance = RiskAcceptanceFactory(
        team=team, requested_by=champion, expires=timezone.localdate() - dt.timedelta(days=1), findings=[finding]
    )

    acceptances_expire()
    login(page, live_server.url, "chris", PASSWORD)
    warning = page.inner_text("p.warning")
    page.goto(f"{live_server.url}/findings/")
    in_queue = page.locator("table.queue td.title").all_inner_texts()
    page.click("table.queue td a")
    history = page.inner_text("#history")

    assert warning == "1 risk acceptance expired in the last 7 days: their findings are open again."
    assert in_queue == ["accepted for a while"]
    assert page.inner_text("#finding-status") == "open"
    assert (
        f"reopened risk accepted → open by Vigil: risk acceptance #{acceptance.pk} expired on {acceptance.expires.isoformat()}"
        in " ".join(history.split())
    )
    assert page.console_errors == []
