"""Schemathesis against the OpenAPI schema drf-spectacular generates: with a token of each scope, a
bounded number of examples per operation, no server error and no answer that breaks the schema."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.services.tokens import token_create
from tests.factories import FindingFactory, TeamFactory
from vigil.wsgi import application

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]
#: Examples per operation and scope: enough to reach every parameter and error path, bounded to keep the run short.
EXAMPLES = 12


def _schema() -> schemathesis.schemas.BaseSchema:
    document = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = application
    return loaded


schema = _schema()


@pytest.fixture
def same_connection() -> Iterator[None]:
    """Calling the WSGI app directly fires request_started/finished, whose handler would close the test's
    database connection (and its transaction) on PostgreSQL; Django's test client disconnects it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db: None, same_connection: None) -> dict[str, str]:
    payments = TeamFactory(slug="payments")
    FindingFactory.create_batch(3, team=payments)
    return {scope: token_create(team=payments, name=f"schemathesis {scope}", scope=scope)[1] for scope in ("ingest", "read", "admin")}


def test_the_schema_is_served_to_callers_with_a_token_and_lists_every_api_route(tokens: dict[str, str]) -> None:
    response = Client().get("/api/v1/schema/", HTTP_AUTHORIZATION=f"Bearer {tokens['read']}")

    assert response.status_code == 200
    assert set(response.json()["paths"]) >= {"/api/v1/reports/", "/api/v1/reports/{id}/", "/api/v1/findings/", "/api/v1/findings/{id}/"}
    assert Client().get("/api/v1/schema/").status_code == 401


@pytest.mark.parametrize("scope", ["ingest", "read", "admin"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_to_its_schema(case: schemathesis.Case, scope: str, tokens: dict[str, str]) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens[scope]}"}, checks=CHECKS)
