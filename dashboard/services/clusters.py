"""Clusters as a dimension of identity: which cluster a report speaks for, and giving it to what the report found.

A token bound to a cluster speaks for that cluster only; a token that is not bound may name one with
``cluster=``.  A report whose resources name no cluster (Kyverno, kube-bench and trivy-operator reports never do)
gets the sender's: its resources carry it, and the identities and scopes of resource-based findings (policy
results, misconfigurations, runtime alerts, compliance checks) include it, so a pass reported from cluster A never
closes a failure in cluster B.  Vulnerabilities and secrets stay identified by their image, so a false positive on
an image holds in every cluster.  It is applied to the parse result before anything is fingerprinted or keyed by
scope (claim.py), and scanners/ stays unaware of it.
"""

from __future__ import annotations

import dataclasses

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken
from dashboard.services.tokens import clean_cluster
from scanners.base import Finding, ParseResult, ResourceRef
from scanners.fingerprint import make_fingerprint

#: Kinds whose identity is the resource they are about (PRODUCT.md: policy results, runtime alerts).
RESOURCE_KINDS = frozenset({"policy", "misconfiguration", "runtime", "compliance"})


def resolve_cluster(*, token: ApiToken | None, requested: str) -> str:
    """The cluster a request speaks for: the token's binding, else ``cluster=``; a bound token naming another: 403."""
    named = clean_cluster(requested)
    bound = token.cluster if token is not None else ""
    if bound and named and named != bound:
        message = f"this token is bound to cluster {bound!r} and may not speak for {named!r}"
        raise ApplicationError(message, code="forbidden_cluster", status=403)
    return bound or named


def names_a_cluster(result: ParseResult) -> bool:
    """Does the report say which cluster its resources are in?"""
    if any(resource.cluster for resource in result.evaluated):
        return True
    if any(resource is not None and resource.cluster for resource, _ in result.evaluated_policies):
        return True
    return any(finding.resource is not None and finding.resource.cluster for finding in result.findings)


def clustered_fingerprint(cluster: str, fingerprint: str) -> str:
    """The identity of a resource-based finding of a report from ``cluster`` that named none itself."""
    return make_fingerprint("cluster", cluster, fingerprint)


def with_cluster(result: ParseResult, cluster: str) -> ParseResult:
    """The parse result as if its resources had named ``cluster`` (unchanged without one, or when they name one)."""
    if not cluster or names_a_cluster(result):
        return result

    def placed(resource: ResourceRef | None) -> ResourceRef | None:
        return dataclasses.replace(resource, cluster=cluster) if resource is not None else None

    findings: list[Finding] = []
    for finding in result.findings:
        if finding.resource is None:
            findings.append(finding)
            continue
        fingerprint = clustered_fingerprint(cluster, finding.fingerprint) if finding.kind in RESOURCE_KINDS else finding.fingerprint
        findings.append(dataclasses.replace(finding, resource=placed(finding.resource), fingerprint=fingerprint, cleaned=True))
    return dataclasses.replace(
        result,
        findings=findings,
        evaluated=[dataclasses.replace(resource, cluster=cluster) for resource in result.evaluated],
        evaluated_policies=[(placed(resource), policy) for resource, policy in result.evaluated_policies],
        resolved=[clustered_fingerprint(cluster, fingerprint) for fingerprint in result.resolved],
    )
