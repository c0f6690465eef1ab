"""The real stack for the benchmarks, started and stopped by the benchmark itself.

A dedicated PostgreSQL database on the machine's server (created, migrated, dropped), the machine's
Redis with a private queue name, gunicorn serving ``vigil.wsgi`` on a free port, and one Celery worker
(``--pool solo``, so the process we start is the one that parses and applies reports).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vm_hwm_mib(pid: int) -> float:
    """Peak resident set of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used (less sensitive to a busy machine than wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_hwm(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux: write 5 to /proc/<pid>/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@dataclasses.dataclass
class Stack:
    db_name: str
    db_url: str
    broker_url: str
    queue: str
    port: int
    token: str
    gunicorn: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    env: dict[str, str]

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=self.db_name)

    def http(self, timeout: float = 600) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def post_report(self, body: bytes, query: str = "") -> tuple[float, dict[str, Any]]:
        """POST a report; returns (seconds until the 202, the answer)."""
        conn = self.http()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        started = time.perf_counter()
        conn.request("POST", f"/api/v1/reports/{query}", body=body, headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        elapsed = time.perf_counter() - started
        conn.close()
        if response.status != 202:
            raise RuntimeError(f"POST answered {response.status}: {answer}")
        return elapsed, answer

    def report(self, report_id: str, conn: http.client.HTTPConnection | None = None) -> dict[str, Any]:
        own = conn is None
        conn = conn or self.http()
        conn.request("GET", f"/api/v1/reports/{report_id}/", headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        body = json.loads(response.read())
        if own:
            conn.close()
        return dict(body)

    def wait_done(self, report_id: str, timeout: float = 900, interval: float = 0.05) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        conn = self.http()
        while time.monotonic() < deadline:
            body = self.report(report_id, conn)
            if body["status"] in ("done", "failed"):
                conn.close()
                return body
            time.sleep(interval)
        raise RuntimeError(f"report {report_id} did not finish within {timeout}s")

    def gunicorn_workers(self) -> list[int]:
        return children(self.gunicorn.pid)

    def cpu_snapshot(self) -> dict[str, dict[int, float]]:
        """CPU seconds used so far by the worker, the web workers and the PostgreSQL backends of the bench database."""
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.db_name,))
            backends = [row[0] for row in cur.fetchall()]
        conn.close()

        def used(pids: list[int]) -> dict[int, float]:
            out = {}
            for pid in pids:
                try:
                    out[pid] = cpu_seconds(pid)
                except OSError:  # gone meanwhile
                    pass
            return out

        return {"worker": used([self.worker.pid]), "web": used(self.gunicorn_workers()), "database": used(backends)}


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (processes that started meanwhile count in full)."""
    return {group: sum(cpu - before[group].get(pid, 0.0) for pid, cpu in after[group].items()) for group in after}


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def _migrate(env: dict[str, str]) -> None:
    """Migrate the database ``env["DATABASE_URL"]`` names (bench/queue_bench.py uses this too)."""
    _manage(env, "migrate", "--noinput")


def _admin(sql: str) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def _wait_http(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}; see {OUT / 'gunicorn.log'}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz")


def _wait_log(path: Path, needle: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with status {process.returncode}; see {path}")
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{needle!r} not seen in {path}")


def start_worker(env: dict[str, str], queue: str) -> subprocess.Popen[bytes]:
    log = OUT / "worker.log"
    if log.exists():
        log.unlink()
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
            "-n",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
            "-f",
            str(log),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    _wait_log(log, "ready.", worker)
    return worker


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_stack(*, db_name: str, web_workers: int = 3, web_threads: int = 1, keep_db: bool = False) -> Iterator[Stack]:
    """Create the database, migrate, make a team and token, start gunicorn and one worker; tear it all down."""
    OUT.mkdir(parents=True, exist_ok=True)
    queue = f"vigil-bench-{uuid.uuid4().hex[:8]}"
    db_url = f"postgres://postgres@127.0.0.1:5432/{db_name}"
    broker_url = os.environ.get("VIGIL_BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker_url,
        "VIGIL_CELERY_QUEUE": queue,
        "VIGIL_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "vigil.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("VIGIL_DEBUG", None)
    _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{db_name}"')
    gunicorn = worker = None
    try:
        _migrate(env)
        _manage(env, "create_team", "bench", "--name", "Bench")
        token = _manage(env, "create_token", "--team", "bench", "--name", "bench", "--scope", "ingest").splitlines()[-1]
        port = free_port()
        gunicorn = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "vigil.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(web_workers),
                "--threads",
                str(web_threads),
                "--timeout",
                "600",
                "--log-level",
                "warning",
                "--error-logfile",
                str(OUT / "gunicorn.log"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_http(port, gunicorn)
        worker = start_worker(env, queue)
        yield Stack(
            db_name=db_name,
            db_url=db_url,
            broker_url=broker_url,
            queue=queue,
            port=port,
            token=token,
            gunicorn=gunicorn,
            worker=worker,
            env=env,
        )
    finally:
        for process in (worker, gunicorn):
            if process is not None:
                stop(process)
        _drop_queue(broker_url, queue)
        if not keep_db:
            _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _drop_queue(broker_url: str, queue: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=5)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}", *client.keys(f"{queue}*"))
    except Exception as exc:  # noqa: BLE001 - best effort cleanup
        print(f"note: could not delete the Redis queue {queue}: {exc}", file=sys.stderr)
