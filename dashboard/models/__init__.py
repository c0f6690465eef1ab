"""Vigil's data model, split by domain; import models from here."""

from dashboard.models.audit import AuditEvent, AuditLogIsAppendOnly
from dashboard.models.choices import (
    ACTIVE_STATUSES,
    SEVERITY_ORDER,
    Kind,
    ReportStatus,
    Role,
    Severity,
    Status,
    Stream,
    TokenScope,
)
from dashboard.models.findings import Finding, FindingEvent, FindingOccurrence, LifecycleScope
from dashboard.models.images import BaseLayerCount, Image, ImageVersion
from dashboard.models.notifications import TEAM_EVENTS, Notification, NotificationChannel, NotificationCursor, NotificationEvent
from dashboard.models.nudges import ACTIVE_NUDGE_STATES, EventSighting, Nudge, NudgeDigest, NudgeRule, NudgeState, TeamWebhook
from dashboard.models.ownership import OwnershipRule, OwnerSource
from dashboard.models.policies import (
    POLICY_FIELDS,
    DecisionChange,
    EnforcementPolicy,
    EnforcementPolicyVersion,
    GateDecision,
    GateOutcome,
    PolicyMode,
)
from dashboard.models.posture import SNAPSHOT_SEVERITIES, ActiveFindingDelta, DailySnapshot, FirstSeenCount
from dashboard.models.reports import AdmissionRepeat, Report, ReportPayload
from dashboard.models.running import WorkloadSighting
from dashboard.models.sso import SsoIdentity
from dashboard.models.teams import Membership, Team
from dashboard.models.tickets import Ticket, TicketLink, TrackerConfig, TrackerKind
from dashboard.models.tokens import ApiToken, SignedRequest, TokenAddress
from dashboard.models.training import Topic, TrainingModule
from dashboard.models.triage import Comment, EpssScore, HomeVisit, KevEntry, RiskAcceptance, TriageRule

__all__ = [
    "ACTIVE_NUDGE_STATES",
    "ACTIVE_STATUSES",
    "POLICY_FIELDS",
    "SEVERITY_ORDER",
    "SNAPSHOT_SEVERITIES",
    "TEAM_EVENTS",
    "ActiveFindingDelta",
    "AdmissionRepeat",
    "ApiToken",
    "AuditEvent",
    "AuditLogIsAppendOnly",
    "BaseLayerCount",
    "Comment",
    "DailySnapshot",
    "DecisionChange",
    "EnforcementPolicy",
    "EnforcementPolicyVersion",
    "EpssScore",
    "EventSighting",
    "Finding",
    "FindingEvent",
    "FindingOccurrence",
    "FirstSeenCount",
    "GateDecision",
    "GateOutcome",
    "HomeVisit",
    "Image",
    "ImageVersion",
    "KevEntry",
    "Kind",
    "LifecycleScope",
    "Membership",
    "Notification",
    "NotificationChannel",
    "NotificationCursor",
    "NotificationEvent",
    "Nudge",
    "NudgeDigest",
    "NudgeRule",
    "NudgeState",
    "OwnerSource",
    "OwnershipRule",
    "PolicyMode",
    "Report",
    "ReportPayload",
    "ReportStatus",
    "RiskAcceptance",
    "Role",
    "Severity",
    "SignedRequest",
    "SsoIdentity",
    "Status",
    "Stream",
    "Team",
    "TeamWebhook",
    "Ticket",
    "TicketLink",
    "TokenAddress",
    "TokenScope",
    "Topic",
    "TrackerConfig",
    "TrackerKind",
    "TrainingModule",
    "TriageRule",
    "WorkloadSighting",
]
