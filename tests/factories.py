"""factory_boy factories for tests (never objects.create in tests)."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = models.Role.CHAMPION


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Image

    registry = "registry.example.com"
    repository = factory.Sequence(lambda n: f"team/app{n}")
    team = factory.SubFactory(TeamFactory)
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Finding

    fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    team = factory.SubFactory(TeamFactory)
    image = factory.SubFactory(ImageFactory, team=factory.SelfAttribute("..team"))
    kind = models.Kind.VULNERABILITY
    source = "trivy"
    stream = models.Stream.SCAN
    scope_key = factory.LazyAttribute(lambda f: f"scan|trivy|image:{f.image.name}")
    rule_id = factory.Sequence(lambda n: f"CVE-2024-{1000 + n}")
    title = "A vulnerability"
    severity = models.Severity.HIGH
    package_name = "openssl"
    package_version = "1.1.1"
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)
    status_changed_at = factory.LazyFunction(timezone.now)


# --- Ownership and access ---------------------------------------------------------


class OwnershipRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.OwnershipRule

    team = factory.SubFactory(TeamFactory)
    kind = models.OwnershipRule.Kind.IMAGE
    pattern = factory.Sequence(lambda n: f"registry.example.com/team{n}/*")
    priority = 0
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class ReportFactory(factory.django.DjangoModelFactory):
    """A report record (no payload): the report a finding came from, for ownership fallbacks."""

    class Meta:
        model = models.Report

    team = factory.SubFactory(TeamFactory)
    content_sha256 = factory.Sequence(lambda n: f"{n:064x}")
    status = models.ReportStatus.DONE
    observed_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)


class ReportPayloadFactory(factory.django.DjangoModelFactory):
    """The raw bytes of a report, as the API stores them."""

    class Meta:
        model = models.ReportPayload

    report = factory.SubFactory(ReportFactory)
    data = b"{}"


# --- Training nudges -----------------------------------------------------------------


class FindingEventFactory(factory.django.DjangoModelFactory):
    """A finding's history entry (a status change, reopened, fixed ...): what the nudge rules count.  Its creation
    is on the finding (``first_seen``, ``first_report``), not an event."""

    class Meta:
        model = models.FindingEvent

    finding = factory.SubFactory(FindingFactory)
    type = models.FindingEvent.Type.STATUS
    to_status = models.Status.OPEN
    created_at = factory.LazyFunction(timezone.now)


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Topic
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").capitalize())
    summary = "Why it matters, in one sentence."
    keys = factory.LazyAttribute(lambda t: [f"vigil:{t.slug}"])


class TrainingModuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TrainingModule
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"module-{n}")
    title = factory.Sequence(lambda n: f"Module {n}")
    url = factory.Sequence(lambda n: f"https://docs.example.org/module-{n}/")
    provider = "Example docs"
    format = models.TrainingModule.Format.DOCUMENTATION
    minutes = 15

    @factory.post_generation
    def topics(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            obj.topics.set(extracted)


class NudgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Nudge

    team = factory.SubFactory(TeamFactory)
    topic = factory.SubFactory(TopicFactory)
    module = factory.SubFactory(TrainingModuleFactory)
    rule = models.NudgeRule.REPEATED_CLASS
    state = models.NudgeState.NEW
    reason = "“Topic” came up 3 times in your team's reports in the last 14 days."
    findings_count = 3
    created_at = factory.LazyFunction(timezone.now)
    period = factory.LazyAttribute(lambda n: n.created_at.date() - dt.timedelta(days=n.created_at.weekday()))


class EventSightingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.EventSighting

    finding = factory.SubFactory(FindingFactory)
    team = factory.SelfAttribute("finding.team")
    report = factory.SubFactory(ReportFactory, team=factory.SelfAttribute("..finding.team"))
    seen_at = factory.LazyFunction(timezone.now)


class ImageVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ImageVersion

    image = factory.SubFactory(ImageFactory)
    tag = factory.Sequence(lambda n: f"1.{n}.0")
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class FindingOccurrenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FindingOccurrence

    finding = factory.SubFactory(FindingFactory)
    tag = "1.0.0"
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class TeamWebhookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TeamWebhook

    team = factory.SubFactory(TeamFactory)
    url = "http://127.0.0.1:9/hook"


# --- Triage -------------------------------------------------------------------------


class RiskAcceptanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.RiskAcceptance
        skip_postgeneration_save = True

    team = factory.SubFactory(TeamFactory)
    reason = "compensating control: the endpoint is not reachable from outside"
    requested_by = factory.SubFactory(UserFactory)
    approved_by = factory.SubFactory(UserFactory)
    state = models.RiskAcceptance.State.APPROVED
    expires = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=30))
    created_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def findings(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            obj.findings.add(*extracted)


class TriageRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TriageRule

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"rule {n}")
    action = models.TriageRule.Action.FALSE_POSITIVE
    reason = "test fixtures are not shipped"
    created_at = factory.LazyFunction(timezone.now)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Comment

    finding = factory.SubFactory(FindingFactory)
    author = factory.SubFactory(UserFactory)
    body = "Checked with the platform team."
    created_at = factory.LazyFunction(timezone.now)


class KevEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.KevEntry

    cve = factory.Sequence(lambda n: f"CVE-2021-{40000 + n}")
    date_added = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=10))
    due_date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=11))
    imported_at = factory.LazyFunction(timezone.now)


class EpssScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.EpssScore

    cve = factory.Sequence(lambda n: f"CVE-2022-{50000 + n}")
    epss = 0.5
    percentile = 0.9
    date = factory.LazyFunction(timezone.localdate)


# --- Enforcement policies -----------------------------------------------------------------------


class EnforcementPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.EnforcementPolicy

    team = factory.SubFactory(TeamFactory)
    updated_at = factory.LazyFunction(timezone.now)


# --- What runs (admission sightings) ----------------------------------------------------------


class WorkloadSightingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WorkloadSighting

    cluster = "prod"
    namespace = "payments"
    workload_kind = "Deployment"
    workload_name = factory.Sequence(lambda n: f"api{n}")
    image = factory.SubFactory(ImageFactory)
    tag = "1.0.0"
    source = models.WorkloadSighting.Source.ADMISSION
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class GateDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.GateDecision

    created_at = factory.LazyFunction(timezone.now)
    image_ref = factory.Sequence(lambda n: f"registry.example.com/team/app{n}:1.0")
    team = factory.SubFactory(TeamFactory)
    mode = models.PolicyMode.WARN
    decision = models.GateOutcome.WARN


# --- Notifications --------------------------------------------------------------------------------


class NotificationChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.NotificationChannel

    team = factory.SubFactory(TeamFactory)
    kind = models.NotificationChannel.Kind.WEBHOOK
    name = factory.Sequence(lambda n: f"chat {n}")
    url = "http://127.0.0.1:9/hooks/T000/B000/secretpart"
    events = factory.LazyFunction(lambda: list(models.TEAM_EVENTS))
    created_at = factory.LazyFunction(timezone.now)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Notification

    key = factory.Sequence(lambda n: f"new_critical:test:{n}")
    event = models.NotificationEvent.NEW_CRITICAL
    channel = factory.SubFactory(NotificationChannelFactory)
    team = factory.LazyAttribute(lambda o: o.channel.team if o.channel else None)
    subject = "Vigil: 1 new critical finding"
    text = "Why: a report brought a critical finding."
    link = "https://vigil.example.com/findings/"
    next_attempt_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)


# --- Tickets -----------------------------------------------------------------------------


class TrackerConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TrackerConfig

    team = factory.SubFactory(TeamFactory)
    kind = models.TrackerKind.GITHUB
    base_url = "https://api.github.com"
    project = "acme/payments"
    secret = "ghp_example-token-0000"
    webhook_secret = factory.Sequence(lambda n: f"webhook-secret-{n}")


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Ticket

    tracker = factory.SubFactory(TrackerConfigFactory)
    team = factory.SelfAttribute("tracker.team")
    subject = factory.Sequence(lambda n: f"finding:{n}")
    title = "A ticket"
    state = models.Ticket.State.OPEN
    external_id = factory.Sequence(lambda n: str(100 + n))
    created_at = factory.LazyFunction(timezone.now)


class TicketLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TicketLink

    ticket = factory.SubFactory(TicketFactory)
    finding = factory.SubFactory(FindingFactory, team=factory.SelfAttribute("..ticket.team"))
    tracker = factory.SelfAttribute("ticket.tracker")
