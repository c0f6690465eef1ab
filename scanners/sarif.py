"""SARIF 2.1.0 logs from any tool (Trivy, Grype, CodeQL, Checkov, KICS, Dockle, ...).

One finding per result of every run, except results that are not problems:

- ``kind`` ``pass`` or ``notApplicable`` (the spec's default ``kind`` is ``fail``);
- ``baselineState: absent`` (present in the baseline, gone from this run);
- suppressed results: a suppression whose ``status`` is absent or ``accepted`` (``underReview`` and
  ``rejected`` suppressions do not hide a result).

Severity, in this order: ``security-severity`` in the result's ``properties``, else in its rule's
(>= 9 critical, >= 7 high, >= 4 medium, > 0 low, 0 info); else ``level`` (error high, warning
medium, note low, none info) where an absent level defaults to the rule's
``defaultConfiguration.level``, else ``warning`` (for ``kind`` other than fail: ``none``).

Empty logs: ``runs: []`` is a valid log (the spec allows zero runs) and yields zero findings;
``runs: null`` or a missing ``runs`` is refused.  A run without ``results`` (rules metadata only)
contributes no findings.

Kinds: a rule id that is a vulnerability id (CVE-, GHSA-, ...) is a vulnerability, a rule tagged or
named "secret" is a secret, anything else (code scanning included) a misconfiguration.

Identity: namespace "sarif" with the tool name, rule id, artifact uri, ``partialFingerprints`` when
present (else the start line) and, for Trivy's image results, the package name Trivy writes as a
``Package:`` line; never the message.  Several results at one identity (shellcheck repeating a rule
on one line) are one finding with ``details["occurrences"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from scanners.base import (
    MAX_TITLE,
    Finding,
    ImageRef,
    PackageRef,
    ParseError,
    ParseResult,
    clean_cvss,
    clean_references,
    clean_text,
    expect_dict,
    expect_list,
    normalise_cwes,
    opt_str,
    severity_from_score,
    type_name,
)
from scanners.fingerprint import make_fingerprint
from scanners.moments import latest_moment
from scanners.trivy import image_from_refs, iso_timestamp

_LEVELS = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
_NOT_PROBLEMS = {"pass", "notapplicable"}
_VULN_ID = re.compile(r"^(?:CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3}|GO-\d{4}-\d+|PYSEC-\d{4}-\d+|RUSTSEC-\d{4}-\d+)", re.IGNORECASE)
#: Trivy writes the package only into the message: ``Package: libssl1.1\nInstalled Version: ...``.
_TRIVY_LINE = re.compile(r"^(Package|Installed Version|Fixed Version):[ \t]*(\S*)[ \t]*$", re.MULTILINE)


def _number(value: Any) -> float | None:
    """security-severity is a string in the spec's examples ("8.2") and sometimes a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if 0 <= score <= 10 else None


def _text(value: Any, where: str) -> str:
    """The ``text`` of a SARIF message object (``{"text": ...}``)."""
    if value is None:
        return ""
    message = expect_dict(value, where)
    return opt_str(message, "text", where) or opt_str(message, "markdown", where)


def _properties(owner: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    return expect_dict(owner.get("properties") or {}, f"{where}.properties")


class SarifParser:
    name = "sarif"
    stream = "scan"
    #: A snapshot of its scope; the same scan again (timestamps aside) is recorded without parsing.
    events = False
    repeat_skips_parse = True

    def detect(self, document: Any) -> bool:
        if not isinstance(document, dict) or "runs" not in document:
            return False
        version = document.get("version")
        schema = document.get("$schema")
        return (isinstance(version, str) and version.startswith("2.")) or (isinstance(schema, str) and "sarif" in schema.lower())

    def parse(self, document: Any) -> ParseResult:
        log = expect_dict(document, "log")
        if "runs" not in log:
            raise ParseError("not a SARIF log: missing 'runs'")
        version = log.get("version")
        if version != "2.1.0":
            raise ParseError(f"SARIF version {version!r} is not supported (expected '2.1.0')")
        if log.get("runs") is None:
            raise ParseError("runs is null: the log holds no analysis (the SARIF producer failed)")
        findings: dict[str, Finding] = {}
        images: dict[ImageRef, None] = {}
        for index, run in enumerate(expect_list(log.get("runs"), "runs")):
            image = self._run(run, f"runs[{index}]", findings)
            if image is not None:
                images[image] = None
        return ParseResult(
            findings=list(findings.values()),
            artifact=next(iter(images)) if len(images) == 1 else None,
            observed_at=latest_moment(_invocation_times(log["runs"])),
        )

    def _run(self, value: Any, where: str, findings: dict[str, Finding]) -> ImageRef | None:
        run = expect_dict(value, where)
        tool = expect_dict(run.get("tool"), f"{where}.tool")
        driver = expect_dict(tool.get("driver"), f"{where}.tool.driver")
        tool_name = opt_str(driver, "name", f"{where}.tool.driver", 255)
        if not tool_name:
            raise ParseError(f"{where}.tool.driver: missing name")
        rules = [
            expect_dict(r, f"{where}.tool.driver.rules[{i}]")
            for i, r in enumerate(expect_list(driver.get("rules"), f"{where}.tool.driver.rules"))
        ]
        by_id: dict[str, Mapping[str, Any]] = {}
        for rule in rules:
            rule_id = rule.get("id")
            if isinstance(rule_id, str) and rule_id not in by_id:
                by_id[rule_id] = rule
        properties = _properties(run, where)
        image = None
        if properties.get("repoTags") is not None or properties.get("imageName") is not None:  # Trivy
            image = image_from_refs(
                expect_list(properties.get("repoTags"), f"{where}.properties.repoTags"),
                expect_list(properties.get("repoDigests"), f"{where}.properties.repoDigests"),
                properties.get("imageName"),
            )
        occurred_at = None
        invocations = expect_list(run.get("invocations"), f"{where}.invocations")
        if invocations and isinstance(invocations[0], dict):
            occurred_at = iso_timestamp(invocations[0].get("endTimeUtc")) or iso_timestamp(invocations[0].get("startTimeUtc"))
        context = _RunContext(tool_name, opt_str(driver, "version", f"{where}.tool.driver", 255), rules, by_id, image, occurred_at)
        if run.get("results") is None:
            return image  # rules metadata only (or a failed run): nothing to report
        for r_index, item in enumerate(expect_list(run.get("results"), f"{where}.results")):
            finding = self._result(item, f"{where}.results[{r_index}]", context)
            if finding is None:
                continue
            first = findings.get(finding.fingerprint)
            if first is None:
                findings[finding.fingerprint] = finding
            else:
                first.details["occurrences"] = first.details.get("occurrences", 1) + 1
        return image

    def _result(self, value: Any, where: str, context: _RunContext) -> Finding | None:
        result = expect_dict(value, where)
        result_kind = self._problem_kind(result, where)
        if not result_kind:
            return None
        rule, rule_id = self._rule(result, where, context)
        rule_props: Mapping[str, Any] = _properties(rule, f"{where}(rule)") if rule else {}
        result_props = _properties(result, where)

        level = _level(result, rule, where, result_kind)
        security_severity = _number(result_props.get("security-severity"))
        if security_severity is None:
            security_severity = _number(rule_props.get("security-severity"))
        severity = severity_from_score(security_severity) if security_severity is not None else _LEVELS[level]

        message = _text(result.get("message"), f"{where}.message")
        uri, start_line, end_line = self._location(result, where)
        partial = expect_dict(result.get("partialFingerprints") or {}, f"{where}.partialFingerprints")
        partial_text = "|".join(f"{k}={clean_text(v, 500)}" for k, v in sorted(partial.items()) if isinstance(v, (str, int)))

        tags = [t for t in expect_list(rule_props.get("tags"), f"{where}(rule).properties.tags") if isinstance(t, str)]
        tags += [t for t in expect_list(result_props.get("tags"), f"{where}.properties.tags") if isinstance(t, str)]
        rule_name = opt_str(rule, "name", f"{where}(rule)", 255) if rule else ""
        kind = _kind(rule_id, tags, rule_name)
        package = _trivy_package(message) if kind == "vulnerability" and context.tool_name.lower() == "trivy" else None
        cvss = _cvss(rule_props, security_severity) if kind == "vulnerability" else None

        short = _text(rule.get("shortDescription"), f"{where}(rule).shortDescription") if rule else ""
        full = _text(rule.get("fullDescription"), f"{where}(rule).fullDescription") if rule else ""
        title = short or message.split("\n", 1)[0] or rule_name or rule_id
        located = partial_text or ("" if start_line is None else str(start_line))
        fingerprint = make_fingerprint("sarif", context.tool_name.lower(), rule_id, uri, located, package.name if package else "")
        details: dict[str, Any] = {
            "tool": context.tool_name,
            "tool_version": context.tool_version,
            "level": level,
            "result_kind": result_kind if result_kind != "fail" else "",
            "security_severity": security_severity,
            "rule_name": rule_name if rule_name != rule_id else "",
            **_where_found(uri, start_line, end_line, partial, tags),
            "baseline_state": opt_str(result, "baselineState", where, 64),
        }
        return Finding(
            kind=kind,
            source=self.name,
            rule_id=rule_id,
            title=clean_text(title, MAX_TITLE),
            severity=severity,
            fingerprint=fingerprint,
            image=context.image,
            package=package,
            cvss=cvss,
            cwe=normalise_cwes(tags),
            references=clean_references([opt_str(rule, "helpUri", f"{where}(rule)", 2000) if rule else ""]),
            occurred_at=context.occurred_at,
            description="\n\n".join(part for part in (message, full) if part),
            details={k: v for k, v in details.items() if v not in ("", None, [], {})},
        )

    @classmethod
    def _problem_kind(cls, result: Mapping[str, Any], where: str) -> str:
        """The result's kind ("fail" unless it says), or "" for no problem: passed, gone from the baseline, suppressed."""
        result_kind = opt_str(result, "kind", where, 64) or "fail"
        if result_kind.lower() in _NOT_PROBLEMS:
            return ""
        if opt_str(result, "baselineState", where, 64) == "absent":
            return ""
        if cls._suppressed(result, where):
            return ""
        return result_kind

    @staticmethod
    def _suppressed(result: Mapping[str, Any], where: str) -> bool:
        for index, item in enumerate(expect_list(result.get("suppressions"), f"{where}.suppressions")):
            suppression = expect_dict(item, f"{where}.suppressions[{index}]")
            status = opt_str(suppression, "status", f"{where}.suppressions[{index}]", 64)
            if status in ("", "accepted"):
                return True
        return False

    @staticmethod
    def _rule(result: Mapping[str, Any], where: str, context: _RunContext) -> tuple[Mapping[str, Any], str]:
        """The result's rule (``{}`` when the driver lists none) and rule id, via ``ruleId`` or ``ruleIndex``."""
        reference = result.get("rule")
        ref = expect_dict(reference, f"{where}.rule") if reference is not None else {}
        rule_id = opt_str(result, "ruleId", where, 255) or opt_str(ref, "id", f"{where}.rule", 255)
        index = result.get("ruleIndex", ref.get("index"))
        rule: Mapping[str, Any] = {}
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int):
                raise ParseError(f"{where}: ruleIndex is not a number")
            if 0 <= index < len(context.rules):
                rule = context.rules[index]
            elif index != -1 and not rule_id:
                raise ParseError(f"{where}: ruleIndex {index} is outside tool.driver.rules ({len(context.rules)} rules)")
        if not rule and rule_id:
            # Hierarchical ids ("CA2000/1") fall back to their base rule.
            rule = context.by_id.get(rule_id) or context.by_id.get(rule_id.split("/", 1)[0]) or {}
        if not rule_id:
            rule_id = opt_str(rule, "id", f"{where}(rule)", 255)
        if not rule_id:
            raise ParseError(f"{where}: missing ruleId (and no rule at ruleIndex)")
        return rule, rule_id

    @staticmethod
    def _location(result: Mapping[str, Any], where: str) -> tuple[str, int | None, int | None]:
        locations = expect_list(result.get("locations"), f"{where}.locations")
        if not locations:
            return "", None, None
        location = expect_dict(locations[0], f"{where}.locations[0]")
        physical = expect_dict(location.get("physicalLocation") or {}, f"{where}.locations[0].physicalLocation")
        artifact = expect_dict(physical.get("artifactLocation") or {}, f"{where}.locations[0].physicalLocation.artifactLocation")
        uri = opt_str(artifact, "uri", f"{where}.locations[0].physicalLocation.artifactLocation", 2000)
        region = expect_dict(physical.get("region") or {}, f"{where}.locations[0].physicalLocation.region")
        lines = []
        for key in ("startLine", "endLine"):
            line = region.get(key)
            if line is not None and (isinstance(line, bool) or not isinstance(line, int)):
                raise ParseError(f"{where}.locations[0].physicalLocation.region: {key} is not a number, got {type_name(line)}")
            lines.append(line)
        return uri, lines[0], lines[1]


class _RunContext:
    def __init__(
        self,
        tool_name: str,
        tool_version: str,
        rules: list[Mapping[str, Any]],
        by_id: dict[str, Mapping[str, Any]],
        image: ImageRef | None,
        occurred_at: str | None,
    ) -> None:
        self.tool_name = tool_name
        self.tool_version = tool_version
        self.rules = rules
        self.by_id = by_id
        self.image = image
        self.occurred_at = occurred_at


def _level(result: Mapping[str, Any], rule: Mapping[str, Any] | None, where: str, result_kind: str) -> str:
    """The result's level, else its rule's default, else what its kind implies."""
    level = opt_str(result, "level", where, 32)
    if level and level not in _LEVELS:
        raise ParseError(f"{where}: level {level!r} is not one of error, warning, note, none")
    if not level:
        default = expect_dict(rule.get("defaultConfiguration") or {}, f"{where}(rule).defaultConfiguration") if rule else {}
        level = opt_str(default, "level", f"{where}(rule).defaultConfiguration", 32)
        if level not in _LEVELS:
            level = "warning" if result_kind == "fail" else "none"
    return level


def _cvss(rule_props: Mapping[str, Any], security_severity: float | None) -> float | None:
    """A vulnerability's CVSS: the rule's ``cvssv3_baseScore``, else its security severity (a CVSS score too)."""
    cvss = clean_cvss(rule_props.get("cvssv3_baseScore"))
    return clean_cvss(security_severity) if cvss is None else cvss


def _where_found(uri: str, start_line: int | None, end_line: int | None, partial: Mapping[str, Any], tags: list[str]) -> dict[str, Any]:
    return {
        "uri": uri,
        "start_line": start_line,
        "end_line": end_line,
        "partial_fingerprints": {k: v for k, v in sorted(partial.items()) if isinstance(v, (str, int))},
        "tags": tags[:30],
    }


def _kind(rule_id: str, tags: list[str], rule_name: str) -> str:
    if _VULN_ID.match(rule_id):
        return "vulnerability"
    if any("secret" in t.lower() for t in tags) or "secret" in rule_name.lower():
        return "secret"
    return "misconfiguration"


def _trivy_package(message: str) -> PackageRef | None:
    """The package Trivy's SARIF names in the lines of a vulnerability's message."""
    lines = {key: val for key, val in _TRIVY_LINE.findall(message)}
    if not lines.get("Package"):
        return None
    return PackageRef(
        name=clean_text(lines["Package"], 255),
        version=clean_text(lines.get("Installed Version", ""), 255),
        fixed_version=clean_text(lines.get("Fixed Version", ""), 255),
    )


parser = SarifParser()


def _invocation_times(runs: list[Any]) -> list[Any]:
    """When each invocation of each run ended (else started): the runs were checked by ``_run`` already."""
    times: list[Any] = []
    for run in runs:
        invocations = run.get("invocations") if isinstance(run, dict) else None
        for invocation in invocations if isinstance(invocations, list) else []:
            if isinstance(invocation, dict):
                times.append(invocation.get("endTimeUtc") or invocation.get("startTimeUtc"))
    return times
