"""Stable identities for findings.

A fingerprint is a SHA-256 over a format-independent namespace and the
identity parts PRODUCT.md names (never descriptions, timestamps, tags or
pod-hash suffixes).  Parts are joined with a separator that cannot occur in
them, so ("a", "bc") and ("ab", "c") never collide.
"""

from __future__ import annotations

import hashlib
import re

_SEP = "\x1f"

# Kubernetes generates name suffixes from this alphabet (no vowels, no 0/1/3).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_POD_OF_REPLICASET = re.compile(rf"-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}$")
_POD_OF_CONTROLLER = re.compile(rf"-[{_SAFE}]{{5}}$")
_REPLICASET = re.compile(rf"-[{_SAFE}]{{6,10}}$")


def make_fingerprint(namespace: str, *parts: str | None) -> str:
    """Fingerprint ``parts`` within ``namespace`` (e.g. "vuln", "policy", "runtime")."""
    text = namespace
    for part in parts:  # ``_SEP.join`` over a generator is slower for the usual four or five parts
        text += (_SEP + part.strip()) if part else _SEP
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def workload_name(pod_name: str, *, kind: str = "Pod") -> str:
    """The workload behind a generated name: ``api-7d9f8b6c5-x2x4z`` → ``api``.

    Pods of Deployments lose the ReplicaSet hash and the pod suffix; pods of
    DaemonSets and Jobs lose the 5-character suffix; ReplicaSets lose their
    hash.  StatefulSet ordinals (``db-0``) are stable and kept.
    """
    name = (pod_name or "").strip()
    if kind == "ReplicaSet":
        return _REPLICASET.sub("", name)
    if kind not in ("Pod", ""):
        return name
    stripped = _POD_OF_REPLICASET.sub("", name)
    if stripped != name:
        return stripped
    return _POD_OF_CONTROLLER.sub("", name)
