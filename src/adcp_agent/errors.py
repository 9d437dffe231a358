"""One error model. Services raise ``AdcpError``; each surface renders it once:
MCP as an AdCP ``errors`` array, REST as ``{"error": {code, message, details}}``."""

from __future__ import annotations

from typing import Any, Literal

Recovery = Literal["transient", "correctable", "terminal"]

# Recovery class and HTTP status for the standard AdCP codes we raise.
_CODES: dict[str, tuple[Recovery, int]] = {
    "INVALID_REQUEST": ("correctable", 400),
    "VALIDATION_ERROR": ("correctable", 422),
    "AUTH_REQUIRED": ("correctable", 401),
    "AUTH_MISSING": ("correctable", 401),
    "AUTH_INVALID": ("terminal", 401),
    "PERMISSION_DENIED": ("terminal", 403),
    "RATE_LIMITED": ("transient", 429),
    "SERVICE_UNAVAILABLE": ("transient", 503),
    "CONFIGURATION_ERROR": ("terminal", 500),
    "UNSUPPORTED_FEATURE": ("correctable", 400),
    "PRODUCT_NOT_FOUND": ("correctable", 404),
    "PRODUCT_UNAVAILABLE": ("correctable", 409),
    "BUDGET_TOO_LOW": ("correctable", 422),
    "SIGNAL_NOT_FOUND": ("correctable", 404),
    "MEDIA_BUY_NOT_FOUND": ("correctable", 404),
    "PACKAGE_NOT_FOUND": ("correctable", 404),
    "ACCOUNT_NOT_FOUND": ("correctable", 404),
    "ACCOUNT_AMBIGUOUS": ("correctable", 409),
    "ACCOUNT_SUSPENDED": ("terminal", 403),
    "ACCOUNT_SETUP_REQUIRED": ("correctable", 403),
    "REFERENCE_NOT_FOUND": ("correctable", 404),
    "CONFLICT": ("correctable", 409),
    "IDEMPOTENCY_CONFLICT": ("correctable", 409),
    "INVALID_STATE": ("correctable", 409),
    "ACTION_NOT_ALLOWED": ("correctable", 409),
    "POLICY_VIOLATION": ("terminal", 403),
    "NOT_FOUND": ("correctable", 404),
}


class AdcpError(Exception):
    """A failure a caller can act on: a standard AdCP code, a message written for the
    caller, the offending field (dotted path) and how to recover."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        suggestion: str | None = None,
        recovery: Recovery | None = None,
        details: dict[str, Any] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        default_recovery, default_status = _CODES.get(code, ("correctable", 400))
        self.code = code
        self.message = message
        self.field = field
        self.suggestion = suggestion
        self.recovery: Recovery = recovery or default_recovery
        self.details = details or {}
        self.http_status = http_status or default_status

    def to_adcp(self) -> dict[str, Any]:
        """The AdCP ``error`` object (core/error.json)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.suggestion:
            out["suggestion"] = self.suggestion
        out["recovery"] = self.recovery
        if self.details:
            out["details"] = self.details
        return out

    def to_rest(self) -> dict[str, Any]:
        details = dict(self.details)
        if self.field:
            details["field"] = self.field
        if self.suggestion:
            details["suggestion"] = self.suggestion
        return {"error": {"code": self.code, "message": self.message, "details": details}}


def http_status_for(code: str) -> int:
    """The HTTP status a REST surface answers for an AdCP error code it did not raise
    itself (e.g. the code inside a tool's failure payload)."""
    return _CODES.get(code, ("correctable", 400))[1]


def not_found(code: str, what: str, ident: str, field: str) -> AdcpError:
    return AdcpError(code, f"{what} '{ident}' was not found.", field=field)
