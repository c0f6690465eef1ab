"""The production stack files: docker compose and the Dockerfile.

There is no Docker engine (nor the compose plugin) on our machines, so the compose
file is checked structurally here."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_the_production_stack_with_healthchecks_and_a_database_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"db", "redis", "web", "worker-reports", "worker-events", "worker-maintenance", "beat"} <= set(services)
    assert "gunicorn" in services["web"]["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "vigil", "beat"]
    assert all("healthcheck" in service for service in services.values() if service.get("restart") != "no")
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "pgdata" in compose["volumes"]
    assert services["web"]["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"


def test_compose_runs_one_worker_per_queue_each_with_its_liveness_check() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    workers = {name: service for name, service in services.items() if name.startswith("worker-")}
    queues = {name: service["command"][service["command"].index("-Q") + 1] for name, service in workers.items()}
    assert queues == {"worker-reports": "reports", "worker-events": "events", "worker-maintenance": "maintenance"}
    assert {tuple(service["healthcheck"]["test"]) for service in workers.values()} == {("CMD", "python", "-m", "vigil.liveness", "worker")}
    assert services["beat"]["healthcheck"]["test"] == ["CMD", "python", "-m", "vigil.liveness", "beat"]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]

    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["vigil"]
    assert lines.index("USER vigil") > max(i for i, line in enumerate(lines) if line.startswith("RUN "))


def test_the_web_process_runs_with_the_gunicorn_config_whose_access_log_has_no_query_string() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    dockerfile_cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    config = (ROOT / "vigil" / "gunicorn_conf.py").read_text()

    assert compose["services"]["web"]["command"][:3] == ["gunicorn", "--config", "python:vigil.gunicorn_conf"]
    assert '"--config", "python:vigil.gunicorn_conf"' in dockerfile_cmd
    assert "--access-logformat" not in dockerfile_cmd + " ".join(compose["services"]["web"]["command"])
    assert "%(r)s" not in config and "%(q)s" not in config
