"""Signed requests: X-Vigil-Signature binds method, path, query, body and time; a replay is refused, never answered."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes, urlsplit

import pytest
from django.conf import settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.errors import ApplicationError
from dashboard.ingest.signing import signature_verify, signatures_prune
from dashboard.models import Report, SignedRequest
from dashboard.services.tokens import token_create, token_signing_secret
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

ALPINE = "trivy/trivy-golden_alpine-310_image.json"
IMAGE_QUERY = "image=registry.example.com/payments/api:1.4.1"
#: The README's shell recipe (kept identical: a test below checks the README still says it).
SIGN_RECIPE = """H=$(openssl dgst -sha256 -r report.json | cut -d' ' -f1)
SIG=$(printf 'v2\\n%s\\nPOST\\n/api/v1/reports/\\n%s\\n%s' "$T" "$Q" "$H" | openssl dgst -sha256 -hmac "$VIGIL_SIGNING_SECRET" -r | cut -d' ' -f1)"""  # noqa: E501 - the README line, verbatim


@pytest.fixture
def signer():
    token, plaintext = token_create(team=TeamFactory(slug="payments"), name="signed CI", scope="admin", signing=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client, token_signing_secret(token)


def _canonical_query(query: str) -> str:
    """Written here from the README's words, not imported: the server's canonical form is what is tested."""
    pairs = []
    for piece in filter(None, query.split("&")):
        key, _, value = piece.partition("=")
        pairs.append(tuple(quote(unquote_to_bytes(part.replace("+", " ")), safe="") for part in (key, value)))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def sign(secret: str, body: bytes, at: int | None = None, *, method: str = "POST", url: str = "/api/v1/reports/?" + IMAGE_QUERY) -> str:
    timestamp = int(time.time()) if at is None else at
    parts = urlsplit(url)
    path = quote(unquote_to_bytes(parts.path), safe="/")
    canonical = "\n".join(["v2", str(timestamp), method, path, _canonical_query(parts.query), hashlib.sha256(body).hexdigest()])
    digest = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v2={digest}"


def post(
    client: APIClient, body: bytes, signature: str | None, content_type: str = "application/json", query: str = IMAGE_QUERY, **extra: str
):
    headers = {"HTTP_X_VIGIL_SIGNATURE": signature} if signature is not None else {}
    return client.generic("POST", f"/api/v1/reports/?{query}", body, content_type=content_type, **headers, **extra)


def test_a_correctly_signed_report_is_accepted(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)

    response = post(client, body, sign(secret, body))

    assert response.status_code == 202
    assert Report.objects.count() == 1


def test_the_signature_covers_the_raw_bytes_as_sent_even_gzip(signer) -> None:
    client, secret = signer
    compressed = gzip.compress(fixture_bytes(ALPINE))

    response = post(client, compressed, sign(secret, compressed), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 202


def test_a_signed_multipart_upload_is_accepted(signer, tmp_path: Path) -> None:
    client, secret = signer
    report = tmp_path / "report.json"
    report.write_bytes(fixture_bytes(ALPINE))
    with report.open("rb") as handle:
        body = encode_multipart(BOUNDARY, {"file": handle})

    response = post(client, body, sign(secret, body), content_type=MULTIPART_CONTENT)

    assert response.status_code == 202


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "signature_required"),
        ("v2=" + "0" * 64, "bad_signature"),
        ("t=abc,v2=" + "0" * 64, "bad_signature"),
        ("t=1700000000", "bad_signature"),
    ],
)
def test_a_missing_or_malformed_signature_is_refused(signer, header: str | None, code: str) -> None:
    client, _ = signer

    response = post(client, fixture_bytes(ALPINE), header)

    assert (response.status_code, response.json()["error"]["code"]) == (401, code)
    assert Report.objects.count() == 0


def test_a_signature_of_the_old_scheme_is_refused_saying_what_to_sign(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    stamp = int(time.time())
    old = hmac.new(secret.encode(), str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()

    response = post(client, body, f"t={stamp},v1={old}")

    assert response.status_code == 401
    assert "sign the method, path, query and body digest as v2" in response.json()["error"]["message"]
    assert Report.objects.count() == 0


@pytest.mark.parametrize(
    "tampered",
    [
        "image=registry.example.com/storefront/web:2.0",
        IMAGE_QUERY + "&team=storefront",
        IMAGE_QUERY + "&format=sarif",
        "",
    ],
)
def test_a_query_changed_in_transit_is_refused(signer, tampered: str) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)

    response = post(client, body, sign(secret, body), query=tampered)

    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
    assert Report.objects.count() == 0


def test_the_query_is_signed_in_canonical_form_whatever_its_order_and_escaping(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    signature = sign(secret, body, url="/api/v1/reports/?stream=scan&" + IMAGE_QUERY)

    response = post(client, body, signature, query="image=registry.example.com%2Fpayments%2Fapi%3A1.4.1&stream=scan")

    assert response.status_code == 202
    assert Report.objects.get().image_ref == "registry.example.com/payments/api:1.4.1"


def test_the_method_and_the_path_are_signed(signer) -> None:
    client, secret = signer
    signature = sign(secret, b"", method="GET", url="/api/v1/findings/")

    as_post = client.generic("POST", "/api/v1/findings/", b"", HTTP_X_VIGIL_SIGNATURE=signature)
    elsewhere = client.get("/api/v1/nudges/", HTTP_X_VIGIL_SIGNATURE=signature)

    assert (as_post.status_code, as_post.json()["error"]["code"]) == (401, "bad_signature")
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (401, "bad_signature")


def test_a_body_changed_after_signing_is_refused_before_it_is_parsed(signer) -> None:
    client, secret = signer
    signed = fixture_bytes(ALPINE)

    response = post(client, b"{not json at all", sign(secret, signed))

    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
    assert Report.objects.count() == 0


@pytest.mark.parametrize("skew", [-305, 305])
def test_a_timestamp_more_than_300_seconds_away_is_refused(signer, skew: int) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)

    response = post(client, body, sign(secret, body, at=int(time.time()) + skew))

    assert (response.status_code, response.json()["error"]["code"]) == (401, "stale_signature")


def test_the_window_is_300_seconds_either_way_at_the_boundary() -> None:
    token, _ = token_create(team=TeamFactory(slug="edge"), name="edge", signing=True)
    secret = token_signing_secret(token)
    header = sign(secret, b"x", at=1_000_000, url="/api/v1/reports/")

    def verify(now: int) -> int:
        return signature_verify(token=token, header=header, method="POST", path="/api/v1/reports/", query=b"", body=b"x", now=now)[0]

    accepted = [verify(1_000_000 + skew) for skew in (-300, 300)]
    with pytest.raises(ApplicationError) as late:
        verify(1_000_301)

    assert accepted == [1_000_000, 1_000_000]
    assert late.value.code == "stale_signature"


def test_a_timestamp_inside_the_window_is_accepted(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)

    response = post(client, body, sign(secret, body, at=int(time.time()) - 290))

    assert response.status_code == 202


def test_an_exact_replay_is_refused_and_imports_nothing_more(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    signature = sign(secret, body)

    first = post(client, body, signature)
    replay = post(client, body, signature)

    assert first.status_code == 202
    assert (replay.status_code, replay.json()["error"]["code"]) == (409, "replayed")
    assert "not processed again" in replay.json()["error"]["message"]
    assert str(first.json()["id"]) not in replay.content.decode()
    assert Report.objects.count() == 1
    assert SignedRequest.objects.count() == 1


def test_two_different_signed_gets_in_the_same_second_each_get_their_own_answer(signer, django_capture_on_commit_callbacks) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    with django_capture_on_commit_callbacks(execute=True):
        report_id = post(client, body, sign(secret, body)).json()["id"]
    stamp = int(time.time())

    status = client.get(
        f"/api/v1/reports/{report_id}/", HTTP_X_VIGIL_SIGNATURE=sign(secret, b"", stamp, method="GET", url=f"/api/v1/reports/{report_id}/")
    )
    findings = client.get("/api/v1/findings/", HTTP_X_VIGIL_SIGNATURE=sign(secret, b"", stamp, method="GET", url="/api/v1/findings/"))

    assert (status.status_code, findings.status_code) == (200, 200)
    assert status.json()["id"] == report_id
    assert findings.json()["count"] == len(findings.json()["results"]) > 0
    assert "X-Vigil-Replayed" not in findings


def test_a_signature_taken_to_another_endpoint_is_refused_and_answers_nothing_of_the_first(signer) -> None:
    client, secret = signer
    signature = sign(secret, b"", method="GET", url="/api/v1/findings/")

    first = client.get("/api/v1/findings/", HTTP_X_VIGIL_SIGNATURE=signature)
    elsewhere = client.generic("POST", "/api/v1/reports/", b"", content_type="application/json", HTTP_X_VIGIL_SIGNATURE=signature)

    assert first.status_code == 200
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (401, "bad_signature")
    assert "results" not in elsewhere.json()
    assert Report.objects.count() == 0


def test_tokens_without_a_signing_secret_ignore_the_header(signer) -> None:
    _, plaintext = token_create(team=TeamFactory(slug="plain"), name="falcosidekick")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    response = post(client, fixture_bytes(ALPINE), None)

    assert response.status_code == 202


def test_old_signatures_are_pruned_after_twice_the_window(signer) -> None:
    client, secret = signer
    post(client, b"{}", sign(secret, b"{}"))

    assert signatures_prune(now=timezone.now() + timezone.timedelta(seconds=599)) == 0
    assert signatures_prune(now=timezone.now() + timezone.timedelta(seconds=601)) == 1


def test_the_readme_openssl_recipe_signs_like_the_server_expects(signer, tmp_path: Path) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    (tmp_path / "report.json").write_bytes(body)
    stamp = str(int(time.time()))
    query = "image=registry.example.com%2Fpayments%2Fapi%3A1.4.1"

    result = subprocess.run(
        ["bash", "-c", f'{SIGN_RECIPE}; printf %s "$SIG"'],
        cwd=tmp_path,
        env={"T": stamp, "Q": query, "VIGIL_SIGNING_SECRET": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )

    assert post(client, body, f"t={stamp},v2={result.stdout}", query=query).status_code == 202
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert SIGN_RECIPE in readme
    assert f"Q='{query}'" in readme
