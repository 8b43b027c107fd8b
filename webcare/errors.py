"""Our errors. Each carries its HTTP status and a stable code; one handler renders them.

    AppError
    ├── BadRequest          400 (malformed JSON, a body that does not fit the schema)
    ├── NotAuthenticated    401
    ├── Forbidden           403 (CsrfFailed: code ``csrf``)
    ├── NotFound            404
    ├── Conflict            409 (AlreadyClaimed, InvalidState)
    ├── PayloadTooLarge     413
    ├── RuleViolation       422
    └── TooManyAttempts     429
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    code = "csrf"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class AlreadyClaimed(Conflict):
    code = "already_claimed"


class InvalidState(Conflict):
    code = "invalid_state"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class RuleViolation(AppError):
    status = 422
    code = "rule_violation"


class TooManyAttempts(AppError):
    status = 429
    code = "too_many_attempts"
