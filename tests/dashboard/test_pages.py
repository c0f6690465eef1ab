"""The overview, team and image pages show the exact open counts by severity of a known set of findings."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from dashboard.models import Role, Status
from tests.factories import FindingFactory, ImageFactory, MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

#: One headline cell of ``_severity_cells.html``: the severity and the number shown (a zero is wrapped).
_CELL = re.compile(r'class="num sev-(\w+)">(?:(\d+)|<span class="zero">0</span>)</td>')


def headline(html: str) -> dict[str, int]:
    """The first row of severity cells on a page (the team's or the image's counts)."""
    cells = _CELL.findall(html)[:6]
    return {severity: int(number or 0) for severity, number in cells}


@pytest.fixture
def payments():
    """Payments: 5 critical, 2 high, 5 medium, 2 low, 2 info open over two images, plus closed findings that never count.

    Risk scores all differ, so a GROUP BY that kept the queue's ordering would make every group one finding.
    """
    team = TeamFactory(slug="payments", name="Payments")
    api, worker = ImageFactory(team=team, repository="payments/api"), ImageFactory(team=team, repository="payments/worker")
    open_by_image = {
        api: {"critical": 3, "high": 2, "medium": 1, "low": 2},
        worker: {"critical": 2, "medium": 4, "info": 2},
    }
    score = 1.0
    for image, counts in open_by_image.items():
        for severity, n in counts.items():
            for index in range(n):
                status = (Status.OPEN, Status.TRIAGED, Status.IN_PROGRESS)[index % 3]
                FindingFactory(team=team, image=image, severity=severity, status=status, risk_score=score)
                score += 1
    for status in (Status.FIXED, Status.RISK_ACCEPTED, Status.FALSE_POSITIVE):
        FindingFactory(team=team, image=api, severity="critical", status=status, risk_score=score)
        score += 1
    other = TeamFactory(slug="storefront")
    FindingFactory(team=other, severity="critical", risk_score=99)
    return team, api, worker


def login_manager(client, team) -> None:
    client.force_login(MembershipFactory(team=team, role=Role.MANAGER).user)


def test_the_overview_shows_each_teams_open_findings_by_severity(client, payments) -> None:
    team, _, _ = payments
    login_manager(client, team)

    rows = client.get("/overview/").context["rows"]

    assert [(row["team"].slug, row["by_severity"], row["total"]) for row in rows] == [
        ("payments", {"critical": 5, "high": 2, "medium": 5, "low": 2, "info": 2, "unknown": 0}, 16)
    ]


def test_the_team_page_shows_the_same_numbers_as_the_overview(client, payments) -> None:
    team, _, _ = payments
    login_manager(client, team)

    response = client.get("/teams/payments/")

    assert headline(response.content.decode()) == {"critical": 5, "high": 2, "medium": 5, "low": 2, "info": 2, "unknown": 0}
    images = {row["image"].repository: (row["by_severity"], row["total"]) for row in response.context["images"]}
    assert images == {
        "payments/api": ({"critical": 3, "high": 2, "medium": 1, "low": 2, "info": 0, "unknown": 0}, 8),
        "payments/worker": ({"critical": 2, "high": 0, "medium": 4, "low": 0, "info": 2, "unknown": 0}, 8),
    }


def test_the_image_page_and_its_chart_show_the_images_open_findings(client, payments) -> None:
    team, api, _ = payments
    login_manager(client, team)

    response = client.get(f"/images/{api.pk}/")

    assert headline(response.content.decode()) == {"critical": 3, "high": 2, "medium": 1, "low": 2, "info": 0, "unknown": 0}
    figure = json.loads(re.search(r'<script id="image-data" type="application/json">(.*?)</script>', response.content.decode()).group(1))
    assert (figure["data"][0]["x"], figure["data"][0]["y"]) == (["critical", "high", "medium", "low"], [3, 2, 1, 2])


def test_the_team_pages_findings_show_due_dates_as_every_page_does(client) -> None:
    team = TeamFactory(slug="payments")
    FindingFactory(team=team, due_date=dt.date(2027, 3, 15))
    login_manager(client, team)

    page = client.get("/teams/payments/").content.decode()

    assert "<td>2027-03-15</td>" in page


def test_two_findings_that_differ_only_in_package_path_show_their_paths_on_the_image_page(client) -> None:
    team = TeamFactory(slug="payments")
    image = ImageFactory(team=team)
    for path in ("lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"):
        FindingFactory(team=team, image=image, rule_id="CVE-2021-33574", package_name="libc6", package_path=path)
    login_manager(client, team)

    page = client.get(f"/images/{image.pk}/").content.decode()

    assert ">lib/x86_64-linux-gnu/libc.so.6<" in page and ">usr/lib/x86_64-linux-gnu/libc.so.6<" in page


def test_the_image_pages_findings_show_status_as_the_queue_does(client) -> None:
    team = TeamFactory(slug="payments")
    image = ImageFactory(team=team)
    FindingFactory(team=team, image=image, status=Status.IN_PROGRESS)
    login_manager(client, team)

    page = client.get(f"/images/{image.pk}/").content.decode()

    assert '<span class="status st-in_progress">in progress</span>' in page
