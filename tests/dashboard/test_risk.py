"""Risk score parts, due dates (team SLA overrides, KEV), SLA states."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.services import intel, risk
from tests.factories import FindingFactory, KevEntryFactory, TeamFactory

FACTS = {"severity": "high", "cvss": None, "epss": None, "kev": False, "fix_available": False, "exposed": False}


def test_severity_alone_gives_its_base_score() -> None:
    assert risk.risk_parts(**FACTS) == {"severity": 41.2, "epss": 0.0, "kev": 0.0, "fix_available": 0.0, "exposed": 0.0}


def test_cvss_epss_kev_fix_and_exposure_add_up_to_at_most_100() -> None:
    parts = risk.risk_parts(severity="critical", cvss=10.0, epss=1.0, kev=True, fix_available=True, exposed=True)

    assert parts == {"severity": 55.0, "epss": 15.0, "kev": 15.0, "fix_available": 5.0, "exposed": 10.0}
    assert risk.score_of(parts) == 100.0


def test_out_of_range_inputs_are_clamped() -> None:
    assert risk.risk_parts(**{**FACTS, "cvss": 42.0, "epss": 3.0})["severity"] == 55.0


def test_the_explanation_lists_the_parts_that_count() -> None:
    parts = risk.risk_parts(severity="high", cvss=7.5, epss=0.2, kev=True, fix_available=False, exposed=True)

    assert risk.explain(parts) == "severity / CVSS 41.2 + EPSS 3 + in CISA KEV 15 + running now 10 = 69.2"


def test_a_kev_due_date_wins_only_when_sooner() -> None:
    sla = {"critical": 7}

    sooner = risk.due_date(severity="critical", start=dt.date(2026, 11, 1), sla_days=sla, kev_due=dt.date(2026, 11, 3))
    later = risk.due_date(severity="critical", start=dt.date(2026, 11, 1), sla_days=sla, kev_due=dt.date(2026, 12, 3))
    no_sla = risk.due_date(severity="info", start=dt.date(2026, 11, 1), sla_days=sla, kev_due=dt.date(2026, 12, 3))

    assert (sooner, later, no_sla) == (dt.date(2026, 11, 3), dt.date(2026, 11, 8), dt.date(2026, 12, 3))


def test_team_sla_days_override_the_defaults(settings) -> None:
    settings.VIGIL_SLA_DAYS = {"critical": 7, "high": 30, "medium": 90, "low": 180}

    assert risk.sla_days_for({"high": 10}) == {"critical": 7, "high": 10, "medium": 90, "low": 180}


@pytest.mark.parametrize(
    ("due", "active", "state"),
    [
        (dt.date(2026, 11, 26), True, "overdue"),
        (dt.date(2026, 11, 27), True, "due_soon"),
        (dt.date(2026, 12, 4), True, "due_soon"),
        (dt.date(2026, 12, 5), True, "on_track"),
        (None, True, "none"),
        (dt.date(2026, 11, 1), False, "none"),
    ],
)
def test_sla_states(due, active, state) -> None:
    assert risk.sla_state(due=due, today=dt.date(2026, 11, 27), active=active) == state


@pytest.mark.django_db
def test_rescoring_uses_the_owning_teams_sla_and_the_kev_date() -> None:
    team = TeamFactory(slug="payments", sla_days={"high": 10})
    KevEntryFactory(cve="CVE-2024-0001", due_date=dt.date(2026, 11, 5))
    first_seen = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    plain = FindingFactory(team=team, severity="high", first_seen=first_seen)
    known = FindingFactory(team=team, severity="high", first_seen=first_seen, rule_id="CVE-2024-0001")

    intel.findings_rescore(ids=[plain.pk, known.pk])

    plain.refresh_from_db()
    known.refresh_from_db()
    assert (plain.due_date, known.due_date, known.kev) == (dt.date(2026, 11, 11), dt.date(2026, 11, 5), True)
