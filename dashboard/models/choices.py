"""Vocabularies shared by models, services and the API (PRODUCT.md)."""

from django.db import models


class Severity(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    UNKNOWN = "unknown"


#: Most to least severe, for ordering and charts.
SEVERITY_ORDER = ["critical", "high", "medium", "low", "info", "unknown"]
SEVERITY_RANK = {name: len(SEVERITY_ORDER) - index for index, name in enumerate(SEVERITY_ORDER)}


class Kind(models.TextChoices):
    VULNERABILITY = "vulnerability"
    MISCONFIGURATION = "misconfiguration"
    SECRET = "secret"  # noqa: S105 - a finding kind, not a password
    POLICY = "policy"
    RUNTIME = "runtime"
    COMPLIANCE = "compliance"


class Stream(models.TextChoices):
    SCAN = "scan"
    ADMISSION = "admission"
    RUNTIME = "runtime"


class Status(models.TextChoices):
    OPEN = "open"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    FIXED = "fixed"
    RISK_ACCEPTED = "risk_accepted"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"


#: Statuses in which a finding still needs work (counted as "open" on dashboards).
ACTIVE_STATUSES = (Status.OPEN, Status.TRIAGED, Status.IN_PROGRESS)


class Role(models.TextChoices):
    CHAMPION = "champion"
    MEMBER = "member"
    MANAGER = "manager"


class TokenScope(models.TextChoices):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"
    #: A cluster's admission webhook: asks for decisions on any image, and nothing else.
    ADMISSION = "admission"


class ReportStatus(models.TextChoices):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
