"""Falco / falcosidekick alert parser.  Fixtures are written from Falco's output docs (see SOURCE.md)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ImageRef, ParseError, ResourceRef
from scanners.falco import PRIORITY_SEVERITY, parser
from scanners.fingerprint import make_fingerprint
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "falco"


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


# Counted independently: one finding per alert object (lines / array items).
COUNTS = {
    "falco_alerts_array.json": 2,
    "falco_json_output_docs_example.json": 1,
    "falcosidekick_webhook_payloads.jsonl": 6,
}


def test_every_fixture_is_counted() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".md") == sorted(COUNTS)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_finding_counts(name: str, count: int) -> None:
    result = parser.parse(load(name))
    assert len(result.findings) == count
    assert {f.kind for f in result.findings} == {"runtime"}
    assert {f.source for f in result.findings} == {"falco"}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_detected_as_falco_only(name: str) -> None:
    assert registry.detect(load(name)).name == "falco"


def test_parser_identity() -> None:
    assert parser.name == "falco"
    assert parser.stream == "runtime"


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("Emergency", "critical"),
        ("Alert", "critical"),
        ("Critical", "critical"),
        ("Error", "high"),
        ("Warning", "medium"),
        ("Notice", "low"),
        ("Informational", "info"),
        ("Debug", "info"),
        ("WARNING", "medium"),
        ("notice", "low"),
        ("Loud", "unknown"),
    ],
)
def test_priority_mapping(priority: str, severity: str) -> None:
    alert = {"rule": "r", "priority": priority, "output": "", "time": "2024-06-03T08:15:42Z"}
    assert parser.parse(alert).findings[0].severity == severity


def test_priority_table_is_exactly_the_contract() -> None:
    assert {PRIORITY_SEVERITY[word] for word in ("emergency", "alert", "critical")} == {"critical"}
    assert PRIORITY_SEVERITY["error"] == "high"
    assert PRIORITY_SEVERITY["warning"] == "medium"
    assert PRIORITY_SEVERITY["notice"] == "low"
    assert PRIORITY_SEVERITY["informational"] == PRIORITY_SEVERITY["debug"] == "info"


def test_docs_json_output_example() -> None:
    (finding,) = parser.parse(load("falco_json_output_docs_example.json")).findings
    assert finding.rule_id == "Terminal shell in container"
    assert finding.title == "Terminal shell in container"
    assert finding.severity == "critical"
    assert finding.resource == ResourceRef(cluster="", namespace="default", kind="Pod", name="kubecon")
    assert finding.image == ImageRef.parse("docker.io/library/alpine")
    assert finding.occurred_at == "2023-05-25T13:44:05.478445+00:00"
    assert finding.details["evt.time"] == 1685022245478445995
    assert isinstance(finding.details["evt.time"], int)
    assert finding.details["hostname"] == "falco-xczjd"
    assert finding.details["proc.cmdline"] == "sh -c clear; (bash || ash || sh)"
    assert finding.details["user.name"] == "root"
    assert finding.details["tags"] == ["container", "mitre_execution", "shell"]
    assert finding.details["source"] == "syscall"
    assert finding.description.startswith("13:44:05.478445995: Critical A shell was spawned")
    assert finding.fingerprint == make_fingerprint("runtime", "Terminal shell in container", "", "default", "kubecon")


def test_falcosidekick_payloads() -> None:
    shell_one, shell_two, drop, docker, mount, packet = parser.parse(load("falcosidekick_webhook_payloads.jsonl")).findings
    assert shell_one.details["uuid"] == "0a3e2e4f-2b1c-4d5e-8f9a-0b1c2d3e4f5a"
    assert shell_one.details["hostname"] == "worker-node-1"
    assert shell_one.severity == "low"
    assert shell_one.resource == ResourceRef(namespace="payments", kind="Pod", name="api")
    assert shell_one.details["k8s.pod.name"] == "api-7d9f8b6c5-x2x4z"
    assert shell_one.image == ImageRef(registry="registry.example.com", repository="payments/api", tag="1.4.1", digest="sha256:" + "b" * 64)
    # Another pod of the same Deployment running another tag: the same identity.
    assert shell_two.image is not None
    assert shell_two.image.tag == "1.4.2"
    assert shell_two.details["k8s.pod.name"] == "api-5f6d7c8b9-q8z7w"
    assert shell_two.fingerprint == shell_one.fingerprint
    # Almost empty output_fields: container, image and pod come from the output text.
    assert drop.severity == "critical"
    assert drop.resource == ResourceRef(namespace="my_ns", kind="Pod", name="my_pod_name")
    assert drop.image == ImageRef.parse("ubuntu:latest")
    assert drop.details["container.name"] == "optimistic_newton"
    assert drop.details["container.id"] == "0fdb3cd5b5fc"
    assert drop.details["evt.time"] == 1717383803573329751
    # A plain Docker host: no Kubernetes fields, identified by the image repository.
    assert docker.severity == "medium"
    assert docker.resource is None
    assert docker.image == ImageRef.parse("docker.io/acme/backup-agent:2.0")
    assert docker.fingerprint == make_fingerprint("runtime", "Read sensitive file untrusted", "", "", "docker.io/acme/backup-agent")
    assert mount.severity == "info"
    assert mount.resource == ResourceRef(namespace="monitoring", kind="Pod", name="node-exporter")
    assert mount.details["evt.time"] == 1717415100000000001
    # Null k8s fields and no image: identified by container.name.
    assert packet.severity == "high"
    assert packet.image is None
    assert packet.resource is None
    assert packet.fingerprint == make_fingerprint("runtime", "Packet socket created in container", "", "", "host")


def test_alert_array_with_output_fields_null_and_lowercase_priority() -> None:
    ptrace, miner = parser.parse(load("falco_alerts_array.json")).findings
    assert ptrace.severity == "medium"
    assert ptrace.resource == ResourceRef(namespace="payments", kind="Pod", name="api")
    assert ptrace.image == ImageRef.parse("registry.example.com/payments/api:1.4.1")
    assert ptrace.details["user.name"] == "root"
    assert miner.severity == "info"
    assert miner.resource is None
    assert miner.image is None
    assert miner.occurred_at == "2024-06-04T14:05:00+00:00"


def test_fingerprint_ignores_uuid_time_output_proc_and_tag() -> None:
    alerts = load("falcosidekick_webhook_payloads.jsonl")
    base = parser.parse(alerts[0]).findings[0].fingerprint
    changed = copy.deepcopy(alerts[0])
    changed["uuid"] = "ffffffff-ffff-4fff-8fff-ffffffffffff"
    changed["time"] = "2025-01-01T00:00:00.000000001Z"
    changed["output"] = "something else entirely"
    changed["output_fields"]["proc.cmdline"] = "zsh"
    changed["output_fields"]["container.image.tag"] = "9.9.9"
    changed["output_fields"]["k8s.pod.name"] = "api-6b7c8d9f5-zz2zz"
    changed["output_fields"]["evt.time"] = 1
    assert parser.parse(changed).findings[0].fingerprint == base
    other_namespace = copy.deepcopy(alerts[0])
    other_namespace["output_fields"]["k8s.ns.name"] = "shop"
    assert parser.parse(other_namespace).findings[0].fingerprint != base


def test_fingerprint_stable_under_key_order_and_whitespace() -> None:
    raw = (FIXTURES / "falcosidekick_webhook_payloads.jsonl").read_bytes()
    alerts = [json.loads(line) for line in raw.decode().splitlines()]
    reordered = json.dumps(alerts, sort_keys=True, indent=2).encode()
    assert [f.fingerprint for f in registry.parse_bytes(raw)[1].findings] == [
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    ]


def test_single_object_and_missing_optional_fields() -> None:
    alert = {"rule": "Minimal", "priority": "Notice", "output": None, "time": None, "output_fields": None}
    (finding,) = parser.parse(alert).findings
    assert finding.occurred_at is None
    assert finding.resource is None
    assert finding.image is None
    assert finding.details == {"priority": "Notice"}


def test_detect_rejects_other_documents() -> None:
    assert not parser.detect({"rule": "x", "priority": "Notice"})
    assert not parser.detect({"runs": []})
    assert not parser.detect([])
    assert not parser.detect([{"rule": "x", "priority": "Notice", "output": "", "time": ""}, {"matches": []}])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.update(rule=""), "alert: missing rule"),
        (lambda a: a.update(priority=3), "alert: priority is not a string"),
        (lambda a: a.update(time="yesterday"), "alert: time 'yesterday' is not an RFC 3339 timestamp"),
        (lambda a: a.update(output_fields=["k8s.ns.name"]), "alert.output_fields: expected an object, got a list"),
        (lambda a: a.update(tags="shell"), "alert: tags is not a list"),
        (lambda a: a.update(hostname={"name": "x"}), "alert: hostname is not a string"),
    ],
)
def test_malformed_alerts(mutate: Any, message: str) -> None:
    alert = copy.deepcopy(load("falco_json_output_docs_example.json"))
    mutate(alert)
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse(alert)


def test_malformed_alert_in_a_list_names_its_index() -> None:
    alerts = load("falco_alerts_array.json")
    alerts[1]["output_fields"] = "none"
    with pytest.raises(ParseError, match=re.escape("[1].output_fields: expected an object, got a string")):
        parser.parse(alerts)
