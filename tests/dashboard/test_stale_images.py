"""Stale images (dashboard/selectors/stale_images.py): one definition for the posture count and the pages."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import Role
from dashboard.selectors.stale_images import stale_images_of
from dashboard.services.posture_sources import stale_images
from tests.factories import ImageFactory, MembershipFactory, ReportFactory, TeamFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 10)


def at(day: dt.date, hour: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, 0)), timezone.get_default_timezone())


@pytest.fixture
def frozen():
    """The clock stands at DAY, 10:00 (timezone.localdate follows)."""
    with mock.patch("django.utils.timezone.now", return_value=at(DAY, 10)):
        yield


@pytest.fixture
def payments():
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def images(payments):
    """One image last scanned 14 days ago (stale), one 13 days ago (not yet), one seen only by admission."""
    stale = ImageFactory(team=payments, repository="payments/worker")
    ReportFactory(team=payments, image=stale, stream="scan", observed_at=at(DAY - dt.timedelta(days=30), 9))
    ReportFactory(team=payments, image=stale, stream="scan", observed_at=at(DAY - dt.timedelta(days=14), 23))
    fresh = ImageFactory(team=payments, repository="payments/api")
    ReportFactory(team=payments, image=fresh, stream="scan", observed_at=at(DAY - dt.timedelta(days=13), 0))
    admitted = ImageFactory(team=payments, repository="payments/ledger")
    ReportFactory(team=payments, image=admitted, stream="admission", observed_at=at(DAY - dt.timedelta(days=20), 9))
    return stale, fresh, admitted


@pytest.fixture
def champion(payments) -> Client:
    client = Client()
    client.force_login(MembershipFactory(team=payments, role=Role.CHAMPION).user)
    return client


def test_an_image_is_stale_14_days_after_its_last_scan_and_admission_is_not_a_scan(frozen, payments, images) -> None:
    stale, _, _ = images

    rows = stale_images_of(team_ids=[payments.pk])

    assert [(row.image.pk, row.days) for row in rows] == [(stale.pk, 14)]


def test_the_posture_count_and_the_pages_use_the_same_definition(frozen, payments, images) -> None:
    counted = stale_images(start=DAY, end=DAY)

    assert counted == {(payments.pk, 0): len(stale_images_of(team_ids=[payments.pk]))} == {(payments.pk, 0): 1}


def test_the_image_page_says_how_long_the_image_has_not_been_scanned(frozen, champion, images) -> None:
    stale, fresh, _ = images

    stale_page = champion.get(f"/images/{stale.pk}/").content.decode()
    fresh_page = champion.get(f"/images/{fresh.pk}/").content.decode()

    assert "not scanned for 14 days" in stale_page
    assert "not scanned for" not in fresh_page


def test_the_team_page_marks_the_stale_image_in_its_image_list(frozen, champion, images) -> None:
    response = champion.get("/teams/payments/")

    rows = {row["image"].repository: row["stale_days"] for row in response.context["images"]}
    assert rows == {"payments/api": None, "payments/ledger": None, "payments/worker": 14}
    assert response.content.decode().count("not scanned for 14 days") == 1


def test_the_champions_home_lists_the_stale_image(frozen, champion, images) -> None:
    stale, _, _ = images

    response = champion.get("/")

    assert [(row.image.pk, row.days) for row in response.context["summary"].stale_images] == [(stale.pk, 14)]
    assert 'id="stale-images"' in response.content.decode()
