"""The error hierarchy. Every layer raises these; the API maps them to HTTP, the CLI to one line.

Each error has a stable machine-readable ``code``, an HTTP ``status`` and, where
one input is to blame, the ``field`` that was wrong.
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_dict(cls, status: int, body: dict[str, Any]) -> ShipyardError:
        """Rebuild the error a remote server raised, so remote and embedded callers see the same type."""
        code = body.get("code", "")
        error_cls = _BY_CODE.get(code, ShipyardError)
        err = error_cls(body.get("message", "unknown error"), field=body.get("field"), details=body.get("details"))
        if error_cls is ShipyardError:
            err.status = status
        return err


class InvalidInput(ShipyardError):
    code = "invalid_input"
    status = 400


class FilterSyntaxError(InvalidInput):
    code = "invalid_filter"


class NotFound(ShipyardError):
    code = "not_found"
    status = 404


class AlreadyExists(ShipyardError):
    code = "already_exists"
    status = 409


class Conflict(ShipyardError):
    """The request is well-formed but contradicts the stored state (e.g. a param re-logged with a new value)."""

    code = "conflict"
    status = 409


class IntegrityError(ShipyardError):
    """Stored content no longer matches its digest."""

    code = "integrity_error"
    status = 409


class Unauthenticated(ShipyardError):
    """No valid credentials: a missing, unknown, expired or revoked token."""

    code = "unauthenticated"
    status = 401


class PermissionDenied(ShipyardError):
    """The caller is known but lacks the permission, role or approval the action needs."""

    code = "permission_denied"
    status = 403


class PolicyViolation(ShipyardError):
    """A governance gate refused a transition; ``details["violations"]`` lists every failed rule."""

    code = "policy_violation"
    status = 409


class RateLimited(ShipyardError):
    code = "rate_limited"
    status = 429


class Unavailable(ShipyardError):
    code = "unavailable"
    status = 503


_BY_CODE: dict[str, type[ShipyardError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        FilterSyntaxError,
        NotFound,
        AlreadyExists,
        Conflict,
        IntegrityError,
        Unauthenticated,
        PermissionDenied,
        PolicyViolation,
        RateLimited,
        Unavailable,
    )
}
