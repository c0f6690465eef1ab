"""The baseline: deploy check, cookies, headers (CSP, HSTS, nosniff, framing, referrer), CSRF, login throttling."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from dashboard.models import AuditEvent
from tests.factories import MembershipFactory, UserFactory

TEMPLATES = Path(settings.BASE_DIR) / "templates"
PRODUCTION_ENV = {
    "VIGIL_PRODUCTION": "1",
    "VIGIL_SECRET_KEY": secrets.token_urlsafe(64),
    "VIGIL_ALLOWED_HOSTS": "vigil.example.com",
    "VIGIL_CSRF_TRUSTED_ORIGINS": "https://vigil.example.com",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_with_production_settings(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"} | PRODUCTION_ENV
    return subprocess.run([sys.executable, *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_deploy_check_passes_with_production_settings() -> None:
    result = run_with_production_settings("manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_cookies_are_secure_http_only_and_same_site_and_hsts_is_on() -> None:
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'vigil.settings'); django.setup(); "
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT)"
    )

    result = run_with_production_settings("-c", script)

    assert result.stdout.split() == ["True", "True", "Lax", "True", "Lax", "31536000", "True", "True"]


@pytest.mark.django_db
def test_pages_carry_the_security_headers() -> None:
    client = Client()
    client.force_login(MembershipFactory().user)

    response = client.get("/overview/")

    assert response.status_code == 200
    assert sorted(response["Content-Security-Policy"].split("; ")) == sorted(CSP.split("; "))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_hsts_is_sent_over_https_with_production_values(settings) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True

    response = Client().get("/healthz", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    sources = {path.relative_to(TEMPLATES).as_posix(): path.read_text() for path in TEMPLATES.rglob("*.html")}

    inline_scripts = sorted(name for name, text in sources.items() if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text))
    handlers = sorted(name for name, text in sources.items() if re.search(r"<[^>]+\son[a-z]+\s*=", text))
    javascript_urls = sorted(name for name, text in sources.items() if "javascript:" in text.lower())

    assert (inline_scripts, handlers, javascript_urls) == ([], [], [])
    assert len(sources) > 10


def test_every_post_form_in_every_template_has_a_csrf_token() -> None:
    forms = [
        (path.name, form)
        for path in TEMPLATES.rglob("*.html")
        for form in re.findall(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", path.read_text(), re.DOTALL | re.IGNORECASE)
    ]

    tokens = ("{% csrf_token %}", 'name="csrfmiddlewaretoken" value="{{ csrf_token }}"')
    assert [name for name, form in forms if not any(token in form for token in tokens)] == []
    assert len(forms) > 5


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(is_staff=True))

    response = client.post("/ownership/rules/new/", {"kind": "namespace", "pattern": "payments", "team": "x", "priority": "0"})

    assert response.status_code == 403


@pytest.mark.django_db
def test_five_wrong_passwords_lock_the_username_out_from_that_address_only(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = UserFactory(username="alice")
    user.set_password("the-right-one")
    user.save()
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    wrong = [attacker.post("/login/", {"username": "alice", "password": f"guess-{n}"}).status_code for n in range(5)]

    locked = attacker.post("/login/", {"username": "alice", "password": "the-right-one"})
    elsewhere = Client(REMOTE_ADDR="198.51.100.4").post("/login/", {"username": "alice", "password": "the-right-one"})

    assert wrong == [200, 200, 200, 200, 429]
    assert locked.status_code == 429
    assert (elsewhere.status_code, elsewhere["Location"]) == (302, "/")
    assert list(AuditEvent.objects.values_list("action", "ip", "target_id")) == [("login.locked", "203.0.113.9", "alice")]
