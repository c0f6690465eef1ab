"""The one error type services raise; the API renders every error in one shape."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request that cannot be carried out, with a message a person can act on.

    ``status`` is the HTTP status the API answers with; ``code`` a stable
    machine-readable word; ``extra`` optional details (field errors, headers).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        status: int = 400,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}
