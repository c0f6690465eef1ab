"""Vigil's data model, split by domain; import models from here."""

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
from dashboard.models.findings import DailySnapshot, Finding, FindingEvent, FindingOccurrence, LifecycleScope
from dashboard.models.images import Image, ImageVersion
from dashboard.models.reports import Report, ReportPayload
from dashboard.models.teams import Membership, Team
from dashboard.models.tokens import ApiToken
from dashboard.models.triage import Comment, EpssScore, HomeVisit, KevEntry, RiskAcceptance, TriageRule

__all__ = [
    "ACTIVE_STATUSES",
    "SEVERITY_ORDER",
    "ApiToken",
    "Comment",
    "DailySnapshot",
    "EpssScore",
    "Finding",
    "FindingEvent",
    "FindingOccurrence",
    "HomeVisit",
    "Image",
    "ImageVersion",
    "KevEntry",
    "Kind",
    "LifecycleScope",
    "Membership",
    "Report",
    "ReportPayload",
    "ReportStatus",
    "RiskAcceptance",
    "Role",
    "Severity",
    "Status",
    "Stream",
    "Team",
    "TokenScope",
    "TriageRule",
]
