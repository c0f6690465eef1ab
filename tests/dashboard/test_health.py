"""Probes: /healthz checks nothing but the process; /readyz checks the database, the broker and the migrations."""

from __future__ import annotations

import pytest
from celery import current_app
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.utils import ConnectionHandler
from django.test import Client

from dashboard.selectors import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_migration_check():
    health.forget_applied_migrations()
    yield
    health.forget_applied_migrations()


@pytest.fixture
def with_broker(settings) -> None:
    """Tasks go through the broker (Redis in CI, the in-memory transport elsewhere), so /readyz asks it."""
    settings.CELERY_TASK_ALWAYS_EAGER = False


def test_healthz_answers_without_touching_the_database(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = Client().get("/healthz")

    assert (response.status_code, response.content) == (200, b"ok")


def test_readyz_is_200_when_database_broker_and_migrations_are_fine(with_broker) -> None:
    response = Client().get("/readyz")

    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "broker": "ok", "migrations": "ok"}, "failed": []},
    )


def test_readyz_is_503_naming_the_broker_when_nothing_listens_on_its_port(with_broker, monkeypatch) -> None:
    monkeypatch.setattr(current_app.conf, "broker_write_url", "redis://127.0.0.1:1/0")  # a closed port

    response = Client().get("/readyz")

    assert (response.status_code, response.json()["failed"]) == (503, ["broker"])
    assert "Error" in response.json()["checks"]["broker"]


def test_readyz_is_503_naming_the_database_when_nothing_listens_on_its_port(require_postgres, monkeypatch) -> None:
    closed = ConnectionHandler({"default": {**connection.settings_dict, "PORT": "1", "HOST": "127.0.0.1"}})
    monkeypatch.setattr(health, "connections", closed)

    response = Client().get("/readyz")

    assert (response.status_code, response.json()["status"], response.json()["failed"]) == (503, "unavailable", ["database", "migrations"])
    assert "OperationalError" in response.json()["checks"]["database"]


def test_readyz_is_503_naming_the_migration_not_applied() -> None:
    MigrationRecorder(connection).record_unapplied("dashboard", "0002_postgresql")  # rolled back after the test

    response = Client().get("/readyz")

    assert (response.status_code, response.json()["failed"]) == (503, ["migrations"])
    assert response.json()["checks"]["migrations"] == "1 migration(s) not applied: dashboard.0002_postgresql"


def test_once_applied_the_migrations_are_not_read_again(django_assert_num_queries) -> None:
    Client().get("/readyz")

    with django_assert_num_queries(1):  # SELECT 1
        response = Client().get("/readyz")

    assert response.status_code == 200
