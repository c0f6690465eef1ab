"""docker-bench-security JSON log (``docker-bench-security.log.json``).

WARN results are compliance findings; PASS, INFO and NOTE are not.  Severity: checks about the daemon's
network exposure and transport security → high, everything else → medium.  The high checks are recognised by
their text, not their number, because CIS renumbers between benchmark versions (inter-container traffic on
the default bridge is 2.1 in older and 2.2 in newer releases):
  * network traffic between containers on the default bridge is not restricted,
  * TLS authentication for the Docker daemon is not configured,
  * insecure registries are used,
  * container ports bound to all host interfaces,
  * the Docker socket is mounted inside a container.
Identity: host + check id.  The log names no host, so the host is "" unless a caller knows it.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from scanners.base import Finding, ParseError, ParseResult, ResourceRef, clean_text, expect_dict, expect_list, opt_str, req_str, type_name
from scanners.fingerprint import make_fingerprint
from scanners.moments import parse_moment

_RESULTS = frozenset({"PASS", "WARN", "INFO", "NOTE"})
_HIGH = re.compile(
    r"network traffic is restricted between containers"
    r"|TLS authentication for Docker daemon"
    r"|insecure registries"
    r"|bound to a specific host interface"
    r"|Docker socket is not mounted",
    re.IGNORECASE,
)


def _epoch_to_iso(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{where}: expected epoch seconds, got {type_name(value)}")
    try:
        return datetime.datetime.fromtimestamp(value, tz=datetime.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where}: epoch seconds {value} out of range") from None


class DockerBenchParser:
    name = "docker-bench"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        return isinstance(document, dict) and "dockerbenchsecurity" in document and isinstance(document.get("tests"), list)

    def parse(self, document: Any) -> ParseResult:
        if not isinstance(document, dict):
            raise ParseError(f"not a docker-bench-security log: expected an object, got {type_name(document)}")
        if "tests" not in document:
            raise ParseError("not a docker-bench-security log: missing 'tests'")
        version = opt_str(document, "dockerbenchsecurity", "log", 64)
        occurred_at = _epoch_to_iso(document.get("start"), "start")
        host = ""
        resource = ResourceRef(kind="Host", name=host)
        findings: list[Finding] = []
        for section_index, raw_section in enumerate(expect_list(document.get("tests"), "tests", allow_none=False)):
            section_where = f"tests[{section_index}]"
            section = expect_dict(raw_section, section_where)
            section_id = opt_str(section, "id", section_where, 64)
            section_desc = opt_str(section, "desc", section_where, 500)
            for index, raw in enumerate(expect_list(section.get("results"), f"{section_where}.results")):
                where = f"{section_where}.results[{index}]"
                result = expect_dict(raw, where)
                check_id = req_str(result, "id", where, 64)
                outcome = req_str(result, "result", where, 16).strip().upper()
                if outcome not in _RESULTS:
                    raise ParseError(f"{where}: unknown result {outcome!r} (expected PASS, WARN, INFO or NOTE)")
                if outcome != "WARN":
                    continue
                desc = opt_str(result, "desc", where, 500)
                title = desc[len(check_id) :].strip() if desc.startswith(check_id + " ") else desc
                details: dict[str, Any] = {"section": section_id, "section_desc": section_desc}
                if version:
                    details["docker_bench_version"] = version
                text = opt_str(result, "details", where)
                if text:
                    details["details"] = text
                items = result.get("items")
                if items is not None:
                    if not isinstance(items, list):
                        raise ParseError(f"{where}: items is not a list")
                    details["items"] = [clean_text(item, 500) for item in items if isinstance(item, (str, int, float))]
                impact = opt_str(result, "remediation-impact", where)
                if impact:
                    details["remediation_impact"] = impact
                findings.append(
                    Finding(
                        kind="compliance",
                        source=self.name,
                        rule_id=check_id,
                        title=title or f"docker-bench {check_id}",
                        severity="high" if _HIGH.search(desc) else "medium",
                        fingerprint=make_fingerprint("compliance", self.name, host, check_id),
                        resource=resource,
                        occurred_at=occurred_at,
                        description=opt_str(result, "remediation", where),
                        details=details,
                    )
                )
        return ParseResult(findings=findings, observed_at=parse_moment(document.get("end")) or parse_moment(document.get("start")))


parser = DockerBenchParser()
