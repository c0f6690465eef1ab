"""Vigil settings, configured by environment variables (see README "Configuration").

With nothing set, Vigil runs on an embedded default: SQLite under var/ and
Celery tasks run in-process, so `make run` needs no services.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
import plotly

from dashboard.log_context import logging_config
from dashboard.services.sso_rules import parse_rules

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VIGIL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("VIGIL_DEBUG", False)
SECRET_KEY = os.environ.get("VIGIL_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("VIGIL_PRODUCTION", False):
        raise RuntimeError("VIGIL_SECRET_KEY must be set in production")
    SECRET_KEY = "vigil-insecure-development-key-do-not-use-in-production"  # noqa: S105
#: Keys API token hashes; rotate SECRET_KEY without invalidating tokens by pinning this.
TOKEN_HASH_KEY = os.environ.get("VIGIL_TOKEN_HASH_KEY", SECRET_KEY)

ALLOWED_HOSTS = env_list("VIGIL_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("VIGIL_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "dashboard",
]

MIDDLEWARE = [
    # Before anything that may log or refuse: every line of the request carries its id, every answer echoes it.
    "dashboard.log_context.RequestIdMiddleware",
    # First: NUL and over-long parameters, credentials in the query, bodies shorter than their Content-Length.
    "dashboard.request_checks.RequestChecksMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: login throttling.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vigil.urls"
WSGI_APPLICATION = "vigil.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'vigil.sqlite3'}",
        conn_max_age=int(os.environ.get("VIGIL_DB_CONN_MAX_AGE", "60")),
        # A reused connection is checked before each request/task uses it: after a PostgreSQL
        # restart the first request on a stale connection would otherwise fail with a 500
        # (fault drill tests/integration/test_fault_drills.py).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# plotly.js is served from our own static files: the copy that ships inside the plotly package.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dashboard.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "dashboard.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    # `?format=` names the report format in this API, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vigil API",
    "DESCRIPTION": "Container-security findings for DevSecOps security champions. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FindingStatusEnum": "dashboard.models.choices.Status",
        "ReportStatusEnum": "dashboard.models.choices.ReportStatus",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "dashboard.api.schema.add_error_responses"],
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
#: Without a broker, tasks run in-process (the embedded default for `make run`).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connections before and after every task unless this is set; then
# only every this many tasks.  Between those, connections are recycled as for requests (vigil/celery.py).
CELERY_DB_REUSE_MAX = 1000
# Queues: scan reports, event reports (Falco alerts, admission reviews) and maintenance (beat's periodic tasks, ownership
# re-assignment) each have their own, consumed by a worker each, so a long scan never delays alerts.  Every task not
# routed here goes to the default queue, maintenance.  VIGIL_CELERY_QUEUE puts every task on that one queue (one worker
# for everything, as tests and drills run); VIGIL_CELERY_QUEUE_PREFIX prefixes the three names (a private set per run).
_ONE_QUEUE = os.environ.get("VIGIL_CELERY_QUEUE", "")
VIGIL_QUEUES = {name: _ONE_QUEUE or os.environ.get("VIGIL_CELERY_QUEUE_PREFIX", "") + name for name in ("reports", "events", "maintenance")}
CELERY_TASK_DEFAULT_QUEUE = VIGIL_QUEUES["maintenance"]
#: Beat touches its heartbeat file on every tick (vigil/liveness.py).
CELERY_BEAT_SCHEDULER = "vigil.celery:HeartbeatScheduler"
CELERY_TASK_ROUTES = {
    "vigil.reports.process": {"queue": VIGIL_QUEUES["reports"]},
    "vigil.events.process": {"queue": VIGIL_QUEUES["events"]},
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must never hang a request: fail fast and let the sweeper re-enqueue.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 1}
# The one reconnect retry is immediate: kombu's default sleeps 2 s first, which held every request
# 2 s while Redis was down (fault drill 2).  The worker's own reconnect loop has its own backoff.
CELERY_BROKER_TRANSPORT_OPTIONS["interval_start"] = 0
CELERY_TASK_PUBLISH_RETRY = False

# --- Vigil ------------------------------------------------------------------
#: Largest accepted report body (after gzip decompression), in bytes.
#: Longest query parameter (name or value) any page or API accepts; longer answers 400.
VIGIL_MAX_PARAM_CHARS = int(os.environ.get("VIGIL_MAX_PARAM_CHARS", "2000"))
VIGIL_MAX_REPORT_BYTES = int(os.environ.get("VIGIL_MAX_REPORT_BYTES", str(100 * 1024 * 1024)))
#: Reports up to this size (bytes, after gzip) are parsed in full before the API answers, so a broken one gets a 422
#: at once; larger ones get the cheap checks only (the document loads, the format is recognised) and a report that
#: fails the full parse in the worker ends as failed with the parser's message.
VIGIL_VALIDATE_SYNC_BYTES = int(os.environ.get("VIGIL_VALIDATE_SYNC_BYTES", str(2 * 1024 * 1024)))
#: Largest accepted decompression ratio for gzip bodies.
VIGIL_MAX_GZIP_RATIO = int(os.environ.get("VIGIL_MAX_GZIP_RATIO", "200"))
#: A report ends as failed after this many processing attempts.
VIGIL_MAX_ATTEMPTS = 3
#: Reports queued or processing for longer than this are re-enqueued by the sweeper.
VIGIL_STUCK_AFTER_SECONDS = int(os.environ.get("VIGIL_STUCK_AFTER_SECONDS", "600"))
#: Default SLA days per severity (overridable per team).
VIGIL_SLA_DAYS = {"critical": 7, "high": 30, "medium": 90, "low": 180}
#: The same bytes posted again (same team, format, image, stream) within this window return the first report.
VIGIL_DEDUPLICATE_SECONDS = int(os.environ.get("VIGIL_DEDUPLICATE_SECONDS", "86400"))
#: Admission denials and runtime alerts resolve after this many quiet days.
VIGIL_EVENT_QUIET_DAYS = int(os.environ.get("VIGIL_EVENT_QUIET_DAYS", "14"))
#: An image version counts as running while a sighting of it (admission, trivy-operator, Falco) is this recent.
VIGIL_RUNNING_DAYS = int(os.environ.get("VIGIL_RUNNING_DAYS", "3"))
#: Toxic combinations: EPSS from which a vulnerability counts as likely exploited, and how recent a runtime alert counts.
VIGIL_TOXIC_EPSS = float(os.environ.get("VIGIL_TOXIC_EPSS", "0.1"))
VIGIL_TOXIC_ALERT_DAYS = int(os.environ.get("VIGIL_TOXIC_ALERT_DAYS", "7"))
VIGIL_TOKEN_DAYS = int(os.environ.get("VIGIL_TOKEN_DAYS", "365"))
#: Decisions kept per process for at most this long while nothing they read changed (PostgreSQL: 0 turns it off).
#: Bounds how late a new training module shows up in a warning; a triage or policy change counts at once.
VIGIL_DECISION_MEMO_SECONDS = int(os.environ.get("VIGIL_DECISION_MEMO_SECONDS", "60"))

# --- Triage -------------------------------------------------------------
#: Risk acceptances: default and longest lifetime in days.
VIGIL_RISK_ACCEPTANCE_DAYS = int(os.environ.get("VIGIL_RISK_ACCEPTANCE_DAYS", "90"))
VIGIL_RISK_ACCEPTANCE_MAX_DAYS = int(os.environ.get("VIGIL_RISK_ACCEPTANCE_MAX_DAYS", "365"))
#: When a finding reopens (found again after a fix, or its risk acceptance expired): restart its SLA clock.
VIGIL_SLA_RESTART_ON_REOPEN = env_bool("VIGIL_SLA_RESTART_ON_REOPEN", True)
#: Largest "everything matching this filter" bulk action, in findings.
VIGIL_BULK_MAX = int(os.environ.get("VIGIL_BULK_MAX", "20000"))
#: Optional daily download of the CISA KEV JSON and FIRST EPSS CSV (off unless a URL is set).
VIGIL_KEV_URL = os.environ.get("VIGIL_KEV_URL", "")
VIGIL_EPSS_URL = os.environ.get("VIGIL_EPSS_URL", "")

# --- Training nudges -------------------------------------------------------
#: Overrides of the nudge rules' defaults (dashboard/services/nudge_rules.py NudgeConfig); any key may be left out.
VIGIL_NUDGES: dict[str, object] = {
    "per_week": int(os.environ.get("VIGIL_NUDGES_PER_WEEK", "2")),
    "cooldown_days": int(os.environ.get("VIGIL_NUDGE_COOLDOWN_DAYS", "28")),
    "busy_hours": int(os.environ.get("VIGIL_NUDGE_BUSY_HOURS", "24")),
    #: "22-7": no nudges are made from 22:00 to 07:00 (TIME_ZONE); empty for none.
    "quiet_hours": os.environ.get("VIGIL_NUDGE_QUIET_HOURS", ""),
}
#: Links in digests point here.
VIGIL_BASE_URL = os.environ.get("VIGIL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
EMAIL_BACKEND = os.environ.get("VIGIL_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("VIGIL_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("VIGIL_EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("VIGIL_FROM_EMAIL", "vigil@localhost")
# Notifications (dashboard/services/notifications.py): scanned and delivered every minute on the maintenance queue
# (the beat block at the end).
#: Namespaces that count as production for admission-denial notifications (shell patterns, comma-separated), besides
#: those a team's policy enforces.
VIGIL_PRODUCTION_NAMESPACES = env_list("VIGIL_PRODUCTION_NAMESPACES", "*prod*")
#: At most this many messages per channel per hour; the rest wait (they are already grouped per report and day).
VIGIL_NOTIFY_MAX_PER_HOUR = int(os.environ.get("VIGIL_NOTIFY_MAX_PER_HOUR", "20"))
#: A notification the receiver keeps refusing is given up after this many attempts (backoff 1, 2, 4 ... minutes).
VIGIL_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("VIGIL_NOTIFY_MAX_ATTEMPTS", "8"))

#: json (one object a line, with the request, report or task id: for a log pipeline) or text (for a terminal); json by
#: default in production (VIGIL_PRODUCTION=1), text otherwise and with `make run`.
VIGIL_LOG_FORMAT = os.environ.get("VIGIL_LOG_FORMAT", "json" if env_bool("VIGIL_PRODUCTION", False) else "text").strip().lower()
if VIGIL_LOG_FORMAT not in ("json", "text"):
    raise RuntimeError("VIGIL_LOG_FORMAT must be json or text")
LOGGING = logging_config(log_format=VIGIL_LOG_FORMAT, level=os.environ.get("VIGIL_LOG_LEVEL", "INFO"))

# --- Operations: probes and metrics ------------------------------------------------
VIGIL_PRODUCTION = env_bool("VIGIL_PRODUCTION", False)
#: /metrics answers only a scraper sending `Authorization: Bearer <this>`; unset, it is open (in production: refused).
VIGIL_METRICS_TOKEN = os.environ.get("VIGIL_METRICS_TOKEN", "")
#: A Celery worker serves its pod's metrics on this port (0: it does not); see vigil/celery.py.
VIGIL_WORKER_METRICS_PORT = int(os.environ.get("VIGIL_WORKER_METRICS_PORT", "0"))

# --- Production hardening (VIGIL_PRODUCTION=1) ---------------------------------
if env_bool("VIGIL_PRODUCTION", False):
    SECURE_SSL_REDIRECT = env_bool("VIGIL_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Access baseline: login throttling, CSP, proxies -----------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "dashboard.sso.backends.LocalPasswordBackend",
    "dashboard.sso.backends.VigilOIDCBackend",
]
#: How many reverse proxies of ours append to X-Forwarded-For (0: use the peer address).
VIGIL_TRUSTED_PROXIES = int(os.environ.get("VIGIL_TRUSTED_PROXIES", "0"))
#: Five wrong passwords for a username from one address lock it out for 15 minutes (429).
AXES_FAILURE_LIMIT = int(os.environ.get("VIGIL_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("VIGIL_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
#: The same client address everywhere (audit log, token allow-lists, login throttling).
AXES_CLIENT_IP_CALLABLE = "dashboard.services.audit.request_client_ip"
AXES_SENSITIVE_PARAMETERS = ["password"]
#: No inline scripts anywhere; Plotly injects <style> elements, hence style-src 'unsafe-inline'.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Retention (dashboard/services/retention.py, docs/retention.md) ---------------------
#: Raw report payloads (the bytes as posted) are deleted this many days after receipt; the report's metadata stays.
VIGIL_RAW_RETENTION_DAYS = int(os.environ.get("VIGIL_RAW_RETENTION_DAYS", "30"))
#: A finding's occurrences (tags, digests, workloads) not seen for this many days go, except its most recent one.
VIGIL_OCCURRENCE_RETENTION_DAYS = int(os.environ.get("VIGIL_OCCURRENCE_RETENTION_DAYS", "180"))
#: Event sightings (an alert or denial touching a finding: nudges count them, posture charts them per day) go after this.
VIGIL_SIGHTING_RETENTION_DAYS = int(os.environ.get("VIGIL_SIGHTING_RETENTION_DAYS", "400"))
#: Event-stream reports (one Falco alert or admission denial each) go, with their payloads, this long after receipt
#: unless something still names them.  Never shorter than the sightings' retention: a sighting cascades from its
#: report, so a shorter setting would delete sightings before their own time; refused at startup rather than clamped.
VIGIL_EVENT_REPORT_RETENTION_DAYS = int(os.environ.get("VIGIL_EVENT_REPORT_RETENTION_DAYS", str(VIGIL_SIGHTING_RETENTION_DAYS)))
if VIGIL_EVENT_REPORT_RETENTION_DAYS < VIGIL_SIGHTING_RETENTION_DAYS:
    raise RuntimeError(
        f"VIGIL_EVENT_REPORT_RETENTION_DAYS ({VIGIL_EVENT_REPORT_RETENTION_DAYS}) must be at least"
        f" VIGIL_SIGHTING_RETENTION_DAYS ({VIGIL_SIGHTING_RETENTION_DAYS}): a sighting is deleted with its report"
    )
#: Pruned hourly on the maintenance queue (the beat block at the end); idempotent, in batches.

# Report uploads are read as a stream with their own cap (VIGIL_MAX_REPORT_BYTES), not buffered by Django.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Single sign-on (OpenID Connect, mozilla-django-oidc) -------------------
#: Username and password accounts; 0 hides the form and refuses every password login (the admin's too).
VIGIL_LOCAL_LOGIN = env_bool("VIGIL_LOCAL_LOGIN", True)
#: Shown as "Sign in with <name>".  Single sign-on is on when the client id, the endpoints and the issuer are set.
VIGIL_OIDC_PROVIDER_NAME = os.environ.get("VIGIL_OIDC_PROVIDER_NAME", "")
VIGIL_OIDC_ISSUER = os.environ.get("VIGIL_OIDC_ISSUER", "")
OIDC_RP_CLIENT_ID = os.environ.get("VIGIL_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("VIGIL_OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("VIGIL_OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("VIGIL_OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("VIGIL_OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("VIGIL_OIDC_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("VIGIL_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("VIGIL_OIDC_SCOPES", "openid email profile groups")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = int(os.environ.get("VIGIL_OIDC_TIMEOUT", "10"))
OIDC_VERIFY_SSL = env_bool("VIGIL_OIDC_VERIFY_SSL", True)
#: Identity provider accounts have no password here: the first login creates the Vigil user.
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
VIGIL_OIDC_GROUPS_CLAIM = os.environ.get("VIGIL_OIDC_GROUPS_CLAIM", "groups")
VIGIL_OIDC_USERNAME_CLAIM = os.environ.get("VIGIL_OIDC_USERNAME_CLAIM", "preferred_username")
#: Group -> team and role rules (dashboard/services/sso_rules.py); a mistake stops the start-up.
VIGIL_SSO_RULES = parse_rules(os.environ.get("VIGIL_SSO_RULES", "[]"))

# --- Beat schedule: every periodic task, in one place (names: dashboard/ingest/publish.py TASKS) ---------------
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-reports": {"task": "vigil.reports.sweep", "schedule": 300.0},
    "daily-snapshots": {"task": "vigil.snapshots.take", "schedule": 3600.0},
    "resolve-quiet-events": {"task": "vigil.events.resolve_quiet", "schedule": 3600.0},
    "flush-admission-repeats": {"task": "vigil.admission.flush_repeats", "schedule": 60.0},
    "fold-decision-changes": {"task": "vigil.enforcement.fold_changes", "schedule": 60.0},
    "expire-risk-acceptances": {"task": "vigil.triage.expire_acceptances", "schedule": 3600.0},
    "compute-nudges": {"task": "vigil.nudges.compute", "schedule": 3600.0},
    "weekly-nudge-digest": {"task": "vigil.nudges.weekly_digest", "schedule": 3600.0},
    "refresh-running": {"task": "vigil.running.refresh", "schedule": 900.0},
    "prune-signatures": {"task": "vigil.tokens.prune_signatures", "schedule": 600.0},
    "prune-retention": {"task": "vigil.retention.prune", "schedule": 3600.0},
    "notifications": {"task": "vigil.notifications.run", "schedule": 60.0},
    "weekly-posture-digest": {"task": "vigil.notifications.posture_digest", "schedule": 3600.0},
}
if VIGIL_KEV_URL or VIGIL_EPSS_URL:  # the optional daily download of threat intelligence
    CELERY_BEAT_SCHEDULE["refresh-threat-intel"] = {"task": "vigil.intel.refresh", "schedule": 86400.0}
