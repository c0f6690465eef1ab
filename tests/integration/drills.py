"""Private services for the fault drills, started and stopped by the tests themselves.

A ``redis-server`` on a free port (no persistence), a throwaway PostgreSQL cluster
(``initdb`` + ``pg_ctl`` in a temp dir, run as the ``postgres`` OS user when we are
root), gunicorn serving the API and real ``celery worker`` processes.  The drills
break these, never the machine's shared PostgreSQL or Redis.

Also the reference the drills compare against: a clean single run of the same
uploads (``report_submit`` + ``report_process`` in-process, one after another).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` OS user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Process:
    """A subprocess in its own session (so its whole process group can be signalled), logging to a file."""

    def __init__(self, name: str, argv: list[str], *, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process and everything it started (no cleanup of any kind)."""
        if self.proc is None:
            return
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close_log()

    def terminate(self) -> None:
        """Ask the process and its group to stop (SIGTERM); ``stop`` waits for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.signal_group(signal.SIGKILL)  # stragglers (pool children) of a process that already exited
        if self.proc.poll() is None:
            self.proc.wait(timeout=30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class RedisServer:
    """A private ``redis-server`` without persistence: a restart starts empty, like a lost broker."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = Process(f"redis-{self.port}", [*argv, "--dir", str(self.workdir)], env=os.environ, log_dir=self.workdir)
        self.process.start()
        wait_for(self.ping, timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Shut the server down (SIGTERM, no save): connections are refused until ``start``."""
        if self.process is not None:
            self.process.stop()
            self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def ping(self) -> bool:
        import redis

        try:
            with self.client() as client:
                return bool(client.ping())
        except (OSError, redis.RedisError):
            return False

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def queued(self, queue: str) -> int:
        """Messages waiting in a Celery queue (kombu keeps one Redis list per queue)."""
        with self.client() as client:
            return int(client.llen(queue))

    def unacked(self) -> int:
        """Messages delivered to a worker and not yet acknowledged (kombu's ``unacked`` hash)."""
        with self.client() as client:
            return int(client.hlen("unacked"))

    def redeliver_unacked(self) -> None:
        """What any consumer does once Redis's visibility timeout (1 hour by default) has passed:
        put every unacknowledged message back on its queue."""
        from kombu import Connection

        with Connection(self.url, transport_options={"visibility_timeout": 0}) as conn:
            conn.default_channel.qos.restore_visible(num=1000)


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free port, data in a temp dir."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.logfile = workdir / "postgres.log"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        done = subprocess.run([*as_postgres_user(), *argv], capture_output=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{' '.join(argv[:2])} failed: {done.stdout.decode()[-2000:]} {done.stderr.decode()[-2000:]}"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"
        )

    def _pg_ctl(self, action: str, *args: str) -> None:
        # Always with -l: a server started without it would hold our output pipe open forever.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.workdir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-o", options, *args, "-w", "-t", "60", action)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """A normal restart (``-m fast``): every connection is cut and every open transaction rolled back."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> Any:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database, connect_timeout=5)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


def service_env(*, database_url: str, broker_url: str, queue: str, **extra: str) -> dict[str, str]:
    """The environment of a Vigil process (gunicorn, worker, manage.py) pointed at private services."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vigil.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "VIGIL_CELERY_QUEUE": queue,
        "VIGIL_LOG_LEVEL": "INFO",
        **extra,
    }


class Worker(Process):
    """A real ``celery worker`` with the production pool (prefork), on a private queue."""

    def __init__(self, *, env: Mapping[str, str], log_dir: Path, concurrency: int = 1) -> None:
        node = f"drill-{uuid.uuid4().hex[:8]}"
        queue = env["VIGIL_CELERY_QUEUE"]
        argv = [sys.executable, "-m", "celery", "-A", "vigil", "worker", "-Q", queue, "-n", f"{node}@%h"]
        argv += ["--pool", "prefork", "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat"]
        super().__init__(node, [*argv, "-l", "info"], env=env, log_dir=log_dir)

    def start_and_wait(self, timeout: float = 90) -> Worker:
        self.start()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90) -> Worker:
        wait_for(lambda: " ready." in self.log() or not self.alive(), timeout=timeout, what=f"worker {self.name} to be ready")
        assert self.alive(), f"worker {self.name} exited:\n{self.log()[-3000:]}"
        return self

    def pool_children(self) -> list[int]:
        """The prefork pool processes (children of the worker's main process)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def received(self, task_id_part: str = "") -> int:
        return sum(
            1 for line in self.log().splitlines() if "vigil.reports.process[" in line and " received" in line and task_id_part in line
        )


class ApiServer(Process):
    """gunicorn serving Vigil, as in production (docker-compose `web`)."""

    def __init__(self, *, env: Mapping[str, str], log_dir: Path, workers: int = 2, threads: int = 4) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "vigil.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        argv += ["--workers", str(workers), "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "5"]
        super().__init__(f"gunicorn-{self.port}", argv, env=env, log_dir=log_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_and_wait(self, timeout: float = 90) -> ApiServer:
        self.start()
        wait_for(lambda: self._healthy() or not self.alive(), timeout=timeout, what="gunicorn to answer /healthz")
        assert self.alive(), f"gunicorn exited:\n{self.log()[-3000:]}"
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False


@dataclasses.dataclass(frozen=True)
class Upload:
    """One report as a sender posts it: the bytes and the query parameters."""

    data: bytes
    image: str = ""
    format: str = ""

    def params(self) -> dict[str, str]:
        return {key: value for key, value in (("image", self.image), ("format", self.format)) if value}


@dataclasses.dataclass(frozen=True)
class Posted:
    status: int
    body: dict[str, Any]
    seconds: float

    @property
    def report_id(self) -> str:
        return str(self.body.get("id", ""))


def post_report(base_url: str, token: str, upload: Upload, *, timeout: float = 60) -> Posted:
    query = urllib.parse.urlencode(upload.params())
    request = urllib.request.Request(
        f"{base_url}/api/v1/reports/?{query}",
        data=upload.data,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    seconds = time.monotonic() - started
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"raw": raw[:500].decode(errors="replace")}
    return Posted(status=status, body=body, seconds=seconds)


def get_json(url: str, token: str, *, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"raw": exc.read()[:500].decode(errors="replace")}


def manage(env: Mapping[str, str], *args: str, timeout: float = 180) -> str:
    """Run ``manage.py`` in a subprocess (its own settings, from ``env``); returns stdout."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=dict(env), capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr.decode()[-3000:]}"
    return done.stdout.decode()


_SWEEP = (
    "import django, json; django.setup(); from dashboard.ingest.receive import report_sweep;"
    " print(json.dumps(report_sweep(older_than_seconds=0)))"
)


def run_sweeper(env: Mapping[str, str]) -> set[str]:
    """The periodic sweeper, as beat runs it once VIGIL_STUCK_AFTER_SECONDS have passed; returns the re-enqueued ids."""
    done = subprocess.run([sys.executable, "-c", _SWEEP], cwd=ROOT, env=dict(env), capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, f"sweeper failed:\n{done.stderr.decode()[-3000:]}"
    return set(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def publish_duplicate(broker_url: str, queue: str, report_id: str) -> None:
    """Publish the processing task for ``report_id`` once more, as a redelivery or a second sweeper would."""
    from celery import current_app
    from celery.exceptions import AlwaysEagerIgnored

    from dashboard.ingest.receive import PROCESS_TASK

    with current_app.connection_for_write(broker_url) as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore", AlwaysEagerIgnored)  # the test process itself runs tasks eagerly
        current_app.send_task(PROCESS_TASK, args=[report_id], queue=queue, connection=conn, retry=False)


# --- The state the drills compare ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IngestState:
    """What a drill must not change: every finding's (fingerprint, status) and the events per type."""

    findings: frozenset[tuple[str, str]]
    events: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, findings: Iterable[tuple[str, str]], events: Iterable[str]) -> IngestState:
        return cls(findings=frozenset(findings), events=tuple(sorted(collections.Counter(events).items())))

    def __add__(self, other: IngestState) -> IngestState:
        """Two runs over disjoint scopes (different images): their union."""
        assert not {fp for fp, _ in self.findings} & {fp for fp, _ in other.findings}, "states overlap: not disjoint scopes"
        events = collections.Counter(dict(self.events)) + collections.Counter(dict(other.events))
        return IngestState(findings=self.findings | other.findings, events=tuple(sorted(events.items())))

    def statuses(self) -> dict[str, int]:
        return dict(collections.Counter(status for _, status in self.findings))


def database_state() -> IngestState:
    """The state of the test database (this process's Django connection)."""
    from dashboard.models import Finding, FindingEvent

    return IngestState.of(Finding.objects.values_list("fingerprint", "status"), FindingEvent.objects.values_list("type", flat=True))


def sql_state(conn: Any) -> IngestState:
    """The same, read with plain SQL from another database (the drill's private PostgreSQL cluster)."""
    from dashboard.models import Finding, FindingEvent

    with conn.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint, status FROM {Finding._meta.db_table}")  # noqa: S608 (a model's table name)
        findings = [(str(fp), str(status)) for fp, status in cursor.fetchall()]
        cursor.execute(f"SELECT type FROM {FindingEvent._meta.db_table}")  # noqa: S608 (a model's table name)
        events = [str(kind) for (kind,) in cursor.fetchall()]
    return IngestState.of(findings, events)


def wipe_ingested() -> None:
    """Forget every report and finding (and what hangs off them), keeping teams, users and tokens."""
    from django.db import connection

    from dashboard.models import Finding, Image, LifecycleScope, Report

    tables = ", ".join(model._meta.db_table for model in (Report, Finding, Image, LifecycleScope))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")


def outcome(counts: Mapping[str, int], held_closures: Iterable[int]) -> dict[str, int]:
    """What a report did: its counts (new, reopened, unchanged, fixed) and the closures it held back."""
    return {**counts, "held": len(list(held_closures))}


@dataclasses.dataclass(frozen=True)
class CleanRun:
    outcomes: tuple[dict[str, int], ...]
    state: IngestState

    def __add__(self, other: CleanRun) -> CleanRun:
        return CleanRun(outcomes=self.outcomes + other.outcomes, state=self.state + other.state)


def clean_run(uploads: Iterable[Upload], *, token: Any) -> CleanRun:
    """The reference: the same uploads submitted and processed one after another in-process, on an
    empty database (which is emptied again afterwards)."""
    from dashboard.ingest.claim import report_process
    from dashboard.ingest.receive import report_submit
    from dashboard.models import Finding, ReportStatus

    assert not Finding.objects.exists(), "a clean run needs an empty database"
    outcomes = []
    for upload in uploads:
        report, created = report_submit(
            data=upload.data, token=token, image=upload.image, format_name=upload.format, enqueue_now=False, deduplicate=False
        )
        processed = report_process(report.pk)
        assert created and processed is not None and processed.status == ReportStatus.DONE, processed and processed.error
        outcomes.append(outcome(processed.counts, processed.held_closures))
    state = database_state()
    wipe_ingested()
    return CleanRun(outcomes=tuple(outcomes), state=state)


def report_rows(ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """id -> status, error, attempts and outcome of reports in the test database."""
    from dashboard.models import Report

    rows = Report.objects.filter(pk__in=list(ids)).values("id", "status", "error", "attempts", "counts", "held_closures")
    return {
        str(row["id"]): {
            "status": row["status"],
            "error": row["error"],
            "attempts": row["attempts"],
            "outcome": outcome(row["counts"], row["held_closures"]),
        }
        for row in rows
    }


def applied_order(ids: Iterable[str]) -> list[str]:
    """Report ids in the order their results were committed (imports of one scope are serialised, and
    each stamps ``finished_at`` inside its locked transaction)."""
    from dashboard.models import Report

    return [str(pk) for pk in Report.objects.filter(pk__in=list(ids)).order_by("finished_at").values_list("id", flat=True)]


def sql_report_rows(conn: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The same, read with plain SQL from the drill's private PostgreSQL cluster."""
    from dashboard.models import Report

    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT id::text, status, error, attempts, counts, held_closures FROM {Report._meta.db_table}"  # noqa: S608 (a model's table name)
            " WHERE id::text = ANY(%s)",
            [list(ids)],
        )
        return {
            pk: {"status": status, "error": error, "attempts": attempts, "outcome": outcome(counts, held)}
            for pk, status, error, attempts, counts, held in cursor.fetchall()
        }


def finished(ids: Iterable[str]) -> bool:
    from dashboard.models import Report, ReportStatus

    wanted = list(ids)
    return Report.objects.filter(pk__in=wanted, status__in=[ReportStatus.DONE, ReportStatus.FAILED]).count() == len(wanted)


_FINDINGS_WRITE_LOCK = """
SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def ingest_in_flight(cursor: Any) -> bool:
    """True while another session holds an uncommitted write on the findings table: a worker is
    in the middle of applying a report (findings written, transaction not yet committed)."""
    from dashboard.models import Finding

    cursor.execute(_FINDINGS_WRITE_LOCK, [Finding._meta.db_table])
    return bool(cursor.fetchone()[0])


_REFERENCES: dict[Upload, CleanRun] = {}


def reference(upload: Upload, *, token: Any) -> CleanRun:
    """``clean_run([upload])``, remembered for the session (the generator is deterministic)."""
    if upload not in _REFERENCES:
        _REFERENCES[upload] = clean_run([upload], token=token)
    return _REFERENCES[upload]


_LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


def lock_waiters(cursor: Any) -> int:
    """How many other sessions are waiting for a lock (e.g. one the test holds to line deliveries up)."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")  # activity is otherwise read once per transaction
    cursor.execute(_LOCK_WAITERS)
    return int(cursor.fetchone()[0])


def sql_finished(conn: Any, ids: list[str]) -> bool:
    rows = sql_report_rows(conn, ids)
    return len(rows) == len(ids) and all(row["status"] in ("done", "failed") for row in rows.values())
