"""The training catalogue: the shipped data file, the idempotent loader, the classifier, and "learn how to avoid this"."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.errors import ApplicationError
from dashboard.models import Topic, TrainingModule
from dashboard.selectors.finding_classes import VIGIL_CLASSES, FindingFacts, classes_for, normalise_check_id, nudge_classes_for
from dashboard.selectors.training import modules_for_finding
from dashboard.services.training import CATALOGUE, read_catalogue, training_load
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

CATALOGUE_DATA = json.loads(CATALOGUE.read_text(encoding="utf-8"))


# --- the shipped catalogue ---------------------------------------------------------------------


def test_the_catalogue_ships_at_least_40_free_modules_with_unique_https_urls() -> None:
    modules = CATALOGUE_DATA["modules"]
    urls = [module["url"] for module in modules]

    assert len(modules) >= 40
    assert len(set(urls)) == len(urls)
    assert [url for url in urls if not url.startswith("https://")] == []
    assert [module["slug"] for module in modules if not module["topics"]] == []


def test_every_vigil_class_and_every_topic_has_modules() -> None:
    covered = {key for topic in CATALOGUE_DATA["topics"] for key in topic["keys"]}
    used_topics = {slug for module in CATALOGUE_DATA["modules"] for slug in module["topics"]}

    assert sorted(f"vigil:{name}" for name in VIGIL_CLASSES if f"vigil:{name}" not in covered) == []
    assert sorted(topic["slug"] for topic in CATALOGUE_DATA["topics"] if topic["slug"] not in used_topics) == []


def test_the_catalogue_covers_the_sources_the_issue_names() -> None:
    urls = {module["url"] for module in CATALOGUE_DATA["modules"]}

    assert {
        "https://cheatsheetseries.owasp.org/cheatsheets/Docker_Security_Cheat_Sheet.html",
        "https://cheatsheetseries.owasp.org/cheatsheets/Kubernetes_Security_Cheat_Sheet.html",
        "https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html",
        "https://cheatsheetseries.owasp.org/cheatsheets/Vulnerable_Dependency_Management_Cheat_Sheet.html",
        "https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html",
        "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/",
        "https://kubernetes.io/docs/concepts/security/pod-security-standards/",
        "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
        "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
        "https://kubernetes.io/docs/concepts/security/secrets-good-practices/",
        "https://kubernetes.io/docs/concepts/security/rbac-good-practices/",
        "https://kubernetes.io/docs/concepts/security/security-checklist/",
        "https://media.defense.gov/2022/Aug/29/2003066362/-1/-1/0/CTR_KUBERNETES_HARDENING_GUIDANCE_1.2_20220829.PDF",
        "https://www.cisecurity.org/benchmark/kubernetes",
        "https://www.cisecurity.org/benchmark/docker",
    } <= urls


# --- loading -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_training_is_idempotent_and_keeps_administrators_edits() -> None:
    out = StringIO()
    call_command("load_training", stdout=out)
    module = TrainingModule.objects.get(slug="owasp-docker-security")
    module.minutes = 45
    module.save()
    module.topics.remove(Topic.objects.get(slug="secrets-in-images"))

    again = training_load()
    module.refresh_from_db()
    updated = training_load(update=True)
    module.refresh_from_db()

    assert out.getvalue().startswith(
        f"training catalogue: {len(CATALOGUE_DATA['topics'])} topics and {len(CATALOGUE_DATA['modules'])} modules"
    )
    assert not again.changed
    assert (updated.modules_updated, updated.links_added, module.minutes) == (1, 1, 20)
    assert TrainingModule.objects.count() == len(CATALOGUE_DATA["modules"])
    assert Topic.objects.count() == len(CATALOGUE_DATA["topics"])


@pytest.mark.django_db
def test_a_broken_catalogue_is_refused_with_the_reason(tmp_path) -> None:
    bad = tmp_path / "catalogue.json"
    bad.write_text(
        json.dumps(
            {
                "topics": [{"slug": "a", "name": "A", "keys": ["vigil:a"]}],
                "modules": [{"slug": "m", "title": "M", "url": "ftp://example.org/m", "provider": "x", "topics": ["a"]}],
            }
        )
    )

    with pytest.raises(CommandError, match=r"module 'm': 'ftp://example.org/m' is not an http\(s\) URL"):
        call_command("load_training", "--file", str(bad), stdout=StringIO())
    with pytest.raises(ApplicationError, match="unknown topics b"):
        bad.write_text(json.dumps({"topics": [], "modules": [{"slug": "m", "title": "M", "url": "https://e.org", "topics": ["b"]}]}))
        read_catalogue(bad)
    assert TrainingModule.objects.count() == 0


# --- the classifier ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (FindingFacts("misconfiguration", "trivy", "KSV012", "Runs as root user"), {"check:KSV012", "vigil:root-container"}),
        (FindingFacts("misconfiguration", "trivy-operator", "AVD-KSV-0017", "Privileged"), {"check:KSV017", "vigil:privileged"}),
        (
            FindingFacts("misconfiguration", "trivy", "DS002", "Image user should not be 'root'"),
            {"check:DS002", "vigil:root-container", "vigil:dockerfile-practices"},
        ),
        (FindingFacts("misconfiguration", "trivy", "KSV011", "CPU not limited"), {"check:KSV011", "vigil:missing-limits"}),
        (FindingFacts("misconfiguration", "trivy", "KSV013", "Image tag ':latest' used"), {"check:KSV013", "vigil:mutable-tags"}),
        (FindingFacts("misconfiguration", "trivy", "KSV023", "hostPath volumes mounted"), {"check:KSV023", "vigil:host-paths"}),
        (
            FindingFacts("misconfiguration", "trivy", "KSV006", "hostPath volume mounted with docker.sock"),
            {"check:KSV006", "vigil:exposed-docker-daemon"},
        ),
        (
            FindingFacts("policy", "admission-review", "disallow-latest-tag/validate-image-tag", "blocked"),
            {"policy:disallow-latest-tag", "vigil:mutable-tags"},
        ),
        (
            FindingFacts("policy", "gatekeeper", "K8sAllowedRepos/prod-repo-is-openpolicyagent", "invalid image repo"),
            {"policy:K8sAllowedRepos", "policy:prod-repo-is-openpolicyagent", "vigil:untrusted-registries"},
        ),
        (
            FindingFacts("policy", "gatekeeper", "K8sContainerLimits/container-must-have-limits", "no resource limits"),
            {"policy:K8sContainerLimits", "policy:container-must-have-limits", "vigil:missing-limits"},
        ),
        (
            FindingFacts("policy", "gatekeeper", "K8sRequiredLabels/ns-must-have-gk", "you must provide labels"),
            {"policy:K8sRequiredLabels", "policy:ns-must-have-gk", "vigil:admission-policy"},
        ),
        (
            FindingFacts("runtime", "falco", "Terminal shell in container"),
            {"falco:terminal shell in container", "vigil:shell-in-container"},
        ),
        (FindingFacts("runtime", "falco", "Write below etc"), {"falco:write below etc", "vigil:writes-below-etc"}),
        (
            FindingFacts("runtime", "falco", "Contact EC2 Instance Metadata Service From Container"),
            {"falco:contact ec2 instance metadata service from container", "vigil:cloud-metadata-access"},
        ),
        (
            FindingFacts("runtime", "falco", "Drop and execute new binary in container"),
            {"falco:drop and execute new binary in container", "vigil:container-drift"},
        ),
        (FindingFacts("runtime", "falco", "Some custom rule"), {"falco:some custom rule", "vigil:runtime-threat"}),
        (FindingFacts("secret", "trivy", "github-pat", "GitHub Personal Access Token"), {"vigil:secrets-in-images"}),
        (
            FindingFacts(
                "vulnerability",
                "trivy",
                "CVE-2019-1549",
                cwe=("CWE-330",),
                package_name="libssl",
                package_type="alpine",
                fixed_version="1.1.1d",
            ),
            {"cwe:CWE-330", "vigil:os-package-cves", "vigil:outdated-base-image"},
        ),
        (
            FindingFacts("vulnerability", "grype", "CVE-2021-1", package_name="zlib", package_type="deb"),
            {"vigil:os-package-cves"},
        ),
        (
            FindingFacts(
                "vulnerability",
                "trivy",
                "CVE-2021-33503",
                cwe=("CWE-400",),
                package_name="urllib3",
                package_type="pip",
                fixed_version="1.26.5",
            ),
            {"cwe:CWE-400", "vigil:vulnerable-dependencies"},
        ),
        (
            FindingFacts("compliance", "docker-bench", "2.7", "Ensure TLS authentication for Docker daemon is configured (Scored)"),
            {"vigil:docker-host-hardening", "vigil:exposed-docker-daemon"},
        ),
        (
            FindingFacts("compliance", "docker-bench", "1.1.3", "Ensure auditing is configured for the Docker daemon (Automated)"),
            {"vigil:docker-host-hardening"},
        ),
        (
            FindingFacts("compliance", "kube-bench", "4.1.2", "Ensure that the kubelet service file ownership is set"),
            {"vigil:kubernetes-cis"},
        ),
        (FindingFacts("misconfiguration", "sarif", "py/sql-injection", cwe=("CWE-89",)), {"cwe:CWE-89"}),
    ],
)
def test_classes_of_real_finding_shapes(facts: FindingFacts, expected: set[str]) -> None:
    assert set(classes_for(facts)) == expected


def test_cves_in_packages_never_count_by_their_cwe_towards_nudges() -> None:
    cve = FindingFacts("vulnerability", "trivy", "CVE-2021-33503", cwe=("CWE-400",), package_name="urllib3", package_type="pip")
    code = FindingFacts("misconfiguration", "sarif", "py/sql-injection", cwe=("CWE-89",))

    assert set(nudge_classes_for(cve)) == {"vigil:vulnerable-dependencies"}
    assert set(nudge_classes_for(code)) == {"cwe:CWE-89"}


def test_check_ids_are_normalised() -> None:
    assert [normalise_check_id(value) for value in ("AVD-KSV-0012", "KSV012", "ksv-12", "DS002", "CVE-2021-1234", "4.1.2")] == [
        "KSV012",
        "KSV012",
        "KSV012",
        "DS002",
        None,
        None,
    ]


# --- "learn how to avoid this" -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_finding_page_shows_the_modules_for_its_class(client, django_assert_max_num_queries) -> None:
    training_load()
    team = TeamFactory(slug="payments")
    user = UserFactory(username="dev")
    MembershipFactory(user=user, team=team, role="member")
    finding = FindingFactory(team=team, kind="misconfiguration", rule_id="KSV012", title="Runs as root user", package_name="")
    client.force_login(user)

    with django_assert_max_num_queries(40):
        response = client.get(f"/findings/{finding.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Learn how to avoid this" in body
    assert 'href="https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"' in body
    assert [m.slug for m in modules_for_finding(finding=finding)] == [
        "k8s-security-context",
        "docker-build-best-practices",
        "k8s-pod-security-standards",
        "owasp-docker-security",
    ]


@pytest.mark.django_db
def test_a_finding_without_a_known_class_says_so() -> None:
    training_load()
    finding = FindingFactory(kind="misconfiguration", source="sarif", rule_id="py/unused-import", title="Unused import", package_name="")

    assert modules_for_finding(finding=finding) == []
