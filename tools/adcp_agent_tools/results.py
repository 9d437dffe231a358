"""Building MCP results: successes carry the AdCP payload as structured content (and as
JSON text for clients that only read text); failures are AdCP error envelopes."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

from fastmcp.tools.base import ToolResult

from adcp_agent import ADCP_VERSION
from adcp_agent.errors import AdcpError

P = ParamSpec("P")
T = TypeVar("T")


def ok(payload: dict[str, Any]) -> ToolResult:
    return success({"status": "completed", "adcp_version": ADCP_VERSION, **payload})


def success(payload: dict[str, Any], meta: dict[str, Any] | None = None) -> ToolResult:
    """A success result: ``payload`` (status included) as structured content and as its
    JSON text (rendered again whenever the payload is amended)."""
    return ToolResult(
        content=json.dumps(payload, separators=(",", ":"), default=str),
        structured_content=payload,
        meta=meta,
    )


def error_result(errors: Sequence[AdcpError]) -> ToolResult:
    first = errors[0]
    payload: dict[str, Any] = {
        "status": "failed",
        "adcp_version": ADCP_VERSION,
        "errors": [e.to_adcp() for e in errors],
        "adcp_error": first.to_adcp(),
    }
    text = first.code + (f"[{first.field}]" if first.field else "") + f": {first.message}"
    if first.suggestion:
        text += f"\nSuggestion: {first.suggestion}"
    return ToolResult(content=text, structured_content=payload, is_error=True)


def not_applied(arguments: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Warnings (AdCP errors beside a read's answer) for the arguments given that this
    agent cannot apply: the answer is not narrowed by them, and says so."""
    return [
        AdcpError(
            "UNSUPPORTED_FEATURE",
            f"'{name}' is not supported by this publisher and was not applied.",
            field=name,
        ).to_adcp()
        for name, value in arguments
        if value is not None
    ]


def projected(
    items: list[dict[str, Any]], fields: Sequence[str] | None, always: Iterable[str]
) -> list[dict[str, Any]]:
    """AdCP's ``fields``: each item with only the fields asked for, plus those ``always``
    there (a response's required fields)."""
    if not fields:
        return items
    keep = {*fields, *always}
    return [{k: v for k, v in item.items() if k in keep} for item in items]


class AdcpErrors(Exception):
    """Several domain errors answered together (e.g. every failure of a strict sync)."""

    def __init__(self, errors: Sequence[AdcpError]) -> None:
        super().__init__(errors[0].message)
        self.errors = list(errors)


def adcp_errors_as_results(
    fn: Callable[P, Awaitable[ToolResult]],
) -> Callable[P, Awaitable[ToolResult]]:
    """Domain errors are answers, not crashes: render them as AdCP error results."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> ToolResult:
        try:
            return await fn(*args, **kwargs)
        except AdcpError as exc:
            return error_result([exc])
        except AdcpErrors as exc:
            return error_result(exc.errors)

    return wrapper


# --- pagination: opaque, stable cursors (an offset plus a fingerprint of the query) ---

MAX_PAGE = 100


def paginate(
    items: Sequence[T], pagination: dict[str, Any] | None, fingerprint: str, default: int = 50
) -> tuple[list[T], dict[str, Any]]:
    """One page of ``items`` (all of them in memory) and its AdCP ``pagination``."""
    offset, limit = page_window(pagination, fingerprint, default)
    return list(items[offset : offset + limit]), page_info(offset, limit, len(items), fingerprint)


def page_window(
    pagination: dict[str, Any] | None, fingerprint: str, default: int = 50
) -> tuple[int, int]:
    """(offset, limit) a request's ``pagination`` asks for: for listings paged in SQL."""
    pagination = pagination or {}
    limit = pagination.get("max_results") or default
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"max_results must be an integer from 1 to {MAX_PAGE}.",
            field="pagination.max_results",
        )
    cursor = pagination.get("cursor")
    return (_decode_cursor(cursor, fingerprint) if cursor else 0), limit


def page_info(offset: int, limit: int, total: int, fingerprint: str) -> dict[str, Any]:
    has_more = offset + limit < total
    out: dict[str, Any] = {"has_more": has_more, "total_count": total}
    if has_more:
        out["cursor"] = _encode_cursor(offset + limit, fingerprint)
    return out


def _encode_cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint[:16]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, fingerprint: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        same_query = data["f"] == fingerprint[:16]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise AdcpError(
            "INVALID_REQUEST", "The pagination cursor is not valid.", field="pagination.cursor"
        ) from None
    if not same_query or offset < 0:
        raise AdcpError(
            "INVALID_REQUEST",
            "The cursor belongs to a different query; repeat the same filters or drop it.",
            field="pagination.cursor",
        )
    return offset


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
