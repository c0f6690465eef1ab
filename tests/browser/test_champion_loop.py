"""In the browser: held closures confirmed for a selection, and the queue's rows showing their new status
right after a bulk decision (no reload)."""

from __future__ import annotations

import json

import pytest

from bench.reportgen import trivy_report
from dashboard.models import Finding, Report, Role, Status
from tests.browser.conftest import login
from tests.dashboard.ingest_helpers import ingest
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

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


def test_a_champion_keeps_a_held_finding_open_and_confirms_the_rest(live_server, page, team, champion) -> None:
    full = trivy_report(10, image=IMAGE)
    ingest(json.dumps(full).encode(), team="payments")
    partial = json.loads(json.dumps(full))
    partial["Results"][0]["Vulnerabilities"] = []  # every OS package gone: more than half, held
    held = ingest(json.dumps(partial).encode(), team="payments")
    keep = Finding.objects.filter(pk__in=held.held_closures).order_by("-risk_score", "id").first()
    login(page, live_server.url, "chris", PASSWORD)

    page.goto(f"{live_server.url}/")
    page.click(f"#held-waiting a[href='/reports/{held.pk}/#held']")
    page.wait_for_load_state("networkidle")
    listed = page.locator("#held-findings tbody tr").count()
    all_checked = page.locator("#held-findings input[name=finding]:checked").count()
    page.uncheck(f"#held-{keep.pk} input[name=finding]")
    select_all_after = page.is_checked("#held-all")
    page.click("#confirm-selected")
    page.wait_for_load_state("networkidle")

    held.refresh_from_db()
    assert listed == all_checked == len(held.held_closures) + Finding.objects.filter(status=Status.FIXED).count()
    assert select_all_after is False
    assert held.held_closures == [keep.pk]
    assert Finding.objects.get(pk=keep.pk).status == Status.OPEN
    assert page.locator("#held-findings tbody tr").count() == 1
    assert f"{listed - 1} findings marked fixed." in page.inner_text("ul.messages")
    assert Report.objects.get(pk=held.pk).counts["fixed"] == listed - 1
    assert page.console_errors == []


def test_after_a_bulk_decision_the_rows_show_their_new_status_without_a_reload(live_server, page, team, champion) -> None:
    chosen = [FindingFactory(team=team, title=f"triage me {n}", risk_score=60 - n) for n in range(2)]
    untouched = FindingFactory(team=team, title="leave me", risk_score=10)
    login(page, live_server.url, "chris", PASSWORD)

    page.goto(f"{live_server.url}/findings/")
    page.evaluate("window.notReloaded = true")
    for finding in chosen:
        page.check(f"tr[data-id='{finding.pk}'] input.select-row")
    page.select_option("#bulk-action", "status")
    page.select_option("#bulk-form select[name=status]", "in_progress")
    page.fill("#bulk-reason", "working on it")
    page.click("#bulk-apply")
    page.wait_for_selector(f"tr[data-id='{chosen[1].pk}'] .col-status .st-in_progress")
    flash = page.inner_text("#bulk-flash")
    page.click(f"tr[data-id='{untouched.pk}'] button.assign-me")
    page.wait_for_selector(f"tr[data-id='{untouched.pk}'] .assignee-name:text('chris')")

    assert [page.inner_text(f"tr[data-id='{f.pk}'] .col-status") for f in chosen] == ["in progress", "in progress"]
    assert page.inner_text(f"tr[data-id='{untouched.pk}'] .col-status") == "open"
    assert page.evaluate("window.notReloaded") is True
    assert flash.startswith("2 findings now in progress.")
    assert page.inner_text("#bulk-flash").startswith("1 finding assigned to chris.")
    assert Finding.objects.get(pk=untouched.pk).assignee_id == champion.pk
    assert page.console_errors == []
