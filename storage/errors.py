"""The one exception hierarchy. Services raise these; web/errors.py turns them into responses."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(AppError):
    status = 400
    code = "invalid"


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class TooLarge(AppError):
    status = 413
    code = "too_large"


class Throttled(AppError):
    status = 429
    code = "throttled"


class Unavailable(AppError):
    """A backing service (database, object storage, broker) cannot be reached."""

    status = 503
    code = "unavailable"


class Denied(Forbidden):
    """A refusal worth an audit entry (someone tried to read a confidential item or poll).

    The service's transaction rolls back with the error, so the entry travels on the exception and is
    written in a transaction of its own by whoever turns errors into answers (``web.errors``):
    ``audit`` is ``(action, object_type, object_id, data)``."""

    def __init__(self, message: str, *, audit: tuple[str, str, object, dict[str, Any]], **details: Any) -> None:
        super().__init__(message, **details)
        self.audit = audit
