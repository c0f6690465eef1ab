"""gunicorn with VIGIL_LOG_FORMAT=json: every line of every log is one JSON object, the request's lines carry the
request id the answer echoed, and no line holds the token."""

from __future__ import annotations

import http.client
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.services.tokens import token_create
from tests.factories import TeamFactory
from tests.integration.drills import Process, free_port, wait_for
from tests.integration.test_web_server import Web, _healthy


@pytest.fixture
def web(postgres_url: str, tmp_path: Path) -> Iterator[Web]:
    _, token = token_create(team=TeamFactory(slug="payments"), name="payments CI", scope="admin")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "VIGIL_BIND": f"127.0.0.1:{port}",
        "VIGIL_WEB_WORKERS": "1",
        "VIGIL_ACCESS_LOG": str(tmp_path / "access.log"),
        "VIGIL_ERROR_LOG": str(tmp_path / "error.log"),
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_DB_CONN_MAX_AGE": "0",
    }
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:vigil.gunicorn_conf", "vigil.wsgi:application"]
    process = Process("django", argv, env=env, log_dir=tmp_path)
    process.start()
    try:
        wait_for(lambda: _healthy(port) or not process.alive(), timeout=60, what="gunicorn to answer /healthz")
        assert process.alive(), process.log()[-3000:]
        yield Web(port=port, token=token, process=process, log_dir=tmp_path)
    finally:
        process.stop()


def answer_id(web: Web, path: str, headers: dict[str, str]) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.getheader("X-Request-ID") or ""
    finally:
        conn.close()


def test_every_line_is_json_with_the_request_id_and_no_token(web: Web) -> None:
    wrong = web.token[:-1] + ("y" if web.token.endswith("x") else "x")  # a token one character off: always refused
    echoed = answer_id(web, "/api/v1/findings/", {"Authorization": f"Bearer {wrong}", "X-Request-ID": "ci-run-42"})
    fresh = answer_id(web, "/healthz", {})
    web.process.stop()  # flushes every log
    logs = web.logs()
    lines = {name: [json.loads(line) for line in text.splitlines() if line.strip()] for name, text in logs.items()}

    assert (echoed, len(fresh)) == ("ci-run-42", 32)
    assert all({"time", "level", "logger", "message"} <= set(line) for every in lines.values() for line in every)
    assert any(line.get("request_id") == "ci-run-42" and "Unauthorized" in line["message"] for line in lines["django.log"])
    assert {line.get("request_id") for line in lines["access.log"]} >= {"ci-run-42", fresh}
    assert all(web.token[14:46] not in text for text in logs.values())
