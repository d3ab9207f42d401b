"""One exception family for the whole app.

Every layer raises these; the HTTP API maps them to status codes in one handler and the UI turns
them into text in one helper, so nobody parses error strings.
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error the app raises on purpose. `status` is the HTTP status it maps to."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AppError):
    """The caller sent something we cannot use; nothing was changed."""

    status = 400
    code = "invalid_input"


class Unauthorized(AppError):
    """No valid credentials: sign in (again)."""

    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    """Signed in, but this is not yours or not allowed."""

    status = 403
    code = "forbidden"


class NotFound(AppError):
    """The object does not exist, or belongs to someone else (we never say which)."""

    status = 404
    code = "not_found"


class Conflict(AppError):
    """The object exists but is in a state where this action makes no sense."""

    status = 409
    code = "conflict"


class LimitReached(AppError):
    """A configured limit (live agent processes per user, ...) stops this action."""

    status = 429
    code = "limit_reached"


class AgentFailed(AppError):
    """The Claude Code CLI could not be started or died; the session stays resumable."""

    status = 502
    code = "agent_failed"
