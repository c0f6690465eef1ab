"""Shared fixtures.  Tests run in-process by default (eager tasks); the integration
tests start a real Celery worker against the broker in CELERY_BROKER_URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def services_required() -> bool:
    """CI sets VIGIL_REQUIRE_SERVICES=1: tests that need PostgreSQL/Redis must then fail, never skip."""
    return os.environ.get("VIGIL_REQUIRE_SERVICES") == "1"


@pytest.fixture(autouse=True)
def _eager_tasks(request: pytest.FixtureRequest) -> None:
    """Tasks run in-process unless a test starts a real worker (scanner tests run without Django)."""
    if request.config.pluginmanager.hasplugin("django"):
        settings = request.getfixturevalue("settings")
        settings.CELERY_TASK_ALWAYS_EAGER = True
        # Tests create many users; the production hasher is deliberately slow.
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        # A process keeps the training catalogue a minute; each test's catalogue is its own (rolled back after it).
        # Decisions are kept per process while nothing they read changed; each test's database is its own.
        from dashboard.selectors.decision_memo import forget_decisions
        from dashboard.selectors.training import forget_module_picker
        from dashboard.services.admission_repeats import forget_firsts

        forget_module_picker()
        forget_decisions()
        # A web thread remembers the admission events it stored a minute; each test's reports are its own.
        forget_firsts()


@pytest.fixture
def require_postgres(db: None) -> None:
    """For behaviour only PostgreSQL has (row locks, unbounded batches): fail in CI without it, skip elsewhere."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    if services_required():
        pytest.fail("CI requires PostgreSQL (DATABASE_URL)")
    pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def require_redis_broker(settings) -> None:
    """For behaviour only a Redis broker has (the events' pending marks): fail in CI without it, skip elsewhere."""
    if str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://")):
        return
    if services_required():
        pytest.fail("CI requires Redis (CELERY_BROKER_URL)")
    pytest.skip("needs a Redis broker (set CELERY_BROKER_URL=redis://...)")
