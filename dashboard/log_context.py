"""Which request, report or task a log line belongs to, and the JSON shape of a log line.

Context variables carry the ids: the web middleware binds ``request_id`` (the caller's ``X-Request-ID`` when it is
a sane token, else a fresh one, echoed in the response), the Celery signals in vigil/celery.py bind ``task_id`` and,
for a report's processing task, ``report_id`` (plus the ``request_id`` of the request that queued it).  A filter on
every handler copies them onto the record, so both formats can show them.  Imports nothing from Django models:
logging is configured before the app registry is ready.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dashboard.log_redaction import redact

#: The fields a line may carry besides time, level, logger and message.
FIELDS = ("request_id", "report_id", "task_id")
_CONTEXT: dict[str, contextvars.ContextVar[str]] = {name: contextvars.ContextVar(f"vigil_{name}", default="") for name in FIELDS}
#: An incoming X-Request-ID is kept only if it looks like an id (a proxy's uuid, a trace id), never arbitrary text.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_HEADER = "X-Request-ID"
#: The Celery message header carrying the id of the request that queued a task (read back in vigil/celery.py).
TASK_HEADER = "vigil_request_id"


def current() -> dict[str, str]:
    """The ids bound now (empty ones left out)."""
    return {name: var.get() for name, var in _CONTEXT.items() if var.get()}


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Bind ``ids`` (request_id, report_id, task_id) for the block; the previous values come back after it."""
    tokens = bind(**ids)
    try:
        yield
    finally:
        unbind(tokens)


def bind(**ids: str | None) -> list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]]:
    """Bind ``ids`` until :func:`unbind` (for a start and an end that are two calls, such as Celery's signals)."""
    return [(_CONTEXT[name], _CONTEXT[name].set(str(value or ""))) for name, value in ids.items()]


def unbind(tokens: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]]) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


def carry_request_id(headers: dict[str, Any]) -> None:
    """Put the bound request id in a task message's headers, so the task's lines name the request that queued it."""
    request_id = _CONTEXT["request_id"].get()
    if request_id:
        headers[TASK_HEADER] = request_id


def request_id_from(value: str | None) -> str:
    """The caller's request id if it is a sane token, else a new one."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def _forget_request(**_: object) -> None:
    _CONTEXT["request_id"].set("")


class RequestIdMiddleware:
    """Binds a request id for every log line of the request and answers it in ``X-Request-ID``.

    The id stays bound until the request is finished, not only while the middleware runs: Django logs a 4xx/5xx
    answer ("Unauthorized: /api/...") after the middleware chain has returned."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.core.signals import request_finished

        self.get_response = get_response
        request_finished.connect(_forget_request, dispatch_uid="vigil-forget-request-id")

    def __call__(self, request: Any) -> Any:
        request_id = request_id_from(request.headers.get(REQUEST_HEADER))
        request.request_id = request_id
        _CONTEXT["request_id"].set(request_id)
        response = self.get_response(request)
        response[REQUEST_HEADER] = request_id
        return response


class ContextFilter(logging.Filter):
    """Copies the bound ids onto every record (a record that names its own keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not getattr(record, name, ""):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the bound ids, and the traceback if
    any; every value goes through the same redaction as the text format (before the JSON encoding, so a redaction
    never cuts an escape sequence in two)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, "")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps({key: redact(str(value)) for key, value in line.items()}, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The text format for a terminal (``make run``): the ids after the message, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, ""))
        text = super().format(record)
        return redact(f"{text} [{ids}]" if ids else text)


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING for ``VIGIL_LOG_FORMAT`` (json or text)."""
    formatter: Mapping[str, Any] = (
        {"()": "dashboard.log_context.JsonFormatter"}
        if log_format == "json"
        else {"()": "dashboard.log_context.TextFormatter", "format": "%(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # Tokens, signing secrets and bearer credentials never reach the logs; the ids reach every line.
        "filters": {
            "redact_secrets": {"()": "dashboard.log_redaction.RedactSecrets"},
            "context": {"()": "dashboard.log_context.ContextFilter"},
        },
        "formatters": {"vigil": dict(formatter)},
        "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets", "context"], "formatter": "vigil"}},
        "root": {"handlers": ["console"], "level": level},
        # django-axes logs a banner at every start and a line at every login at INFO: its warnings (lockouts) stay.
        "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
    }
