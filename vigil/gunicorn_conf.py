"""gunicorn settings for Vigil's web process (docker-compose, the Dockerfile, Kubernetes manifests).

Run: ``gunicorn -c python:vigil.gunicorn_conf vigil.wsgi:application``.  The access log never holds a
credential: it records the path without the query string, the Referer without its query, and every
header atom (Authorization, Cookie, X-Vigil-Signature, ...) and the User-Agent through the same redaction
as the application's own logs (dashboard/log_redaction.py); the error log goes through it too.
Settings come from the environment so one file serves every deployment.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gunicorn.glogging import Logger

from dashboard import log_context
from dashboard.log_redaction import REDACTED, RedactSecrets, redact

bind = os.environ.get("VIGIL_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("VIGIL_WEB_WORKERS", "4"))
threads = int(os.environ.get("VIGIL_WEB_THREADS", "1"))
timeout = int(os.environ.get("VIGIL_WEB_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("VIGIL_WEB_GRACEFUL_TIMEOUT", "30"))
accesslog = os.environ.get("VIGIL_ACCESS_LOG", "-")
errorlog = os.environ.get("VIGIL_ERROR_LOG", "-")
loglevel = os.environ.get("VIGIL_WEB_LOG_LEVEL", "info")
#: Client address, time, method, path (no query string), protocol, status, bytes, duration, Referer, User-Agent.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'
#: json: access and error lines are JSON objects like the application's (dashboard/log_context.py), an access line
#: carrying the request id the application answered in X-Request-ID.  Defaults as the Django settings do.
log_format = os.environ.get("VIGIL_LOG_FORMAT", "json" if os.environ.get("VIGIL_PRODUCTION", "") in ("1", "true", "yes", "on") else "text")

#: Headers whose whole value is a credential.
_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-vigil-signature", "x-api-key")


def _without_query(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    return redact(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))


class RedactingLogger(Logger):
    """gunicorn's logger with no query string, no credential header and no token in any access-log atom."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.addFilter(RedactSecrets())
            if log_format == "json":
                handler.addFilter(log_context.ContextFilter())
                handler.setFormatter(log_context.JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        headers = {str(name).lower(): value for name, value in (getattr(resp, "headers", None) or [])}
        with log_context.bound(request_id=headers.get(log_context.REQUEST_HEADER.lower(), "")):
            super().access(resp, req, environ, request_time)

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        path = environ.get("PATH_INFO", "")
        atoms["r"] = f"{environ.get('REQUEST_METHOD', '-')} {path} {environ.get('SERVER_PROTOCOL', '-')}"
        atoms["q"] = "-"
        atoms["u"] = "-"  # a Basic-auth user name may be a token
        atoms["f"] = _without_query(environ.get("HTTP_REFERER", "")) or "-"
        atoms["a"] = redact(environ.get("HTTP_USER_AGENT", "-"))
        for key in [key for key in atoms if key.endswith("}e")]:
            del atoms[key]  # the WSGI environ holds QUERY_STRING, RAW_URI and every header
        for key in [key for key in atoms if key.endswith("}i")]:
            name = key[1:-2]
            atoms[key] = REDACTED if name in _SECRET_HEADERS else _without_query(atoms[key]) if name == "referer" else redact(atoms[key])
        return atoms


logger_class = RedactingLogger
logging.captureWarnings(True)
