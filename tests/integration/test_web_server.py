"""Vigil behind real gunicorn with the shipped config (vigil/gunicorn_conf.py): no log holds a token, wherever
a request carried it, and a body shorter than its Content-Length is refused with nothing stored."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.models import Finding, Report
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory
from tests.integration.drills import Process, free_port, wait_for

ALPINE = fixture_bytes("trivy/trivy-golden_alpine-310_image.json")


@dataclasses.dataclass
class Web:
    port: int
    token: str
    process: Process
    log_dir: Path

    def request(self, path: str, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        """Send bytes, close our side (as a client that gives up early), read the whole answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def logs(self) -> dict[str, str]:
        return {path.name: path.read_text(errors="replace") for path in sorted(self.log_dir.glob("*.log"))}


@pytest.fixture
def web(postgres_url: str, tmp_path: Path) -> Iterator[Web]:
    """gunicorn with vigil/gunicorn_conf.py on a free port: access log, error log, and Django's log (stderr) in files."""
    _, token = token_create(team=TeamFactory(slug="payments"), name="payments CI", scope="admin")
    port = free_port()
    env = {
        **dict(__import__("os").environ),
        "DATABASE_URL": postgres_url,
        "VIGIL_BIND": f"127.0.0.1:{port}",
        "VIGIL_WEB_WORKERS": "1",
        "VIGIL_WEB_THREADS": "2",
        "VIGIL_ACCESS_LOG": str(tmp_path / "access.log"),
        "VIGIL_ERROR_LOG": str(tmp_path / "error.log"),
        "VIGIL_WEB_LOG_LEVEL": "debug",
        "VIGIL_LOG_LEVEL": "DEBUG",
        "VIGIL_DB_CONN_MAX_AGE": "0",
    }
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:vigil.gunicorn_conf", "vigil.wsgi:application"]
    process = Process("django", argv, env=env, log_dir=tmp_path)  # stdout and stderr: Django's own log
    process.start()
    server = Web(port=port, token=token, process=process, log_dir=tmp_path)
    try:
        wait_for(lambda: _healthy(port) or not process.alive(), timeout=60, what="gunicorn to answer /healthz")
        assert process.alive(), process.log()[-3000:]
        yield server
    finally:
        process.stop()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_no_log_holds_a_token_sent_in_a_header_the_query_a_referer_or_the_user_agent(web: Web) -> None:
    token = web.token
    bearer = {"Authorization": f"Bearer {token}"}

    statuses = [
        web.request("/api/v1/findings/", bearer),
        web.request(f"/api/v1/findings/?token={token}", {}),
        web.request(f"/api/v1/findings/?team=payments&access_token={token}", bearer),
        web.request(f"/findings/?q={token}", {}),
        web.request("/api/v1/findings/", {**bearer, "Referer": f"https://ci.example.com/job/7?token={token}&step=2"}),
        web.request("/api/v1/findings/", {**bearer, "User-Agent": f"deploy-bot/1.0 ({token})"}),
        web.request("/api/v1/findings/", {"Authorization": f"Bearer {token[:-1]}{'y' if token.endswith('x') else 'x'}"}),
    ]
    bad_line = web.raw(f"GET /api/v1/findings/?token={token} HTTP/9.9\r\nHost: x\r\n\r\n".encode())
    web.process.stop()  # flushes every log
    logs = web.logs()

    assert statuses == [200, 401, 401, 401, 200, 200, 401]
    assert bad_line.startswith(b"HTTP/1.1 400")
    assert set(logs) == {"access.log", "error.log", "django.log"}
    assert len(logs["access.log"].splitlines()) >= 8  # /healthz and every request above
    assert '"GET /api/v1/findings/ HTTP/1.1" 401' in logs["access.log"]
    assert '"https://ci.example.com/job/7"' in logs["access.log"]
    assert "Unauthorized: /api/v1/findings/" in logs["django.log"]
    for name, text in logs.items():
        assert token not in text, name
        assert token[14:46] not in text, name  # not even the secret part


def _post_head(web: Web, *, length: int, content_type: str, query: str = "?image=registry.example.com/payments/api:1.4.1") -> bytes:
    return (
        f"POST /api/v1/reports/{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {web.token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "vigil-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="report.json"\r\nContent-Type: application/json\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("kind", ["json", "multipart"])
def test_a_body_shorter_than_its_content_length_is_refused_and_nothing_is_stored(web: Web, kind: str) -> None:
    # What arrives is a whole report followed by part of the padding: only the length says it is cut short.
    padded = ALPINE + b" " * 4000
    body, content_type = (padded, "application/json") if kind == "json" else _multipart(padded)
    sent = body[: body.index(ALPINE) + len(ALPINE) + 1000]

    answer = web.raw(_post_head(web, length=len(body), content_type=content_type) + sent)

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:500]
    error = json.loads(payload)["error"]
    assert error["code"] == "incomplete_body"
    assert f"ended after {len(sent)} of the {len(body)} bytes" in error["message"]
    assert Finding.objects.count() == 0
    assert list(Report.objects.values_list("status", flat=True)) == ["failed"]  # the refusal, recorded


def test_the_same_body_whole_is_accepted(web: Web) -> None:
    answer = web.raw(_post_head(web, length=len(ALPINE), content_type="application/json") + ALPINE)

    assert answer.startswith(b"HTTP/1.1 202"), answer[:500]
