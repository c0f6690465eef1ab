from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection

from dashboard.models import ApiToken
from dashboard.services.tokens import token_create
from tests.conftest import services_required
from tests.factories import TeamFactory
from tests.integration.drills import PG_BIN, ApiServer, PostgresCluster, Process, RedisServer, Worker, manage, service_env

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
    settings.CELERY_TASK_ROUTES = {}  # type: ignore[attr-defined]  # every task on the private queue, as VIGIL_CELERY_QUEUE does
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "CELERY_BROKER_URL": broker_url,
        "VIGIL_CELERY_QUEUE": queue,
        "VIGIL_DB_CONN_MAX_AGE": "0",
    }
    (ROOT / "var").mkdir(exist_ok=True)
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


# --- Fault drills: private services the tests start and break themselves --------------------------
# (tests/integration/drills.py; the drills never touch the machine's shared PostgreSQL or Redis)


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def drill_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A temp dir for the drill's servers and logs (readable by the `postgres` OS user); the logs are
    kept under var/drill-logs/ when the test fails, and the dir is removed either way."""
    path = Path(tempfile.mkdtemp(prefix="vigil-drill-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        if request.node.stash.get(_FAILED, False):
            keep = ROOT / "var" / "drill-logs" / f"{request.node.name}-{path.name}"
            keep.mkdir(parents=True, exist_ok=True)
            for log in path.rglob("*.log"):
                shutil.copy(log, keep / log.name)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def redis_server(drill_dir: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free port, without persistence (a restart starts it empty)."""
    _need(shutil.which("redis-server") is not None, "redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(drill_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_cluster(drill_dir: Path) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl, as the `postgres` OS user when we are root)."""
    _need((PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists(), f"PostgreSQL server binaries are not in {PG_BIN}")
    as_root_ok = os.geteuid() != 0 or (shutil.which("runuser") is not None and _os_user_exists("postgres"))
    _need(as_root_ok, "as root, the PostgreSQL drill needs runuser and a `postgres` OS user")
    workdir = drill_dir / "pg"
    workdir.mkdir()
    cluster = PostgresCluster(workdir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _os_user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclasses.dataclass
class DrillStack:
    """gunicorn and Celery workers on one database and a private Redis, all stopped by the fixture."""

    redis: RedisServer
    env: dict[str, str]
    log_dir: Path
    token: str
    processes: list[Process] = dataclasses.field(default_factory=list)

    @property
    def queue(self) -> str:
        return self.env["VIGIL_CELERY_QUEUE"]

    def api(self, *, workers: int = 2, threads: int = 4) -> ApiServer:
        server = ApiServer(env=self.env, log_dir=self.log_dir, workers=workers, threads=threads)
        self.processes.append(server)
        return server.start_and_wait()

    def up(self, *, api_workers: int = 2, api_threads: int = 4, concurrency: int = 1) -> tuple[ApiServer, Worker]:
        """gunicorn and one worker, started side by side (start-up is most of a drill's fixed cost)."""
        worker = self.worker(concurrency=concurrency, wait=False)
        return self.api(workers=api_workers, threads=api_threads), worker.wait_ready()

    def worker(self, *, concurrency: int = 1, wait: bool = True) -> Worker:
        worker = Worker(env=self.env, log_dir=self.log_dir, concurrency=concurrency)
        self.processes.append(worker)
        worker.start()
        return worker.wait_ready() if wait else worker

    def close(self) -> None:
        for process in self.processes:
            process.terminate()  # all at once, then wait for each
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def drill_token(transactional_db: None) -> tuple[ApiToken, str]:
    """Team `drills` and an ingest token for it, in the test database: (token, plaintext)."""
    return token_create(team=TeamFactory(slug="drills"), name="drills CI")


def _new_queue() -> str:
    return f"vigil-drill-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def drill_stack(postgres_url: str, redis_server: RedisServer, drill_dir: Path, drill_token: tuple[ApiToken, str]) -> Iterator[DrillStack]:
    """The real stack on the pytest-django test database (PostgreSQL) and a private Redis.  Processes are
    started by the test (``stack.api()``, ``stack.worker()``); database connections are reused as in production."""
    env = service_env(database_url=postgres_url, broker_url=redis_server.url, queue=_new_queue())
    stack = DrillStack(redis=redis_server, env=env, log_dir=drill_dir, token=drill_token[1])
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def cluster_stack(postgres_cluster: PostgresCluster, redis_server: RedisServer, drill_dir: Path) -> Iterator[DrillStack]:
    """The same on the throwaway PostgreSQL cluster: database `vigil` migrated by ``manage.py migrate``
    in a subprocess, team `drills` and an ingest token made with the management commands."""
    env = service_env(database_url=postgres_cluster.create_database("vigil"), broker_url=redis_server.url, queue=_new_queue())
    manage(env, "migrate", "--noinput")
    manage(env, "create_team", "drills")
    token = manage(env, "create_token", "--team", "drills", "--name", "drills CI").strip()
    stack = DrillStack(redis=redis_server, env=env, log_dir=drill_dir, token=token)
    try:
        yield stack
    finally:
        stack.close()
