"""kube-bench JSON (``kube-bench --json``): ``{"Controls": [...], "Totals": {...}}``, a list of controls, or one
control object.

FAIL and WARN results are compliance findings; PASS and INFO are not.  Severity: a scored FAIL → high, an
unscored (manual) FAIL → medium, WARN → low.  Identity: cluster + ``node_type`` + ``test_number`` (the report
names no node or cluster, so the cluster is "" here; every node of one type shares the finding).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scanners.base import (
    Finding,
    ParseError,
    ParseResult,
    ResourceRef,
    expect_dict,
    expect_list,
    opt_str,
    req_str,
    type_name,
)
from scanners.fingerprint import make_fingerprint

_STATUSES = frozenset({"PASS", "FAIL", "WARN", "INFO"})


def _is_control(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("tests"), list) and "node_type" in value and "dockerbenchsecurity" not in value


class KubeBenchParser:
    name = "kube-bench"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        if isinstance(document, list):
            return bool(document) and all(_is_control(item) for item in document)
        if isinstance(document, dict) and "Controls" in document:
            controls = document.get("Controls")
            return isinstance(controls, list) and all(_is_control(item) for item in controls)
        return _is_control(document)

    def parse(self, document: Any) -> ParseResult:
        if isinstance(document, list):
            controls = [(f"[{index}]", item) for index, item in enumerate(document)]
        elif isinstance(document, dict) and "Controls" in document:
            items = expect_list(document.get("Controls"), "Controls")
            controls = [(f"Controls[{index}]", item) for index, item in enumerate(items)]
        elif isinstance(document, dict):
            if "tests" not in document:
                raise ParseError("not a kube-bench report: missing 'Controls' or 'tests'")
            controls = [("control", document)]
        else:
            raise ParseError(f"not a kube-bench report: expected an object or a list, got {type_name(document)}")
        findings: list[Finding] = []
        for where, control in controls:
            findings.extend(self._parse_control(control, where))
        return ParseResult(findings=findings)

    def _parse_control(self, value: Any, where: str) -> list[Finding]:
        control = expect_dict(value, where)
        node_type = opt_str(control, "node_type", where, 64)
        control_id = opt_str(control, "id", where, 64)
        control_text = opt_str(control, "text", where, 500)
        versions = {
            "benchmark_version": opt_str(control, "version", where, 64),
            "detected_version": opt_str(control, "detected_version", where, 64),
        }
        resource = ResourceRef(cluster="", kind="Cluster" if node_type == "policies" else "Node", name=node_type)
        findings: list[Finding] = []
        for test_index, raw_test in enumerate(expect_list(control.get("tests"), f"{where}.tests", allow_none=False)):
            test_where = f"{where}.tests[{test_index}]"
            test = expect_dict(raw_test, test_where)
            context = {
                "node_type": node_type,
                "control_id": control_id,
                "control": control_text,
                "section": opt_str(test, "section", test_where, 64),
                "section_desc": opt_str(test, "desc", test_where, 500),
            }
            for index, raw in enumerate(expect_list(test.get("results"), f"{test_where}.results")):
                finding = self._result(raw, f"{test_where}.results[{index}]", context=context, versions=versions, resource=resource)
                if finding is not None:
                    findings.append(finding)
        return findings

    def _result(
        self, raw: Any, result_where: str, *, context: Mapping[str, str], versions: Mapping[str, str], resource: ResourceRef
    ) -> Finding | None:
        """A failed or warned test result as a compliance finding; None for one that passed or only informs."""
        result = expect_dict(raw, result_where)
        test_number = req_str(result, "test_number", result_where, 64)
        status = req_str(result, "status", result_where, 16).strip().upper()
        if status not in _STATUSES:
            raise ParseError(f"{result_where}: unknown status {status!r} (expected PASS, FAIL, WARN or INFO)")
        if status not in ("FAIL", "WARN"):
            return None
        scored = result.get("scored")
        if scored is not None and not isinstance(scored, bool):
            raise ParseError(f"{result_where}: scored is not a boolean")
        severity = "low" if status == "WARN" else ("medium" if scored is False else "high")
        test_desc = opt_str(result, "test_desc", result_where, 500)
        remediation = opt_str(result, "remediation", result_where)
        details: dict[str, Any] = self._details(result, result_where)
        details.update({"status": status, **context})
        if scored is not None:
            details["scored"] = scored
        details.update((key, text) for key, text in versions.items() if text)
        return Finding(
            kind="compliance",
            source=self.name,
            rule_id=test_number,
            title=test_desc or f"kube-bench {test_number}",
            severity=severity,
            fingerprint=make_fingerprint("compliance", self.name, resource.cluster, context["node_type"], test_number),
            resource=resource,
            description=remediation,
            details=details,
        )

    @staticmethod
    def _details(result: Mapping[str, Any], where: str) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for key in ("audit", "actual_value", "expected_result", "reason", "type"):
            text = opt_str(result, key, where, 2000)
            if text:
                details[key] = text
        return details


parser = KubeBenchParser()
