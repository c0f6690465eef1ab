"""A logging filter that keeps API tokens, signing secrets and Authorization headers out of logs.

Installed on every handler in settings.LOGGING.  Imports nothing from Django models: logging
is configured before the app registry is ready.
"""

from __future__ import annotations

import logging
import re

#: API tokens (``vgl_`` + 48 characters), signing secrets (``vgs_`` + 64 hex) and bearer credentials.
_SECRETS = re.compile(r"\bvgl_[0-9A-Za-z]{10,}|\bvgs_[0-9a-f]{16,}|(?i:\bbearer\s+)[^\s'\",]+")
#: The value of a credential-looking parameter in a URL (``?token=…``, ``&api_key=…``): refused by Vigil
#: (dashboard/request_checks.py), but a URL can still reach a log line, e.g. as a Referer.
_URL_CREDENTIALS = re.compile(
    r"(?i)([?&;](?:access[_-]?token|auth[_-]?token|api[_-]?token|id[_-]?token|refresh[_-]?token|token|api[_-]?key|key"
    r"|client[_-]?secret|signing[_-]?secret|secret|password|auth|authorization|bearer)=)[^&#\s'\"]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\1" + REDACTED, _SECRETS.sub(REDACTED, text))


def contains_secret(text: str) -> bool:
    return _SECRETS.search(text) is not None


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
