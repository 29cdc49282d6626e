"""Domain errors and the one JSON error shape every client sees."""

from __future__ import annotations

from typing import Any


class TickerError(Exception):
    """Base for errors a client may see: it carries an HTTP status and a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class BadRequest(TickerError):
    status, code = 400, "bad_request"


class Invalid(TickerError):
    """A well-formed request whose content breaks a rule; `field` names where."""

    status, code = 422, "invalid"


class Unauthorized(TickerError):
    status, code = 401, "unauthorized"


class Forbidden(TickerError):
    status, code = 403, "forbidden"


class MatchNotFound(TickerError):
    status, code = 404, "match_not_found"


class NotFound(TickerError):
    status, code = 404, "not_found"


class Conflict(TickerError):
    status, code = 409, "conflict"


class TooLarge(TickerError):
    status, code = 413, "too_large"


class RateLimited(TickerError):
    status, code = 429, "rate_limited"


class EngineUnavailable(TickerError):
    """The storage engine cannot be reached; nothing was written."""

    status, code = 503, "unavailable"
