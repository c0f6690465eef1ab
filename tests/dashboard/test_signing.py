"""Signed requests: X-Vigil-Signature verified on the raw body before parsing; replays get the first answer."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.errors import ApplicationError
from dashboard.models import Report, SignedRequest
from dashboard.services.tokens import signature_verify, signatures_prune, token_create, token_signing_secret
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

ALPINE = "trivy/trivy-golden_alpine-310_image.json"
#: The README's shell one-liner (kept identical: a test below checks the README still says it).
SIGN_ONE_LINER = """SIG=$( (printf '%s.' "$T"; cat report.json) | openssl dgst -sha256 -hmac "$VIGIL_SIGNING_SECRET" -r | cut -d' ' -f1)"""


@pytest.fixture
def signer():
    token, plaintext = token_create(team=TeamFactory(slug="payments"), name="signed CI", scope="admin", signing=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client, token_signing_secret(token)


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(client: APIClient, body: bytes, signature: str | None, content_type: str = "application/json", **extra: str):
    headers = {"HTTP_X_VIGIL_SIGNATURE": signature} if signature is not None else {}
    return client.generic(
        "POST", "/api/v1/reports/?image=registry.example.com/payments/api:1.4.1", body, content_type=content_type, **headers, **extra
    )


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
        ("v1=" + "0" * 64, "bad_signature"),
        ("t=abc,v1=" + "0" * 64, "bad_signature"),
        ("t=1700000000", "bad_signature"),
    ],
)
def test_a_missing_or_malformed_signature_is_refused(signer, header: str | None, code: str) -> None:
    client, _ = signer

    response = post(client, fixture_bytes(ALPINE), header)

    assert (response.status_code, response.json()["error"]["code"]) == (401, code)
    assert Report.objects.count() == 0


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

    accepted = [
        signature_verify(token=token, header=sign(secret, b"x", at=1_000_000), body=b"x", now=1_000_000 + skew)[0] for skew in (-300, 300)
    ]
    with pytest.raises(ApplicationError) as late:
        signature_verify(token=token, header=sign(secret, b"x", at=1_000_000), body=b"x", now=1_000_301)

    assert accepted == [1_000_000, 1_000_000]
    assert late.value.code == "stale_signature"


def test_a_timestamp_inside_the_window_is_accepted(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)

    response = post(client, body, sign(secret, body, at=int(time.time()) - 290))

    assert response.status_code == 202


def test_a_replay_inside_the_window_gets_the_first_answer_and_imports_nothing_more(signer) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    signature = sign(secret, body)

    first = post(client, body, signature)
    replay = post(client, body, signature)

    assert (first.status_code, replay.status_code) == (202, 202)
    assert replay.json() == first.json()
    assert replay["X-Vigil-Replayed"] == "1"
    assert Report.objects.count() == 1
    assert SignedRequest.objects.count() == 1


def test_a_replayed_signature_on_another_endpoint_still_gets_the_first_answer(signer) -> None:
    client, secret = signer
    signature = sign(secret, b"")

    first = client.get("/api/v1/findings/", HTTP_X_VIGIL_SIGNATURE=signature)
    elsewhere = client.generic("POST", "/api/v1/reports/", b"", content_type="application/json", HTTP_X_VIGIL_SIGNATURE=signature)

    assert (first.status_code, elsewhere.status_code) == (200, 200)
    assert elsewhere.json() == first.json()
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


def test_the_readme_openssl_one_liner_signs_like_the_server_expects(signer, tmp_path: Path) -> None:
    client, secret = signer
    body = fixture_bytes(ALPINE)
    (tmp_path / "report.json").write_bytes(body)
    stamp = str(int(time.time()))

    result = subprocess.run(
        ["bash", "-c", f'{SIGN_ONE_LINER}; printf %s "$SIG"'],
        cwd=tmp_path,
        env={"T": stamp, "VIGIL_SIGNING_SECRET": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )

    assert post(client, body, f"t={stamp},v1={result.stdout}").status_code == 202
    assert SIGN_ONE_LINER in (Path(settings.BASE_DIR) / "README.md").read_text()
