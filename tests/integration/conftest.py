from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection

from tests.conftest import services_required

ROOT = Path(__file__).resolve().parents[2]


def _need(condition: bool, why: str) -> None:
    """Fail in CI (services required), skip elsewhere."""
    if condition:
        return
    if services_required():
        pytest.fail(f"CI requires this service: {why}")
    pytest.skip(why)


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    _need(bool(url), "CELERY_BROKER_URL is not set")
    _need(_reachable(url), f"the broker at {url} is not reachable")
    return url


@pytest.fixture
def postgres_url(transactional_db: None) -> str:
    _need(connection.vendor == "postgresql", "DATABASE_URL does not point at PostgreSQL")
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def celery_worker(broker_url: str, postgres_url: str, settings: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process consuming a private queue from Redis, on the test database."""
    queue = f"vigil-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False  # type: ignore[attr-defined]
    settings.CELERY_TASK_DEFAULT_QUEUE = queue  # type: ignore[attr-defined]
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "CELERY_BROKER_URL": broker_url,
        "VIGIL_CELERY_QUEUE": queue,
        "VIGIL_DB_CONN_MAX_AGE": "0",
    }
    log = open(ROOT / "var" / f"worker-{queue}.log", "wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "vigil",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
