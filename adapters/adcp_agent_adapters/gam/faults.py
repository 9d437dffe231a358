"""Google Ad Manager failures as ``AdcpError``s.

GAM answers a rejected call with a SOAP fault whose ``ApiException`` lists errors such as
``QuotaError.EXCEEDED_QUOTA`` or ``RequiredError.REQUIRED @ lineItem[0].targeting``. The
error *type* (the part before the dot) decides the AdCP code and whether a retry can
help; the raw reason travels in ``details`` so an operator can look it up in Google's
reference.
"""

from __future__ import annotations

import logging
from typing import Any

import google.auth.exceptions
import requests
import zeep.exceptions
from googleads import errors as gerrors

from adcp_agent.errors import AdcpError

AD_SERVER = "google_ad_manager"
log = logging.getLogger("adcp_agent_adapters.gam")

_VALIDATION = "VALIDATION_ERROR"
# GAM error type -> AdCP code. Anything unlisted is a request GAM refused: VALIDATION_ERROR.
_CODES: dict[str, str] = {
    "AuthenticationError": "CONFIGURATION_ERROR",
    "ApiVersionError": "CONFIGURATION_ERROR",
    "NetworkError": "CONFIGURATION_ERROR",
    "PermissionError": "PERMISSION_DENIED",
    "QuotaError": "RATE_LIMITED",
    "ServerError": "SERVICE_UNAVAILABLE",
    "InternalApiError": "SERVICE_UNAVAILABLE",
    "UniqueError": "CONFLICT",
    "OrderActionError": "INVALID_STATE",
    "LineItemOperationError": "INVALID_STATE",
    "ForecastError": "PRODUCT_UNAVAILABLE",
    "FeatureError": "UNSUPPORTED_FEATURE",
}
_TRANSIENT = {"QuotaError", "ServerError", "InternalApiError"}
_COMMON_ERROR_CODES = {
    "NOT_FOUND": "REFERENCE_NOT_FOUND",
    "ALREADY_EXISTS": "CONFLICT",
    "CONCURRENT_MODIFICATION": "SERVICE_UNAVAILABLE",
}
_SUGGESTIONS = {
    "CONFIGURATION_ERROR": "Check the tenant's Google Ad Manager network code and "
    "credentials, and that API access is enabled for the network.",
    "PERMISSION_DENIED": "Give the API user the GAM role needed for this operation.",
    "RATE_LIMITED": "Retry in a minute; GAM limits requests per network.",
    "SERVICE_UNAVAILABLE": "Retry later.",
}


def _field(err: Any, name: str) -> str:
    value = getattr(err, name, None)
    return "" if value is None else str(value)


def _code_for(error_string: str) -> tuple[str, bool]:
    kind, _, reason = error_string.partition(".")
    if kind == "CommonError" and reason in _COMMON_ERROR_CODES:
        code = _COMMON_ERROR_CODES[reason]
        return code, reason == "CONCURRENT_MODIFICATION"
    return _CODES.get(kind, _VALIDATION), kind in _TRANSIENT


def error(
    code: str,
    message: str,
    operation: str,
    gam_error: str,
    *,
    transient: bool = False,
    field: str | None = None,
    suggestion: str | None = None,
    **extra: Any,
) -> AdcpError:
    details: dict[str, Any] = {"ad_server": AD_SERVER, "gam_error": gam_error}
    if operation:
        details["operation"] = operation
    details.update({k: v for k, v in extra.items() if v not in (None, "", [])})
    return AdcpError(
        code,
        message,
        field=field,
        suggestion=suggestion or _SUGGESTIONS.get(code),
        recovery="transient" if transient else None,
        details=details,
    )


def from_server_fault(fault: gerrors.GoogleAdsServerFault, operation: str) -> AdcpError:
    errors = list(fault.errors or ())
    if not errors:
        # A fault without an ApiException detail: GAM's front end failed.
        return error(
            "SERVICE_UNAVAILABLE",
            f"Google Ad Manager failed {operation}.",
            operation,
            "SoapFault",
            transient=True,
        )
    first = errors[0]
    error_string = _field(first, "errorString") or type(first).__name__
    code, transient = _code_for(error_string)
    field_path = _field(first, "fieldPath")
    where = f" at {field_path}" if field_path else ""
    return error(
        code,
        f"Google Ad Manager rejected {operation}: {error_string}{where}.",
        operation,
        error_string,
        transient=transient,
        gam_field_path=field_path,
        gam_trigger=_field(first, "trigger"),
        gam_errors=[_field(e, "errorString") for e in errors[1:]],
    )


def from_exception(exc: BaseException, operation: str) -> AdcpError:
    """Translate whatever a googleads call raised. Messages never include credentials:
    we only ever quote GAM's error strings and HTTP statuses."""
    if isinstance(exc, AdcpError):
        return exc
    if isinstance(exc, gerrors.GoogleAdsServerFault):
        return from_server_fault(exc, operation)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        return error(
            "CONFIGURATION_ERROR",
            "Google rejected the Ad Manager credentials (the OAuth token could not be refreshed).",
            operation,
            "OAuthRefreshError",
        )
    if isinstance(exc, google.auth.exceptions.TransportError):
        return error(
            "SERVICE_UNAVAILABLE",
            "Google's OAuth endpoint could not be reached.",
            operation,
            "OAuthTransportError",
            transient=True,
        )
    if isinstance(exc, zeep.exceptions.TransportError):
        status = exc.status_code or 0
        if status in (401, 403):
            return error(
                "CONFIGURATION_ERROR",
                f"Google Ad Manager refused the request (HTTP {status}).",
                operation,
                f"HTTP_{status}",
            )
        return error(
            "SERVICE_UNAVAILABLE",
            f"Google Ad Manager answered HTTP {status} to {operation}.",
            operation,
            f"HTTP_{status}",
            transient=status >= 500 or status == 429,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return error(
            "SERVICE_UNAVAILABLE",
            f"Google Ad Manager did not answer {operation} in time.",
            operation,
            "TIMEOUT",
            transient=True,
        )
    if isinstance(exc, requests.exceptions.RequestException | gerrors.GoogleAdsSoapTransportError):
        return error(
            "SERVICE_UNAVAILABLE",
            f"Google Ad Manager could not be reached for {operation}.",
            operation,
            type(exc).__name__,
            transient=True,
        )
    if isinstance(exc, gerrors.GoogleAdsValueError):
        return error(
            "CONFIGURATION_ERROR",
            f"The Google Ad Manager client refused the configuration: {exc}.",
            operation,
            "GoogleAdsValueError",
        )
    log.error("unexpected failure in GAM %s", operation, exc_info=exc)
    return error(
        "SERVICE_UNAVAILABLE",
        f"Google Ad Manager {operation} failed unexpectedly.",
        operation,
        type(exc).__name__,
        suggestion="The server log has the details.",
    )
