"""The inputs of an enforcement decision, gathered in a constant number of queries.

``image_findings`` (or ``images_findings`` for many images at once) reads what the pure decision
(dashboard/enforcement/decision.py) needs about an image's findings; ``policy_for`` reads the policy that
decides.  They read what is there now; the decision memo (selectors/decision_memo.py) calls them again whenever
PostgreSQL's record of changes to these rows moved, so a false positive marked or an acceptance revoked a moment
ago counts at once.  The statements are written out in dashboard/db/ (decision_inputs, decision_findings): compiling them as
querysets on every request cost more CPU than running them.  Only the training catalogue that names the module for
a reason is kept, a minute per process (``selectors/training.module_picker``): it teaches and decides nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from django.db.models import QuerySet
from django.db.models.fields.json import KT

from dashboard.db.decision_findings import Wanted, decision_findings
from dashboard.db.decision_inputs import images_with_versions, namespace_rules, policies_with_teams
from dashboard.enforcement.decision import SEVERITY_RANK, FindingFacts, Policy, policy_from_mapping
from dashboard.models import (
    ACTIVE_STATUSES,
    POLICY_FIELDS,
    EnforcementPolicy,
    Finding,
    Image,
    Status,
)
from dashboard.models.access import sees_everything, visible_team_filter, visible_teams
from dashboard.selectors.finding_classes import FACT_FIELDS, classes_for
from dashboard.selectors.finding_classes import FindingFacts as LearningFacts
from dashboard.selectors.ownership import RuleSet, decide_owner
from dashboard.selectors.training import module_picker
from scanners.base import ImageRef

#: Statuses a decision looks at: open work, and risk acceptances (which exempt only while they run).
CANDIDATE_STATUSES = (*ACTIVE_STATUSES, Status.RISK_ACCEPTED)


@dataclasses.dataclass(frozen=True)
class ImageFindings:
    """What Vigil knows about one image reference: the image, whether it was seen, and its findings."""

    ref: str
    parsed: ImageRef | None
    image: Image | None
    #: None when Vigil has never seen the image (or this tag / digest of it), or the caller may not read it.
    findings: tuple[FindingFacts, ...] | None
    #: Finding id -> what the training classifier reads of it (``modules_for_findings(known=...)``).
    learning: Mapping[int, LearningFacts] = dataclasses.field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.findings is not None

    @property
    def team_id(self) -> int | None:
        """The team that owns the image (its policy decides), when the image is known."""
        return self.image.team_id if self.image is not None and self.known else None


def _version_seen(ref: ImageRef, image: Image, versions: set[tuple[int, str, str]]) -> bool:
    if ref.digest:
        return any(pk == image.pk and digest == ref.digest for pk, _, digest in versions)
    if ref.tag:
        return any(pk == image.pk and tag == ref.tag for pk, tag, _ in versions)
    return True


def _facts(row: dict[str, Any]) -> FindingFacts:
    return FindingFacts(
        id=row["id"],
        rule_id=row["rule_id"],
        kind=row["kind"],
        severity=row["severity"],
        status=row["status"],
        title=row["title"],
        package=row["package_name"],
        version=row["package_version"],
        fix=row["fixed_version"],
        kev=row["kev"],
        epss=row["epss"],
        due_date=row["due_date"],
        accepted_until=row["accepted_until"],
    )


def _readable_team_ids(user: Any) -> set[int] | None:
    """Teams whose images ``user`` may ask about; None: every image (Vigil itself, or staff)."""
    if user is None or sees_everything(user):
        return None
    token = getattr(user, "api_token", None)
    if token is not None:
        return set(token.team_ids())
    return set(visible_teams(user).values_list("pk", flat=True))


def images_findings(
    *, refs: Sequence[str], user: Any = None, policy_of: Callable[[Image], Policy] | None = None, today: dt.date | None = None
) -> dict[str, ImageFindings]:
    """Every reference in ``refs`` -> what Vigil knows about it in a constant number of queries whatever the number
    of refs: the images with their versions, the findings, and for a caller other than Vigil the teams it reads
    (a token's extra teams; a person's memberships, twice), besides ``policy_of``'s.

    ``user`` (a person or a request's token principal) sees only the findings and images of the teams it may
    read; ``user=None`` reads everything (the admission webhook: its token decides on any image but reads nothing).
    With ``policy_of`` (the policy that decides for an image) and ``today``, only the findings that could violate
    that policy are read (``wanted_by``): the decision is the same, from a fraction of the rows.
    """
    parsed = {ref: ImageRef.parse(ref) for ref in refs}
    wanted = {(item.registry, item.repository) for item in parsed.values() if item is not None}
    tags = {item.tag for item in parsed.values() if item is not None and item.tag and not item.digest}
    digests = {item.digest for item in parsed.values() if item is not None and item.digest}
    images: dict[tuple[str, str], Image] = {}
    versions: set[tuple[int, str, str]] = set()
    if wanted:
        found = images_with_versions(registries={r for r, _ in wanted}, repositories={p for _, p in wanted}, tags=tags, digests=digests)
        for candidate, tag, digest in found:
            if (candidate.registry, candidate.repository) in wanted:
                images.setdefault((candidate.registry, candidate.repository), candidate)
                if tag is not None:
                    versions.add((candidate.pk, tag, digest or ""))
    readable = _readable_team_ids(user) if images else None
    if readable is not None:
        images = {key: image for key, image in images.items() if image.team_id in readable}
    seen = {
        ref: images[(item.registry, item.repository)]
        for ref, item in parsed.items()
        if item is not None
        and (item.registry, item.repository) in images
        and _version_seen(item, images[(item.registry, item.repository)], versions)
    }
    wanted_images = {image.pk: image for image in seen.values()}
    if policy_of is not None and today is not None:
        reads = [wanted_by(policy_of(image), today, image_id=pk) for pk, image in wanted_images.items()]
    else:
        reads = [Wanted(image_id=pk, every=True) for pk in wanted_images]
    by_image, learning = _findings_by_image(reads, user)
    out: dict[str, ImageFindings] = {}
    for ref, item in parsed.items():
        image = seen.get(ref)
        findings = tuple(by_image.get(image.pk, ())) if image is not None else None
        out[ref] = ImageFindings(ref=ref, parsed=item, image=image, findings=findings, learning=learning)
    return out


def wanted_by(policy: Policy, today: dt.date, *, image_id: int) -> Wanted:
    """The findings of an image that could violate one of ``policy``'s rules (``violated_rules``): a superset of
    those that do, so deciding on what it selects gives the same decision as deciding on every finding."""
    if policy.rule_ids:  # shell patterns and AVD- aliases: any finding may be named
        return Wanted(image_id=image_id, every=True)
    lowest = SEVERITY_RANK.get(policy.min_severity, 99)
    return Wanted(
        image_id=image_id,
        severities=tuple(name for name, rank in SEVERITY_RANK.items() if rank >= lowest) if policy.min_severity else (),
        fix_required=policy.fix_required,
        epss_min=policy.epss_min,
        kev=policy.kev,
        overdue_before=today if policy.sla_overdue else None,
        secrets=policy.secrets,
    )


def _findings_by_image(wanted: list[Wanted], user: Any) -> tuple[dict[int, list[FindingFacts]], _Learning]:
    if not wanted:
        return {}, _Learning({})
    rows = decision_findings(wanted=wanted, statuses=CANDIDATE_STATUSES, team_ids=_finding_team_ids(user))
    out: dict[int, list[FindingFacts]] = {}
    for row in rows:
        out.setdefault(row["image_id"], []).append(_facts(row))
    return out, _Learning({row["id"]: row for row in rows})


class _Learning(Mapping[int, LearningFacts]):
    """Finding id -> its classifier facts, built only for the findings asked about (a decision's reasons)."""

    def __init__(self, rows: dict[int, dict[str, Any]]) -> None:
        self._rows = rows

    def __getitem__(self, key: int) -> LearningFacts:
        return LearningFacts.from_values(_class_values(self._rows[key]))

    def __contains__(self, key: object) -> bool:  # without building the facts (Mapping's default would)
        return key in self._rows

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _finding_team_ids(user: Any) -> list[int] | None:
    """The teams whose findings ``user`` reads, as ``Finding.objects.visible_to`` scopes them (None: every team)."""
    if user is None:
        return None
    scope = visible_team_filter(user)
    if scope is None:
        return None
    teams = scope["team_id__in"]
    if isinstance(teams, QuerySet):  # a person's memberships
        return sorted({row["team_id"] for row in teams})
    return sorted(teams)


def image_findings(
    *, ref: str, user: Any = None, policy_of: Callable[[Image], Policy] | None = None, today: dt.date | None = None
) -> ImageFindings:
    """``images_findings`` for one reference."""
    return images_findings(refs=[ref], user=user, policy_of=policy_of, today=today)[ref]


def policy_of(row: EnforcementPolicy | None) -> Policy:
    """The decision's view of a stored policy (None: the built-in default)."""
    if row is None:
        return Policy()
    team = row.team.slug if row.team_id and row.team else None
    return policy_from_mapping(row.rule_values(), team=team, team_id=row.team_id, version=row.version, policy_id=row.pk)


def policy_for(*, team_id: int | None) -> Policy:
    """The policy that decides for a team: its own, else the organisation default, else the built-in default (one query)."""
    by_team = {row.team_id: row for row in policies_with_teams(team_id=team_id)}
    return policy_of(by_team.get(team_id) if team_id in by_team else by_team.get(None))


def namespace_owner(namespace: str) -> int | None:
    """The team owning ``namespace`` by the namespace ownership rules (None when no rule claims it), decided as
    ``would_block.namespace_team`` decides it, from one statement."""
    if not namespace:
        return None
    owner = decide_owner(rules=RuleSet(namespace_rules()), image="", namespace=namespace, labels={}, report_team=None, named=False)
    return owner.team.pk if owner.team is not None else None


def policies_read_once() -> Callable[[int | None], Policy]:
    """``policy_for`` that reads each team's policy at most once (for one decision, never across requests)."""
    return functools.cache(lambda team_id: policy_for(team_id=team_id))


def policy_row(*, team_id: int | None) -> EnforcementPolicy | None:
    """The stored policy of a team (None: the organisation default row), if there is one."""
    if team_id is None:
        return EnforcementPolicy.objects.filter(team__isnull=True).first()
    return EnforcementPolicy.objects.select_related("team").filter(team_id=team_id).first()


def policy_values(policy: Policy) -> dict[str, Any]:
    """A policy's rule fields as stored (for a new team's policy, copied from the default it starts from)."""
    namespace_modes = dict(policy.namespace_modes)
    values = {name: getattr(policy, name) for name in POLICY_FIELDS}
    values["namespace_modes"] = namespace_modes
    values["rule_ids"] = list(policy.rule_ids)
    return values


def modules_for_findings(*, ids: Sequence[int], known: Mapping[int, LearningFacts] | None = None) -> dict[int, dict[str, str]]:
    """Finding id -> the training module for its topic ({"title", "url"}), as nudges pick it.

    The findings' classes from ``known`` (what the decision read: ``ImageFindings.learning``), else one query;
    the catalogue itself comes from ``module_picker`` (read at most once a minute per process: it teaches and
    decides nothing, so no triage change can wait on it).
    """
    if not ids:
        return {}
    known = known or {}
    facts = {pk: known[pk] for pk in set(ids) if pk in known}
    missing = sorted(set(ids) - set(facts))
    if missing:
        rows = (
            Finding.objects.filter(pk__in=missing)
            .order_by()
            .values("id", *_CLASS_FIELDS, details_class=KT("details__class"), details_purl=KT("details__purl"))
        )
        facts.update({row["id"]: LearningFacts.from_values(_class_values(row)) for row in rows})
    keys = {pk: classes_for(value) for pk, value in facts.items()}
    if not any(keys.values()):
        return {}
    picker = module_picker()
    out = {}
    for finding_id, classes in keys.items():
        module = picker.module_for(classes)
        if module is not None:
            out[finding_id] = module
    return out


#: The classifier's columns but ``details``, of which it reads two keys (a finding's details can be large).
_CLASS_FIELDS = tuple(name for name in FACT_FIELDS if name != "details")


def _class_values(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "details": {"class": row["details_class"], "purl": row["details_purl"]}}
