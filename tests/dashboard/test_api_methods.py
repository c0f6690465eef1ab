"""Every API route answers 405 to a method it does not have, to every token scope, never 403."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, reverse
from rest_framework.test import APIClient

from dashboard.api.urls import urlpatterns
from dashboard.services.tokens import token_create
from tests.factories import FindingFactory, ReportFactory, TeamFactory

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _unsupported() -> list[tuple[str, str]]:
    cases = []
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        allowed = set(pattern.callback.cls().allowed_methods)  # type: ignore[attr-defined]
        cases += [(str(pattern.name), method) for method in METHODS if method not in allowed]
    return cases


UNSUPPORTED = _unsupported()


def test_every_route_has_some_unsupported_method_to_check() -> None:
    assert {name for name, _ in UNSUPPORTED} == {str(pattern.name) for pattern in urlpatterns}
    assert ("finding-detail", "DELETE") in UNSUPPORTED


@pytest.mark.parametrize("scope", ["admin", "read", "ingest"])
@pytest.mark.parametrize(("name", "method"), UNSUPPORTED, ids=[f"{m} {n}" for n, m in UNSUPPORTED])
def test_an_unsupported_method_is_405_whatever_the_scope(name: str, method: str, scope: str) -> None:
    team = TeamFactory(slug="payments")
    finding = FindingFactory(team=team)
    report = ReportFactory(team=team)
    _, token = token_create(team=team, name="ops", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    kwargs = {
        "finding-detail": {"pk": finding.pk},
        "report-detail": {"pk": report.pk},
        "policy": {"team": team.slug},
        "notification-channels": {"team": team.slug},
        "notification-channel": {"team": team.slug, "pk": 1},
        "tracker-webhook": {"team": team.slug, "kind": "github"},
    }.get(name, {})

    response = client.generic(method, reverse(f"api:{name}", kwargs=kwargs), b"{}", content_type="application/json")

    assert response.status_code == 405, response.content[:200]
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert method not in response["Allow"]
    assert FindingFactory._meta.model.objects.filter(pk=finding.pk).exists()
