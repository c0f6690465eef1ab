"""A corpus of hostile and broken uploads: each gets a clear 4xx JSON error, no 5xx,
no finding already stored changes, and the refusal is recorded as a failed report."""

from __future__ import annotations

import gzip
import json

import pytest
import yaml
from rest_framework.test import APIClient

from bench.reportgen import trivy_bytes, trivy_report
from dashboard.models import Finding, Report
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"
VALID = trivy_bytes(5, image=IMAGE)
LIMIT = 3 * 1024 * 1024


def trivy_with(mutate) -> bytes:
    report = trivy_report(3, image=IMAGE)
    mutate(report)
    return json.dumps(report).encode()


def gzip_bomb() -> bytes:
    return gzip.compress(b"[" + b" " * (20 * 1024 * 1024) + b"]", compresslevel=9)


def _set(path: list, value):
    def mutate(report: dict) -> None:
        target = report
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def operator_yaml_with_huge_score() -> bytes:
    """A real trivy-operator VulnerabilityReport as YAML whose first score is a 5,000-digit integer."""
    text = yaml.safe_dump(json.loads(fixture_bytes("trivy-operator/vulnerabilityreport_many.json")), sort_keys=False)
    return text.replace("score: 4.2", "score: " + "9" * 5000, 1).encode()


# (name, body, content type, extra headers, query, expected status, words the message must contain)
CORPUS = [
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "application/json", {}, "", 422, "nested too deeply"),
    ("2 MB [[[[ bomb", b"[" * (2 * 1024 * 1024), "application/json", {}, "", 422, "nested too deeply"),
    ("over the size limit", b" " * (LIMIT + 1), "application/json", {}, "", 413, "larger than the limit"),
    ("gzip bomb", gzip_bomb(), "application/json", {"HTTP_CONTENT_ENCODING": "gzip"}, "", 413, "gzip"),
    (
        "truncated gzip",
        gzip.compress(VALID)[:200],
        "application/json",
        {"HTTP_CONTENT_ENCODING": "gzip"},
        "",
        400,
        "gzip body is truncated",
    ),
    ("gzip declared, plain body", VALID, "application/json", {"HTTP_CONTENT_ENCODING": "gzip"}, "", 400, "not valid gzip"),
    ("brotli", VALID, "application/json", {"HTTP_CONTENT_ENCODING": "br"}, "", 415, "Content-Encoding 'br'"),
    ("truncated JSON", VALID[: len(VALID) // 2], "application/json", {}, "", 422, "invalid JSON"),
    ("empty object", b"{}", "application/json", {}, "", 422, "cannot tell the format"),
    ("empty list", b"[]", "application/json", {}, "", 422, "cannot tell the format"),
    ("null", b"null", "application/json", {}, "", 422, "expected an object or a list"),
    ("a bare string", b'"hello"', "application/json", {}, "", 422, "expected an object or a list"),
    ("empty body", b"", "application/json", {}, "", 400, "empty report"),
    ("whitespace body", b"  \n\t ", "application/json", {}, "", 400, "empty report"),
    ("another format than declared", VALID, "application/json", {}, "?format=sarif", 422, "looks like 'trivy'"),
    ("wrong content type", VALID, "text/html", {}, "", 415, "Content-Type 'text/html'"),
    ("XML content type", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>", "application/xml", {}, "", 415, "not accepted"),
    (
        "XML with entities as JSON",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>",
        "application/json",
        {},
        "",
        422,
        "XML is not accepted",
    ),
    ("non-UTF-8 bytes", b'{"SchemaVersion": 2, "ArtifactName": "\xff\xfe"}', "application/json", {}, "", 422, "not UTF-8"),
    ("raw NUL byte", VALID[:30] + b"\x00" + VALID[30:], "application/json", {}, "", 422, "NUL character"),
    ("lone surrogate", VALID.replace(b'"Title": "', b'"Title": "\\ud800', 1), "application/json", {}, "", 422, "lone surrogate"),
    (
        "duplicate keys",
        b'{"SchemaVersion": 2, "SchemaVersion": 2, "ArtifactName": "x", "Results": []}',
        "application/json",
        {},
        "",
        422,
        "duplicate key",
    ),
    ("10,000-digit number", b'{"SchemaVersion": ' + b"9" * 10_000 + b"}", "application/json", {}, "", 422, "too long"),
    (
        "trivy-operator YAML with a 5,000-digit score",
        operator_yaml_with_huge_score(),
        "application/yaml",
        {},
        "",
        422,
        "number with 5000 digits is too long",
    ),
    ("NaN CVSS", VALID.replace(b'"V3Score": ', b'"V3Score": NaN, "x": ', 1), "application/json", {}, "", 422, "NaN is not valid JSON"),
    ("Infinity", b'{"SchemaVersion": Infinity}', "application/json", {}, "", 422, "Infinity is not valid JSON"),
    ("YAML alias bomb", b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "application/yaml", {}, "", 422, "aliases are not accepted"),
    ("Results not a list", trivy_with(_set(["Results"], {"a": 1})), "application/json", {}, "", 422, "Results"),
    (
        "severity not a string",
        trivy_with(_set(["Results", 0, "Vulnerabilities", 0, "Severity"], ["HIGH"])),
        "application/json",
        {},
        "",
        422,
        "Severity",
    ),
    ("unknown format name", VALID, "application/json", {}, "?format=nessus", 400, "unknown format 'nessus'"),
    ("image that is not a reference", VALID, "application/json", {}, "?image=not%20an%20image", 400, "not an image reference"),
    ("unknown stream", VALID, "application/json", {}, "?stream=email", 400, "unknown stream"),
    ("multipart without file", None, "multipart", {}, "", 400, "no 'file' field"),
]


@pytest.fixture
def client(settings) -> APIClient:
    settings.VIGIL_MAX_REPORT_BYTES = LIMIT
    team = TeamFactory(slug="payments")
    _, token = token_create(team=team, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def baseline(client, django_capture_on_commit_callbacks) -> list[tuple]:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.generic("POST", "/api/v1/reports/", VALID, content_type="application/json")
    assert response.status_code == 202
    stored = snapshot()
    assert len(stored) == 5
    return stored


def snapshot() -> list[tuple]:
    return list(Finding.objects.order_by("id").values_list("id", "fingerprint", "status", "title", "severity", "cvss", "last_seen"))


def send(client: APIClient, body, content_type: str, headers: dict, query: str):
    if content_type == "multipart":
        return client.post(f"/api/v1/reports/{query}", {"other": "x"}, format="multipart")
    return client.generic("POST", f"/api/v1/reports/{query}", body, content_type=content_type, **headers)


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 25
    assert len({case[0] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "body", "content_type", "headers", "query", "status", "words"), CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_upload_is_refused_clearly_and_changes_nothing(client, baseline, name, body, content_type, headers, query, status, words):
    failed_before = Report.objects.filter(status="failed").count()

    response = send(client, body, content_type, headers, query)

    assert response.status_code == status, response.content[:300]
    error = response.json()["error"]
    assert words in error["message"]
    assert snapshot() == baseline
    assert Report.objects.filter(status="failed").count() == failed_before + 1
    assert Report.objects.get(status="failed", pk=error["details"]["report"]).error


def test_out_of_range_cvss_unknown_severity_and_huge_names_are_stored_safely(client, django_capture_on_commit_callbacks) -> None:
    def mutate(report: dict) -> None:
        vulns = report["Results"][0]["Vulnerabilities"]
        vulns[0]["CVSS"]["nvd"]["V3Score"] = -1
        vulns[1]["CVSS"]["nvd"]["V3Score"] = 11
        vulns[1]["Severity"] = "SEVERE"
        vulns[0]["PkgName"] = "p" * 10_000
        vulns[0]["Title"] = '<script>alert(1)</script>=HYPERLINK("http://evil")'
        vulns[1]["Title"] = "NUL\u0000inside"  # escaped NULs occur in real Grype output: accepted, stripped

    with django_capture_on_commit_callbacks(execute=True):
        response = client.generic("POST", "/api/v1/reports/", trivy_with(mutate), content_type="application/json")

    assert response.status_code == 202
    findings = {f.rule_id: f for f in Finding.objects.all()}
    first, second = (findings[v["VulnerabilityID"]] for v in trivy_report(3, image=IMAGE)["Results"][0]["Vulnerabilities"][:2])
    assert first.cvss is None and second.cvss is None
    assert second.severity == "unknown"
    assert len(first.package_name) == 255
    assert first.title == '<script>alert(1)</script>=HYPERLINK("http://evil")'
    assert second.title == "NULinside"


def test_idempotency_key_returns_the_first_answer_and_refuses_a_different_body(client) -> None:
    first = client.generic("POST", "/api/v1/reports/", VALID, content_type="application/json", HTTP_IDEMPOTENCY_KEY="build-42")
    again = client.generic("POST", "/api/v1/reports/", VALID, content_type="application/json", HTTP_IDEMPOTENCY_KEY="build-42")
    other = client.generic(
        "POST", "/api/v1/reports/", trivy_bytes(6, image=IMAGE), content_type="application/json", HTTP_IDEMPOTENCY_KEY="build-42"
    )

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert Report.objects.exclude(status="failed").count() == 1
    assert Report.objects.get(status="failed").error == "refused: Idempotency-Key was already used with a different body"


def test_the_same_bytes_posted_twice_without_a_key_are_one_report(client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = client.generic("POST", "/api/v1/reports/", VALID, content_type="application/json")
    again = client.generic("POST", "/api/v1/reports/", VALID, content_type="application/json")

    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "done"
    assert Report.objects.count() == 1
