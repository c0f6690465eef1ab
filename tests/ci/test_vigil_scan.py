"""ci/vigil-scan, the GitHub Actions composite action and the GitLab CI template, against a live test server (no mocks)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboard.models import Finding, Status
from dashboard.services.policies import policy_update
from dashboard.services.tokens import token_create
from tests.conftest import FIXTURES
from tests.factories import TeamFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ci" / "vigil-scan"
CRITICAL = FIXTURES / "trivy" / "severity_prio.json"
MEDIUM_ONLY = FIXTURES / "trivy" / "trivy-golden_alpine-310_image.json"
IMAGE = "registry.example.com/payments/api:1.4.1"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token() -> str:
    _, secret = token_create(team=TeamFactory(slug="payments"), name="payments CI", scope="ingest")
    return secret


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run with POSIX sh (dash), the way a pipeline does; no VIGIL_* variables leak in from the test's environment."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("VIGIL_")}
    environment = {**clean, **(env or {})}
    return subprocess.run(["/bin/sh", *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=120, check=False)


def scan(url: str, token: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(str(SCRIPT), "-u", url, "-t", token, "-i", IMAGE, "-w", "60", *extra, str(report))


def test_pass_exits_0_with_a_summary(live_server, token) -> None:
    result = scan(live_server.url, token, MEDIUM_ONLY)
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": done")
    assert "findings: 4 new, 0 reopened, 0 unchanged, 0 fixed" in lines
    assert "decision: pass" in lines
    assert f"image: {IMAGE}" in lines
    assert "nothing in the image violates the policy" in lines


def test_warn_exits_0_and_names_the_finding_its_fix_and_where_to_triage(live_server, token) -> None:
    result = scan(live_server.url, token, CRITICAL)
    critical = Finding.objects.get(severity="critical")
    assert result.returncode == 0
    verdict = [line for line in result.stdout.splitlines() if line.startswith(("decision", "1 finding"))]
    assert verdict == ["decision: warn", "1 finding violates the policy:"]
    assert f"- {critical.rule_id} (critical) in {critical.package_name} {critical.package_version} [severity]" in result.stdout
    assert f"    fix: upgrade to {critical.fixed_version}" in result.stdout
    assert f"    triage: {live_server.url}/findings/{critical.pk}/" in result.stdout


def test_fail_exits_1_under_an_enforcing_policy(live_server, token) -> None:
    team = TeamFactory(slug="payments")
    policy_update(team=team, by=UserFactory(is_staff=True), changes={"mode": "enforce"})
    scan(live_server.url, token, MEDIUM_ONLY)  # the image is now known and owned by payments
    result = scan(live_server.url, token, CRITICAL)
    assert result.returncode == 1
    assert result.stdout.splitlines()[2:4] == ["decision: fail", f"image: {IMAGE}"]
    assert "policy: team payments, version 1, mode enforce" in result.stdout


def test_triaged_findings_no_longer_fail(live_server, token) -> None:
    team = TeamFactory(slug="payments")
    policy_update(team=team, by=UserFactory(is_staff=True), changes={"mode": "enforce"})
    assert scan(live_server.url, token, CRITICAL).returncode == 1
    Finding.objects.filter(severity="critical").update(status=Status.FALSE_POSITIVE)
    result = scan(live_server.url, token, CRITICAL)
    assert (result.returncode, "decision: pass" in result.stdout) == (0, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "usage: vigil-scan"),
        (("-u", "http://127.0.0.1:9", str(CRITICAL)), "no token"),
        (("-u", "http://127.0.0.1:9", "-t", "x", "/nonexistent.json"), "cannot read the report"),
        (("-u", "http://127.0.0.1:9", "-t", "x", "-w", "500", str(CRITICAL)), "-w wants whole seconds"),
        (("-u", "http://127.0.0.1:9", "-t", "x", "-i", "a b&c=d", str(CRITICAL)), "characters an image"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run(str(SCRIPT), *args)
    assert (result.returncode, message in result.stderr) == (2, True)


def test_an_unreachable_vigil_exits_2() -> None:
    result = run(str(SCRIPT), "-u", "http://127.0.0.1:9", "-t", "vgl_x", str(CRITICAL))
    assert (result.returncode, "could not reach Vigil" in result.stderr) == (2, True)


def test_a_bad_token_exits_2_with_vigils_message(live_server) -> None:
    result = scan(live_server.url, "vgl_not_a_real_token", CRITICAL)
    assert (result.returncode, "HTTP 401" in result.stderr, result.stdout.startswith("error: ")) == (2, True, True)


def test_a_refused_report_exits_2(live_server, token, tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"SchemaVersion": 2, "Results": [')
    result = scan(live_server.url, token, broken)
    assert (result.returncode, "HTTP 422" in result.stderr) == (2, True)


def test_the_github_action_runs_the_script(live_server, token, tmp_path) -> None:
    action = yaml.safe_load((ROOT / "ci" / "github" / "action.yml").read_text())
    step = action["runs"]["steps"][0]
    assert (action["runs"]["using"], step["shell"], set(step["env"])) == (
        "composite",
        "sh",
        {"VIGIL_URL", "VIGIL_TOKEN", "VIGIL_IMAGE", "VIGIL_FORMAT", "VIGIL_TEAM", "VIGIL_WAIT", "VIGIL_REPORT"},
    )
    # The step as the runner runs it: inputs become its environment, GITHUB_ACTION_PATH is the action's folder.
    shutil.copy(CRITICAL, tmp_path / "report.json")
    env = {
        "GITHUB_ACTION_PATH": str(ROOT / "ci" / "github"),
        "VIGIL_URL": live_server.url,
        "VIGIL_TOKEN": token,
        "VIGIL_IMAGE": IMAGE,
        "VIGIL_FORMAT": "",
        "VIGIL_TEAM": "",
        "VIGIL_WAIT": "60",
        "VIGIL_REPORT": "report.json",
    }
    result = run("-c", step["run"], env=env, cwd=tmp_path)
    assert (result.returncode, "decision: warn" in result.stdout) == (0, True)


def test_the_gitlab_template_runs_the_script(live_server, token, tmp_path) -> None:
    template = yaml.safe_load((ROOT / "ci" / "gitlab" / "vigil-scan.gitlab-ci.yml").read_text())
    job = template[".vigil-scan"]
    (tmp_path / "ci").mkdir()
    shutil.copy(SCRIPT, tmp_path / "ci" / "vigil-scan")
    shutil.copy(MEDIUM_ONLY, tmp_path / "report.json")
    env = {**{key: str(value) for key, value in job["variables"].items()}, "VIGIL_URL": live_server.url, "VIGIL_TOKEN": token}
    env["VIGIL_IMAGE"] = IMAGE
    result = run("-ec", "\n".join(job["script"]), env=env, cwd=tmp_path)
    assert (result.returncode, "decision: pass" in result.stdout) == (0, True)
