"""The demo's enforcement policies and decisions (dashboard/services/demo_policies.py)."""

from __future__ import annotations

import pytest

from dashboard.models import EnforcementPolicy, GateDecision
from dashboard.services.demo_policies import demo_policies
from tests.factories import FindingFactory, ImageFactory, ImageVersionFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_demo_policies_are_versioned_and_each_demo_image_is_gated() -> None:
    teams = {slug: TeamFactory(slug=slug) for slug in ("payments", "storefront", "platform")}
    champion = UserFactory(username="champion")
    MembershipFactory(user=champion, team=teams["payments"], role="champion")
    users = {"admin": UserFactory(username="admin", is_staff=True), "champion": champion}
    api = ImageFactory(repository="payments/api", team=teams["payments"])
    ImageVersionFactory(image=api, tag="1.2.1")
    FindingFactory(image=api, team=teams["payments"], severity="critical", fixed_version="2.0")

    assert demo_policies(users=users) == 1
    payments = EnforcementPolicy.objects.get(team=teams["payments"])
    assert (payments.version, payments.namespace_modes["payments-prod"], payments.epss_min) == (2, "enforce", 0.5)
    assert EnforcementPolicy.objects.get(team=teams["storefront"]).mode == "audit"
    decision = GateDecision.objects.get()
    assert (decision.image_ref, decision.decision, decision.policy_team, decision.actor_label) == (
        "registry.example.com/payments/api:1.2.1",
        "warn",
        "payments",
        "Vigil",
    )
