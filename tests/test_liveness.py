"""The worker's and beat's own liveness checks (vigil/liveness.py): heartbeat files touched from their loops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vigil import liveness

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def heartbeat_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VIGIL_HEARTBEAT_DIR", str(tmp_path))
    return tmp_path


def check(role: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vigil.liveness", role], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


def wait_for(path: Path, *, exists: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() != exists and time.monotonic() < deadline:
        time.sleep(0.2)


def test_a_fresh_heartbeat_is_alive_and_a_stale_or_missing_one_is_not(heartbeat_dir) -> None:
    missing = liveness.problem("worker")
    liveness.beat("worker")
    fresh = liveness.problem("worker")
    stale_time = time.time() - 120
    os.utime(heartbeat_dir / "worker.alive", (stale_time, stale_time))

    assert ("no heartbeat file" in missing, fresh, "120 s old" in liveness.problem("worker", max_age=60)) == (True, "", True)


def test_the_probe_exits_1_with_a_reason_without_a_heartbeat_and_0_with_one(heartbeat_dir) -> None:
    env = {**os.environ, "VIGIL_HEARTBEAT_DIR": str(heartbeat_dir)}
    dead = check("beat", env)
    liveness.beat("beat")
    alive = check("beat", env)

    assert (dead.returncode, "no heartbeat file" in dead.stderr, alive.returncode) == (1, True, 0)


@pytest.mark.parametrize(
    ("role", "argv"),
    [
        ("worker", ["worker", "--pool", "solo", "-Q", "vigil-liveness-test", "--without-gossip", "--without-mingle"]),
        ("beat", ["beat", "--schedule", "{dir}/celerybeat-schedule"]),
    ],
)
def test_a_running_celery_process_is_alive_and_a_stopped_one_is_not(role, argv, heartbeat_dir, tmp_path) -> None:
    # No broker: the in-memory transport, so this needs neither Redis nor PostgreSQL.
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env |= {"VIGIL_HEARTBEAT_DIR": str(heartbeat_dir), "VIGIL_VAR_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "celery", "-A", "vigil", *(arg.format(dir=tmp_path) for arg in argv), "-l", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(heartbeat_dir / f"{role}.alive", exists=True)
        running = check(role, env).returncode
    finally:
        process.terminate()
        process.wait(timeout=30)
    stopped = check(role, env).returncode

    assert (running, stopped) == (0, 1)
