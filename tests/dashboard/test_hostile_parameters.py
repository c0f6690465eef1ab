"""Hostile query parameters: a NUL character, an over-long value or a credential in the URL gets a clear
4xx from one middleware (dashboard/request_checks.py) on every page and API, never a 500 from PostgreSQL."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from dashboard.models import OwnershipRule
from dashboard.services.tokens import token_create
from tests.factories import FindingFactory, OwnershipRuleFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

#: Every one of these answered 500 on PostgreSQL ("A string literal cannot contain NUL (0x00) characters").
NUL_API = [
    "/api/v1/findings/?team=alpha%00",
    "/api/v1/findings/?image=registry.example.com/alpha/api%00:1.0",
    "/api/v1/findings/?q=openssl%00",
    "/api/v1/findings/?source=trivy%00",
    "/api/v1/findings/export.csv?team=alpha%00",
    "/api/v1/nudges/?team=alpha%00",
]
NUL_PAGES = [
    "/findings/?team=alpha%00",
    "/findings/?image=registry.example.com/alpha/api%00",
    "/findings/?q=%00",
    "/findings/?source=trivy%00",
    "/nudges/?team=alpha%00",
    "/audit/?q=%00",
    "/reports/?source=%00",
    "/?team=alpha%00",
]


@pytest.fixture
def api() -> APIClient:
    team = TeamFactory(slug="alpha")
    FindingFactory(team=team)
    _, token = token_create(team=team, name="ci", scope="admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def browser() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("url", NUL_API)
def test_a_nul_in_an_api_parameter_is_a_400_in_the_error_shape(require_postgres, api, url: str) -> None:
    response = api.get(url)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_parameter"
    assert "contains a NUL character" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", NUL_PAGES)
def test_a_nul_in_a_page_parameter_is_a_400_page(require_postgres, browser, url: str) -> None:
    response = browser.get(url)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"contains a NUL character" in response.content


def test_a_nul_in_a_parameter_name_and_in_the_path_are_refused_too(require_postgres, api) -> None:
    name = api.get("/api/v1/findings/?te%00am=alpha")
    path = api.get("/api/v1/findings/%00/")

    assert (name.status_code, path.status_code) == (400, 400)
    assert "NUL" in path.json()["error"]["message"]


def test_a_nul_in_a_form_field_a_page_reads_without_a_form_is_a_400_and_changes_nothing(require_postgres, browser) -> None:
    rule = OwnershipRuleFactory()

    response = browser.post(f"/ownership/rules/{rule.pk}/delete/", {"reason": "gone\x00"})

    assert response.status_code == 400
    assert b"form field &#x27;reason&#x27; contains a NUL character" in response.content
    assert OwnershipRule.objects.filter(pk=rule.pk).exists()


def test_an_over_long_parameter_is_refused_naming_the_limit(api, browser, settings) -> None:
    settings.VIGIL_MAX_PARAM_CHARS = 100

    api_answer = api.get("/api/v1/findings/", {"q": "x" * 101})
    page = browser.get("/findings/", {"image": "r" * 101})
    at_limit = api.get("/api/v1/findings/", {"q": "x" * 100})

    assert (api_answer.status_code, page.status_code, at_limit.status_code) == (400, 400, 200)
    assert api_answer.json()["error"]["message"] == "query parameter 'q' is longer than 100 characters"
    assert b"longer than 100 characters" in page.content


@pytest.mark.parametrize("name", ["token", "access_token", "api_key", "apikey", "key", "Api-Key", "secret", "authorization"])
def test_a_credential_in_the_query_string_is_refused_even_with_a_good_header(api, name: str) -> None:
    response = api.get(f"/api/v1/findings/?{name}=whatever")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "credentials_in_query"
    assert "Authorization header" in response.json()["error"]["message"]


def test_a_token_under_any_parameter_name_is_refused_on_pages_and_api(api, browser) -> None:
    _, token = token_create(team=TeamFactory(slug="bravo"), name="leaked")

    on_api = api.get("/api/v1/findings/", {"team": token})
    on_page = browser.get("/findings/", {"q": token})

    assert (on_api.status_code, on_page.status_code) == (401, 401)
    assert b"Authorization header" in on_page.content
    assert token.encode() not in on_page.content


def test_ordinary_parameters_pass(api, browser) -> None:
    assert api.get("/api/v1/findings/", {"team": "alpha", "q": "openssl", "sort": "risk"}).status_code == 200
    assert browser.get("/findings/", {"team": "alpha", "severity": "critical,high", "q": "key rotation"}).status_code == 200
