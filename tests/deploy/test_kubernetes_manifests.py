"""The Kubernetes manifests (deploy/kubernetes/), tested as far as a machine without a cluster allows: rendered with
kustomize (kubectl's, no cluster needed), validated against the Kubernetes JSON schemas, scanned by Trivy (offline,
its built-in checks) with no high or critical misconfiguration, and that scan ingested by Vigil itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from rest_framework.test import APIClient

from dashboard.models import Finding, Report
from dashboard.services.tokens import token_create
from tests.factories import TeamFactory

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("base", "overlays/small", "overlays/production")
#: The Kubernetes version the schemas are those of (the newest kubernetes-validate ships).
K8S_VERSION = kubernetes_validate.utils.latest_version()
TRIVY = Path(sys.executable).parent / "trivy"
WORKLOADS = ("Deployment", "Job")


def render(target: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for `kubectl kustomize`) is on every machine image; install kubectl or kustomize"
    out = subprocess.run([kubectl, "kustomize", str(KUSTOMIZE / target)], capture_output=True, text=True, check=True, timeout=120).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    return render(request.param)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def containers(docs: list[dict]) -> list[dict]:
    specs = [doc["spec"]["template"]["spec"] for doc in docs if doc["kind"] in WORKLOADS]
    return [c for spec in specs for c in spec["containers"] + spec.get("initContainers", [])]


def test_every_object_is_valid_against_the_kubernetes_schemas(rendered) -> None:
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)

    assert len(rendered) >= 20


def test_a_schema_error_is_caught() -> None:
    broken = by_kind(render("base"), "Deployment")["vigil-web"]
    broken["spec"]["replicas"] = "two"

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_web_with_hpa_a_worker_per_queue_one_beat_a_migration_job_service_ingress_and_pdb(rendered) -> None:
    deployments = by_kind(rendered, "Deployment")
    queues = {
        name: c["command"][c["command"].index("-Q") + 1]
        for name, d in deployments.items()
        for c in d["spec"]["template"]["spec"]["containers"]
        if "-Q" in c["command"]
    }

    assert queues == {"vigil-worker-reports": "reports", "vigil-worker-events": "events", "vigil-worker-maintenance": "maintenance"}
    assert (deployments["vigil-beat"]["spec"]["replicas"], deployments["vigil-beat"]["spec"]["strategy"]["type"]) == (1, "Recreate")
    assert by_kind(rendered, "HorizontalPodAutoscaler")["vigil-web"]["spec"]["scaleTargetRef"]["name"] == "vigil-web"
    migrate = by_kind(rendered, "Job")["vigil-migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"][-2:] == ["migrate", "--noinput"]
    assert set(by_kind(rendered, "Service")) == {"vigil-web"}
    assert by_kind(rendered, "Ingress")["vigil"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "vigil-web"
    assert {"vigil-web", "vigil-worker-reports", "vigil-worker-events"} <= set(by_kind(rendered, "PodDisruptionBudget"))


def test_every_container_is_locked_down_and_has_resources(rendered) -> None:
    locked = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    every = containers(rendered)

    assert len(every) == 6
    assert [{k: c["securityContext"].get(k) for k in locked} for c in every] == [locked] * len(every)
    assert all({"requests", "limits"} <= set(c["resources"]) for c in every)


def test_probes_web_on_healthz_and_readyz_workers_and_beat_on_their_heartbeat(rendered) -> None:
    deployments = by_kind(rendered, "Deployment")
    web = deployments["vigil-web"]["spec"]["template"]["spec"]["containers"][0]
    liveness = {name: d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] for name, d in deployments.items()}
    execs = {name: probe["exec"]["command"] for name, probe in liveness.items() if name != "vigil-web"}

    assert (web["livenessProbe"]["httpGet"]["path"], web["readinessProbe"]["httpGet"]["path"]) == ("/healthz", "/readyz")
    assert {name: command[-1] for name, command in execs.items()} == {
        "vigil-worker-reports": "worker",
        "vigil-worker-events": "worker",
        "vigil-worker-maintenance": "worker",
        "vigil-beat": "beat",
    }
    assert {tuple(command[:3]) for command in execs.values()} == {("python", "-m", "vigil.liveness")}


def test_secrets_come_from_an_existing_secret_and_settings_from_the_configmap(rendered) -> None:
    sources = {json.dumps(c["envFrom"], sort_keys=True) for c in containers(rendered)}

    expected = [{"configMapRef": {"name": "vigil-config"}}, {"secretRef": {"name": "vigil-secrets"}}]
    assert [json.loads(source) for source in sources] == [expected]
    assert by_kind(rendered, "Secret") == {}
    assert "DATABASE_URL" not in by_kind(rendered, "ConfigMap")["vigil-config"]["data"]


def test_network_policies_let_vigil_reach_dns_the_database_and_redis_only(rendered) -> None:
    policies = by_kind(rendered, "NetworkPolicy")
    egress_ports = {
        name: sorted({port["port"] for rule in policy["spec"].get("egress", []) for port in rule["ports"]})
        for name, policy in policies.items()
    }

    assert policies["vigil-default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert egress_ports == {
        "vigil-default-deny": [],
        "vigil-web": [53, 5432, 6379],
        "vigil-worker-reports": [53, 5432, 6379],
        "vigil-worker-events": [53, 5432, 6379],
        "vigil-worker-maintenance": [53, 5432, 6379],
        "vigil-beat": [53, 6379],
        "vigil-migrate": [53, 5432],
    }


def test_the_production_overlay_pins_its_image_namespace_and_database_addresses() -> None:
    docs = render("overlays/production")

    assert {c["image"] for c in containers(docs)} == {"registry.example.com/security/vigil:0.1.0"}
    assert {doc["metadata"].get("namespace") for doc in docs} == {"vigil"}
    assert by_kind(docs, "NetworkPolicy")["vigil-web"]["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.20.30.0/28"}}]


# --- the scan, and Vigil ingesting it ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trivy_scan(tmp_path_factory) -> bytes:
    """`trivy config` of the rendered production overlay and the Dockerfile: Trivy's native JSON, offline."""
    target = tmp_path_factory.mktemp("scan")
    for overlay in OVERLAYS:
        (target / f"{overlay.replace('/', '-')}.yaml").write_text(yaml.safe_dump_all(render(overlay)))
    shutil.copy(ROOT / "Dockerfile", target / "Dockerfile")
    env = {**os.environ, "TRIVY_CACHE_DIR": str(tmp_path_factory.mktemp("trivy-cache"))}
    argv = [str(TRIVY), "config", "--skip-check-update", "--format", "json", "--quiet", str(target)]
    return subprocess.run(argv, capture_output=True, check=True, timeout=300, env=env).stdout


def test_trivy_finds_no_high_or_critical_misconfiguration_in_the_manifests_or_the_dockerfile(trivy_scan) -> None:
    results = json.loads(trivy_scan)["Results"]
    severe = [
        (result["Target"], m["ID"], m["Title"])
        for result in results
        for m in result.get("Misconfigurations", [])
        if m["Severity"] in ("HIGH", "CRITICAL")
    ]

    assert {result["Target"] for result in results} >= {"Dockerfile", "overlays-production.yaml"}
    assert sum(result["MisconfSummary"]["Successes"] for result in results) > 100
    assert severe == []


@pytest.mark.django_db
def test_vigil_ingests_trivys_scan_of_its_own_deployment(trivy_scan, django_capture_on_commit_callbacks) -> None:
    team = TeamFactory(slug="platform")
    _, token = token_create(team=team, name="vigil's own CI")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    failures = sum(len(result.get("Misconfigurations", [])) for result in json.loads(trivy_scan)["Results"])

    with django_capture_on_commit_callbacks(execute=True):  # processed in-process (eager) after the commit
        response = client.generic("POST", "/api/v1/reports/?format=trivy", trivy_scan, content_type="application/json")

    report = Report.objects.get(pk=response.json()["id"])
    findings = Finding.objects.filter(team=team)
    assert (response.status_code, report.status, report.format) == (202, "done", "trivy")
    assert report.counts["new"] == findings.count() > 0
    assert set(findings.values_list("kind", flat=True)) == {"misconfiguration"}
    assert set(findings.values_list("severity", flat=True)) <= {"medium", "low"}
    assert findings.count() <= failures
