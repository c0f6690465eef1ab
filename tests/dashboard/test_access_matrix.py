"""Route-by-route isolation: every URL pattern and API route, tried as every kind of caller.

Every route the URL resolver knows must be classified in ROUTES below (the Django admin is
classified as a whole by its namespace).  A route nobody classified fails
``test_every_route_is_classified``: add it to ROUTES with the access class that describes it,
and, for routes that take an object, how to reach an object of the *other* team.

Callers: anonymous; a champion of team alpha; a manager of alpha without a grant for bravo;
alpha's tokens of each scope; a champion of bravo (the owner: proves the route really reaches
bravo's object, so a 404 above is isolation and not a broken URL); and a staff administrator.
Every object is bravo's.  Pages and answers seen by outsiders must not contain bravo's data
(``+LEAK``) and their requests must not change bravo's data (``+MUTATED``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from dashboard.models import (
    AuditEvent,
    EnforcementPolicy,
    Finding,
    FindingEvent,
    NotificationChannel,
    Nudge,
    OwnershipRule,
    Report,
    RiskAcceptance,
    Role,
    Status,
    Ticket,
    TicketLink,
    TrackerConfig,
    TriageRule,
)
from dashboard.services.audit import audit_record
from dashboard.services.tokens import token_create
from tests.factories import (
    FindingEventFactory,
    FindingFactory,
    ImageFactory,
    MembershipFactory,
    NotificationChannelFactory,
    NudgeFactory,
    OwnershipRuleFactory,
    ReportFactory,
    RiskAcceptanceFactory,
    TeamFactory,
    TicketFactory,
    TicketLinkFactory,
    TrackerConfigFactory,
    TriageRuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MARKER = "bravo-secret"
OUTSIDERS = ("anonymous", "champion", "manager", "token:ingest", "token:read", "token:admin")
PERSONAS = (*OUTSIDERS, "owner", "staff")

# --- what each access class answers to each caller ------------------------------------------------
# ok: any 2xx, a redirect other than to a login page, or a 400/409/422 about the input.
# login / admin-login: a redirect to the login page.  Other values are status codes.
PAGE_TOKENS = {"token:ingest": "login", "token:read": "login", "token:admin": "login"}
EXPECT: dict[str, dict[str, str]] = {
    # Anyone: the login page, the health check.
    "public": {persona: "ok" for persona in PERSONAS},
    # Logging out (POST) sends everyone to the login page.
    "logout": {persona: "login" for persona in PERSONAS},
    # A page of the caller's own data: lists, overviews, queues, exports.
    "page": {"anonymous": "login", "champion": "ok", "manager": "ok", **PAGE_TOKENS, "owner": "ok", "staff": "ok"},
    # A page or action on one of bravo's objects: 404 for whoever cannot read bravo.
    "object": {"anonymous": "login", "champion": "404", "manager": "404", **PAGE_TOKENS, "owner": "ok", "staff": "ok"},
    # An action about bravo's objects that does not name one in its URL (bulk, undo by batch): no effect.
    "action": {"anonymous": "login", "champion": "ok", "manager": "ok", **PAGE_TOKENS, "owner": "ok", "staff": "ok"},
    # Administrators only (ownership rules, the unowned queue): 403 for everyone else.
    "staff": {"anonymous": "login", "champion": "403", "manager": "403", **PAGE_TOKENS, "owner": "403", "staff": "ok"},
    # An administrators' action on bravo's object: 404 if you cannot read it, 403 if you can but are not an administrator.
    "staff-object": {"anonymous": "login", "champion": "404", "manager": "404", **PAGE_TOKENS, "owner": "403", "staff": "ok"},
    # Administrators and managers (the audit log, scoped to the manager's teams).
    "manager": {"anonymous": "login", "champion": "403", "manager": "ok", **PAGE_TOKENS, "owner": "403", "staff": "ok"},
    # The Django admin's logout (POST): staff are logged out to the login page; for anyone else there is nothing to do.
    "admin-logout": {**{persona: "ok" for persona in PERSONAS}, "staff": "login"},
    # The Django admin: staff only; everyone else is sent to its login page.
    "admin-site": {persona: "admin-login" for persona in (*OUTSIDERS, "owner")},
    # Single sign-on's start and callback: absent (404) for everyone while no provider is configured, as here;
    # configured, they are the public start of a login (tests/dashboard/test_sso_login.py).
    "sso-unconfigured": {persona: "404" for persona in PERSONAS},
    # API, list of what the caller may read (scope read).
    "api-read-list": {
        "anonymous": "401", "champion": "ok", "manager": "ok", "token:ingest": "403", "token:read": "ok", "token:admin": "ok",
        "owner": "ok", "staff": "ok",
    },
    # API, one of bravo's objects (scope read).
    "api-read-object": {
        "anonymous": "401", "champion": "404", "manager": "404", "token:ingest": "403", "token:read": "404", "token:admin": "404",
        "owner": "ok", "staff": "ok",
    },
    # API, one of bravo's reports (scope ingest).
    "api-ingest-object": {
        "anonymous": "401", "champion": "404", "manager": "404", "token:ingest": "404", "token:read": "403", "token:admin": "404",
        "owner": "ok", "staff": "ok",
    },
    # API, posting a report for bravo (team=bravo): tokens may only name teams they cover; people teams they may write to.
    "api-ingest-for-other-team": {
        "anonymous": "401", "champion": "404", "manager": "404", "token:ingest": "403", "token:read": "403", "token:admin": "403",
        "owner": "ok", "staff": "ok",
    },
    # API, changing one of bravo's objects (scope admin).
    "api-admin-object": {
        "anonymous": "401", "champion": "404", "manager": "404", "token:ingest": "403", "token:read": "403", "token:admin": "404",
        "owner": "ok", "staff": "ok",
    },
    # API, an admin action naming bravo's objects in its body: no effect.
    "api-admin-action": {
        "anonymous": "401", "champion": "ok", "manager": "ok", "token:ingest": "403", "token:read": "403", "token:admin": "ok",
        "owner": "ok", "staff": "ok",
    },
    # API, the admission webhook: an admission token only (people and other tokens: 403).
    "api-admission-token": {"anonymous": "401", **{persona: "403" for persona in PERSONAS if persona != "anonymous"}},
    # API, the CI gate: any token that ingests or reads, any person; it decides only on what the caller may read.
    "api-gate": {"anonymous": "401", **{persona: "ok" for persona in PERSONAS if persona != "anonymous"}},
    # API, a tracker's webhook: no login; a request without the tracker's signature is refused, whoever sends it.
    "api-webhook-unsigned": {persona: "403" for persona in PERSONAS},
    # API, the OpenAPI schema: anyone authenticated.
    "api-schema": {"anonymous": "401", **{persona: "ok" for persona in PERSONAS if persona != "anonymous"}},
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Probe:
    access: str
    method: str = "GET"
    #: URL kwargs from the world (bravo's objects); converters left out get a harmless sample value.
    kwargs: Callable[[Any], dict[str, Any]] = lambda w: {}
    query: Callable[[Any], str] = lambda w: ""
    data: Callable[[Any], Any] = lambda w: {}
    #: "form" (application/x-www-form-urlencoded) or "json".
    body: str = "form"


FINDING = lambda w: {"pk": w.finding.pk}  # noqa: E731
CHANNEL = lambda w: {"kind": "webhook", "name": "m", "url": "https://hooks.example.com/m", "events": ["new_critical"]}  # noqa: E731


def _last_channel(world: Any) -> int:
    return NotificationChannel.objects.filter(team=world.bravo).order_by("pk").values_list("pk", flat=True).last() or 0


ROUTES: dict[str, list[Probe]] = {
    "login": [Probe("public")],
    "logout": [Probe("logout", "POST")],
    "healthz": [Probe("public")],
    "oidc_authentication_init": [Probe("sso-unconfigured")],
    "oidc_authentication_callback": [Probe("sso-unconfigured", query=lambda w: "code=x&state=y")],
    "readyz": [Probe("public")],
    "metrics": [Probe("public")],
    "home": [Probe("page")],
    "overview": [Probe("page")],
    "team": [Probe("object", kwargs=lambda w: {"slug": "bravo"})],
    "team-settings": [Probe("object", kwargs=lambda w: {"slug": "bravo"}),
                      Probe("object", "POST", kwargs=lambda w: {"slug": "bravo"}, data=lambda w: {"sla_critical": "5"})],
    "image": [Probe("object", kwargs=lambda w: {"pk": w.image.pk})],
    "findings": [Probe("page"), Probe("page", query=lambda w: "?team=bravo&status=")],
    "findings-export": [Probe("page", query=lambda w: "?status=")],
    "findings-bulk": [Probe("action", "POST", data=lambda w: {"ids": [w.finding.pk], "action": "status", "status": "false_positive",
                                                               "reason": "matrix"})],
    "findings-bulk-undo": [Probe("action", "POST", kwargs=lambda w: {"batch": w.batch})],
    "finding": [Probe("object", kwargs=FINDING)],
    "finding-update": [Probe("object", "POST", kwargs=FINDING, data=lambda w: {"status": "false_positive", "reason": "matrix"})],
    "finding-ticket": [Probe("object", "POST", kwargs=FINDING, data=lambda w: {"scope": "finding"})],
    "findings-ticket": [Probe("action", "POST", data=lambda w: {"ids": [w.finding.pk]})],
    "team-tracker": [Probe("object", "POST", kwargs=lambda w: {"slug": "bravo"},
                           data=lambda w: {"kind": "gitlab", "base_url": "https://gitlab.example.com", "project": "1", "secret": "x"})],
    "finding-accept-scope": [Probe("object", "POST", kwargs=FINDING, data=lambda w: {"reason": "matrix", "expires": "2099-01-01"})],
    "finding-event-undo": [Probe("object", "POST", kwargs=lambda w: {"pk": w.finding.pk, "event_pk": w.event.pk})],
    "acceptances": [Probe("page")],
    "acceptance-approve": [Probe("object", "POST", kwargs=lambda w: {"pk": w.pending.pk})],
    "acceptance-reject": [Probe("object", "POST", kwargs=lambda w: {"pk": w.pending.pk})],
    "triage-rules": [Probe("page"), Probe("action", "POST", data=lambda w: {"team": "bravo", "name": "matrix", "action": "false_positive",
                                                                             "match_rule_id": "CVE-*", "reason": "matrix"})],
    "triage-rule-enable": [Probe("object", "POST", kwargs=lambda w: {"pk": w.triage_rule.pk})],
    "triage-rule-disable": [Probe("object", "POST", kwargs=lambda w: {"pk": w.triage_rule.pk})],
    "triage-rule-apply": [Probe("object", "POST", kwargs=lambda w: {"pk": w.triage_rule.pk})],
    "reports": [Probe("page")],
    "report": [Probe("object", kwargs=lambda w: {"pk": w.report.pk})],
    "report-confirm": [Probe("object", "POST", kwargs=lambda w: {"pk": w.report.pk})],
    "nudges": [Probe("page")],
    "nudge-impact": [Probe("page")],
    "nudge": [Probe("object", kwargs=lambda w: {"pk": w.nudge.pk})],
    "nudge-action": [Probe("object", "POST", kwargs=lambda w: {"pk": w.nudge.pk, "action": "dismiss"}, data=lambda w: {"reason": "m"})],
    "ownership": [Probe("page")],
    "ownership-rule-new": [Probe("staff", "POST", data=lambda w: {"kind": "image", "pattern": "registry.example.com/bravo-secret/**",
                                                                   "team": "alpha", "priority": "0"})],
    "ownership-rule": [Probe("staff-object", kwargs=lambda w: {"pk": w.rule.pk})],
    "ownership-rule-delete": [Probe("staff-object", "POST", kwargs=lambda w: {"pk": w.rule.pk})],
    "ownership-unowned": [Probe("staff")],
    "ownership-finding": [Probe("object", kwargs=FINDING)],
    "ownership-finding-set": [Probe("staff-object", "POST", kwargs=FINDING, data=lambda w: {"team": "alpha"})],
    "ownership-image": [Probe("object", kwargs=lambda w: {"pk": w.image.pk})],
    "audit": [Probe("manager")],
    "base-images": [Probe("page")],
    "base-images-export": [Probe("page")],
    "champion-load": [Probe("page")],
    "champion-load-export": [Probe("page")],
    "posture": [Probe("page"), Probe("object", query=lambda w: "?team=bravo")],
    "posture-teams": [Probe("page"), Probe("object", query=lambda w: "?team=bravo")],
    "posture-shift-left": [Probe("page"), Probe("object", query=lambda w: "?team=bravo")],
    "posture-export": [Probe("page", query=lambda w: "?series=teams"), Probe("object", query=lambda w: "?series=open&team=bravo")],
    "api:report-create": [Probe("api-ingest-for-other-team", "POST", query=lambda w: "?team=bravo&image=registry.example.com/bravo/x:1",
                                data=lambda w: {"SchemaVersion": 2, "ArtifactName": "x", "ArtifactType": "container_image",
                                                "Results": []}, body="json")],
    "api:report-detail": [Probe("api-ingest-object", kwargs=lambda w: {"pk": w.report.pk})],
    "api:finding-list": [Probe("api-read-list"), Probe("api-read-list", query=lambda w: "?team=bravo")],
    "api:finding-bulk": [Probe("api-admin-action", "POST", data=lambda w: {"ids": [w.finding.pk], "action": "status",
                                                                            "status": "false_positive", "reason": "matrix"}, body="json")],
    "api:finding-export": [Probe("api-read-list")],
    "api:finding-detail": [
        Probe("api-read-object", kwargs=FINDING),
        Probe("api-admin-object", "PATCH", kwargs=FINDING, data=lambda w: {"status": "false_positive", "reason": "m"}, body="json"),
    ],
    "api:nudge-list": [Probe("api-read-list")],
    "api:base-image-list": [Probe("api-read-list")],
    "api:posture": [Probe("api-read-list"), Probe("api-read-object", query=lambda w: "?team=bravo")],
    "api:posture-teams": [Probe("api-read-list")],
    "api:gate": [Probe("api-gate", query=lambda w: "?image=registry.example.com/alpha/app:1")],
    "api:policy": [
        Probe("api-read-object", kwargs=lambda w: {"team": "bravo"}),
        Probe("api-admin-object", "PUT", kwargs=lambda w: {"team": "bravo"}, data=lambda w: {"mode": "audit"}, body="json"),
    ],
    "policies": [Probe("page")],
    "policy-default": [Probe("page"), Probe("staff", "POST", data=lambda w: {"mode": "audit", "unknown_image": "warn"})],
    "policy": [Probe("object", kwargs=lambda w: {"slug": "bravo"}),
               Probe("object", "POST", kwargs=lambda w: {"slug": "bravo"}, data=lambda w: {"mode": "audit", "unknown_image": "warn"})],
    "api:schema": [Probe("api-schema")],
    "toxic": [Probe("page")],
    "api:toxic-list": [Probe("api-read-list")],
    "team-notification-add": [Probe("object", "POST", kwargs=lambda w: {"slug": "bravo"},
                                    data=CHANNEL)],
    "team-notification-change": [Probe("object", "POST", kwargs=lambda w: {"slug": "bravo", "pk": w.channel.pk},
                                       data=lambda w: {"events": "new_critical"})],
    "api:notification-channels": [
        Probe("api-read-object", kwargs=lambda w: {"team": "bravo"}),
        Probe("api-admin-object", "POST", kwargs=lambda w: {"team": "bravo"},
              data=CHANNEL, body="json"),
    ],
    "api:notification-channel": [
        Probe("api-admin-object", "PATCH", kwargs=lambda w: {"team": "bravo", "pk": w.channel.pk}, data=lambda w: {"active": False},
              body="json"),
        # The owner deletes one of bravo's channels, then staff the other.
        Probe("api-admin-object", "DELETE", kwargs=lambda w: {"team": "bravo", "pk": _last_channel(w)}, body="json"),
    ],
    "api:ticket-create": [Probe("api-admin-object", "POST", data=lambda w: {"findings": [w.finding.pk]}, body="json"),
                          Probe("api-admin-object", "POST", data=lambda w: {"fix_group": w.finding.pk}, body="json")],
    "api:tracker-webhook": [Probe("api-webhook-unsigned", "POST", kwargs=lambda w: {"team": "bravo", "kind": "github"},
                                  data=lambda w: {"action": "closed", "issue": {"number": 42}}, body="json")],
    "api:admission-validate": [Probe("api-admission-token", "POST", data=lambda w: {"kind": "AdmissionReview"}, body="json")],
    # The Django admin's own login and logout pages (the rest of the admin is classified by its namespace).
    "admin:login": [Probe("public")],
    "admin:logout": [Probe("admin-logout", "POST")],
}  # fmt: skip
#: Whole URL namespaces classified at once.
NAMESPACES = {"admin": Probe("admin-site")}


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            found.append((f"{namespace}{pattern.name or ''}", prefix + str(pattern.pattern)))
    return found


ALL_ROUTES = _walk(get_resolver().url_patterns)
CASES = [
    pytest.param(name, pattern, index, id=f"{name}-{index}")
    for name, pattern in ALL_ROUTES
    if name in ROUTES or name.split(":")[0] not in NAMESPACES
    for index, _ in enumerate(ROUTES.get(name) or [Probe("unclassified")])
]
#: Routes classified by their namespace (the Django admin), tried in one test.
NAMESPACE_ROUTES = [(name, pattern) for name, pattern in ALL_ROUTES if name not in ROUTES and name.split(":")[0] in NAMESPACES]
_SAMPLES = {"int": "1", "uuid": str(uuid.UUID(int=1)), "slug": "x", "str": "x", "path": "x"}


def test_every_route_is_classified() -> None:
    names = {name for name, _ in ALL_ROUTES}
    unclassified = sorted(name for name in names if name not in ROUTES and name.split(":")[0] not in NAMESPACES)
    stale = sorted(set(ROUTES) - names)

    assert unclassified == [], "classify these routes in ROUTES (tests/dashboard/test_access_matrix.py)"
    assert stale == [], "these classified routes no longer exist"
    assert len(names & set(ROUTES)) == len([name for name, _ in ALL_ROUTES if name in ROUTES]), "classified routes need unique names"


@dataclasses.dataclass
class World:
    alpha: Any
    bravo: Any
    image: Any
    finding: Any
    event: Any
    batch: uuid.UUID
    report: Any
    pending: Any
    triage_rule: Any
    nudge: Any
    rule: Any
    channel: Any
    clients: dict[str, Client]


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def outsider_clients(alpha: Any) -> dict[str, Client]:
    """Anonymous, alpha's champion and manager (a grant for alpha only), alpha's tokens of each scope."""
    clients = {"anonymous": Client()}
    for persona, role in (("champion", Role.CHAMPION), ("manager", Role.MANAGER)):
        clients[persona] = Client()
        clients[persona].force_login(MembershipFactory(team=alpha, role=role, can_triage=role == Role.MANAGER).user)
    for scope in ("ingest", "read", "admin"):
        _, plaintext = token_create(team=alpha, name=f"alpha {scope}", scope=scope)
        clients[f"token:{scope}"] = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return clients


@pytest.fixture
def world() -> World:
    alpha = TeamFactory(slug="alpha", name="Alpha")
    bravo = TeamFactory(slug="bravo", name="Bravo-Secret Team")
    image = ImageFactory(team=bravo, repository="bravo-secret/app")
    finding = FindingFactory(team=bravo, image=image, rule_id="CVE-BRAVO-SECRET", title="bravo-secret finding", status=Status.TRIAGED)
    FindingFactory(team=alpha)
    batch = uuid.uuid4()
    event = FindingEventFactory(
        finding=finding, type=FindingEvent.Type.STATUS, from_status=Status.OPEN, to_status=Status.TRIAGED, batch=batch
    )
    report = ReportFactory(team=bravo, image_ref="registry.example.com/bravo-secret/app:1", held_closures=[finding.pk])
    pending = RiskAcceptanceFactory(
        team=bravo, state=RiskAcceptance.State.PENDING, approved_by=None, findings=[finding], reason="bravo-secret reason"
    )
    # Bravo's tracker (never called: tasks run after the commit, which tests do not reach) and a ticket its webhook could close.
    tracker = TrackerConfigFactory(team=bravo, base_url="http://127.0.0.1:9", project="bravo-secret/app", webhook_secret="bravo-hook")
    TicketLinkFactory(
        ticket=TicketFactory(tracker=tracker, external_id="42", title="bravo-secret ticket"),
        finding=FindingFactory(team=bravo, image=image, status=Status.IN_PROGRESS),
    )
    audit_record(action=AuditEvent.Action.STATUS_CHANGED, team=bravo, summary="bravo-secret audit record")
    audit_record(action=AuditEvent.Action.STATUS_CHANGED, team=alpha, summary="alpha audit record")
    clients = outsider_clients(alpha)
    clients["owner"], clients["staff"] = Client(), Client()
    clients["owner"].force_login(MembershipFactory(team=bravo, role=Role.CHAMPION).user)
    clients["staff"].force_login(UserFactory(is_staff=True, is_superuser=True))
    return World(
        alpha=alpha,
        bravo=bravo,
        image=image,
        finding=finding,
        event=event,
        batch=batch,
        report=report,
        pending=pending,
        triage_rule=TriageRuleFactory(team=bravo, name="bravo-secret rule", enabled=False),
        nudge=NudgeFactory(team=bravo, reason="bravo-secret nudge"),
        rule=OwnershipRuleFactory(team=bravo, kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/bravo-secret/*"),
        channel=NotificationChannelFactory.create_batch(
            2, team=bravo, name="bravo-secret chat", url="https://hooks.example.com/bravo-secret/T0/x"
        )[0],
        clients=clients,
    )


def bravo_state(world: World) -> list[Any]:
    """Everything an outsider's request must not change."""
    return [
        list(Finding.objects.filter(team=world.bravo).values_list("pk", "status", "team_id", "severity", "assignee_id", "owner_source")),
        list(FindingEvent.objects.filter(finding__team=world.bravo).values_list("pk", "type")),
        list(RiskAcceptance.objects.filter(team=world.bravo).values_list("pk", "state")),
        list(TriageRule.objects.filter(team=world.bravo).values_list("pk", "enabled")),
        list(Nudge.objects.filter(team=world.bravo).values_list("pk", "state")),
        list(OwnershipRule.objects.values_list("pk", "pattern", "team_id")),
        list(Report.objects.filter(team=world.bravo).values_list("pk", "held_closures")),
        list(EnforcementPolicy.objects.filter(team=world.bravo).values_list("pk", "mode", "version")),
        list(NotificationChannel.objects.filter(team=world.bravo).values_list("pk", "active", "events", "url")),
        list(Ticket.objects.filter(team=world.bravo).values_list("pk", "state")),
        list(TicketLink.objects.filter(finding__team=world.bravo).values_list("pk", "ticket_id")),
        list(TrackerConfig.objects.filter(team=world.bravo).values_list("pk", "kind", "base_url", "project", "secret")),
    ]


def url_for(pattern: str, probe: Probe, world: World) -> str:
    values = {key: str(value) for key, value in probe.kwargs(world).items()}
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: values.get(m.group(2), _SAMPLES[m.group(1) or "str"]), pattern)
    return "/" + path + probe.query(world)


def outcome(response: Any, *, check_leak: bool) -> str:
    status = response.status_code
    location = response.get("Location", "")
    if status in (301, 302) and location.startswith("/admin/login/"):
        result = "admin-login"
    elif status in (301, 302) and location.startswith("/login/"):
        result = "login"
    elif status < 400 or status in (400, 409, 422):
        result = "ok"
    else:
        result = str(status)
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    if check_leak and MARKER in content.decode("utf-8", "replace").lower():
        result += "+LEAK"
    return result


def answer(world: World, pattern: str, probe: Probe, persona: str) -> str:
    """What the route answers this caller, with +LEAK / +MUTATED when an outsider saw or changed bravo's data."""
    before = bravo_state(world)
    body = json.dumps(probe.data(world)) if probe.body == "json" else urlencode(probe.data(world), doseq=True)
    content_type = "application/json" if probe.body == "json" else "application/x-www-form-urlencoded"
    response = world.clients[persona].generic(probe.method, url_for(pattern, probe, world), body, content_type=content_type)
    got = outcome(response, check_leak=persona in OUTSIDERS)
    return got + ("+MUTATED" if persona in OUTSIDERS and bravo_state(world) != before else "")


@pytest.mark.parametrize(("name", "pattern", "index"), CASES)
def test_route_answers_each_caller_as_classified(name: str, pattern: str, index: int, world: World) -> None:
    probe = (ROUTES.get(name) or [Probe("unclassified")])[index]
    expected = EXPECT[probe.access]

    answers = {persona: answer(world, pattern, probe, persona) for persona in expected}

    assert answers == expected


def test_the_django_admin_is_for_staff_only() -> None:
    clients = outsider_clients(TeamFactory(slug="alpha"))
    clients["owner"] = clients["champion"]
    probes = {pattern: NAMESPACES[name.split(":")[0]] for name, pattern in NAMESPACE_ROUTES}

    answers = {
        pattern: {
            persona: outcome(clients[persona].get(url_for(pattern, probe, None)), check_leak=False) for persona in EXPECT[probe.access]
        }
        for pattern, probe in probes.items()
    }

    assert answers == {pattern: EXPECT[probe.access] for pattern, probe in probes.items()}
    assert len(answers) > 50


# --- insiders without the right to write -----------------------------------------------------------------------
# Bravo's read-only member (a manager membership without the triage grant: the only read-only membership there
# is) and a manager with the triage grant on alpha who only reads bravo.  Both read bravo's objects, so a route
# answers them as it answers a refusal, not 404: 403 from the API and administrators' routes; pages send them back
# with the refusal as a message ("ok").  What matters is that no write route changes bravo's data (``+MUTATED``).
READERS = ("reader", "grantless")
READER_EXPECT: dict[str, str] = {
    "object": "ok",
    "action": "ok",
    "staff": "403",
    "staff-object": "403",
    "api-ingest-for-other-team": "404",  # a team a person may not write to answers like one that does not exist
    "api-admin-object": "403",
    "api-admin-action": "ok",
    "api-admission-token": "403",  # only a cluster's admission token may ask; a person never
    "api-webhook-unsigned": "403",
}
WRITE_CASES = [
    pytest.param(name, pattern, index, id=f"{name}-{index}")
    for name, pattern in ALL_ROUTES
    for index, probe in enumerate(ROUTES.get(name) or [])
    if probe.method != "GET" and probe.access in READER_EXPECT
]


def reader_clients(world: World) -> dict[str, Client]:
    reader, grantless = Client(), Client()
    reader.force_login(MembershipFactory(team=world.bravo, role=Role.MANAGER, can_triage=False).user)
    manager = MembershipFactory(team=world.alpha, role=Role.MANAGER, can_triage=True).user
    MembershipFactory(team=world.bravo, user=manager, role=Role.MANAGER, can_triage=False)
    grantless.force_login(manager)
    return {"reader": reader, "grantless": grantless}


def test_every_write_route_is_tried_by_the_readers() -> None:
    writes = {name for name, probes in ROUTES.items() for probe in probes if probe.method != "GET"}
    tried = {param.values[0] for param in WRITE_CASES}

    assert writes - tried == {"logout", "admin:logout"}


@pytest.mark.parametrize(("name", "pattern", "index"), WRITE_CASES)
def test_a_write_route_refuses_bravos_readers(name: str, pattern: str, index: int, world: World) -> None:
    probe = ROUTES[name][index]
    world.clients.update(reader_clients(world))

    answers = {persona: _reader_answer(world, pattern, probe, persona) for persona in READERS}

    # A plain refusal (403/404) is as good as the usual answer of that kind of route, as long as nothing changed.
    assert set(answers.values()) <= {READER_EXPECT[probe.access], "403", "404"}, answers


def _reader_answer(world: World, pattern: str, probe: Probe, persona: str) -> str:
    before = bravo_state(world)
    body = json.dumps(probe.data(world)) if probe.body == "json" else urlencode(probe.data(world), doseq=True)
    content_type = "application/json" if probe.body == "json" else "application/x-www-form-urlencoded"
    response = world.clients[persona].generic(probe.method, url_for(pattern, probe, world), body, content_type=content_type)
    return outcome(response, check_leak=False) + ("+MUTATED" if bravo_state(world) != before else "")
