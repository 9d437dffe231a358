"""REST plumbing shared by the chat and tools routes: the error envelope, JSON bodies
validated into models, the caller (same headers and rules as MCP) and page parameters."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adcp_agent.errors import AdcpError
from adcp_agent.json_values import malformed
from adcp_agent.services import identity
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]

MAX_PAGE = 100
_AUTH_HINT = "Send 'Authorization: Bearer <token>' or 'x-adcp-auth: <token>'."


def error_response(exc: AdcpError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    return JSONResponse(exc.to_rest(), status_code=exc.http_status, headers=headers)


def endpoint(handler: Handler) -> Handler:
    """Render an ``AdcpError`` raised anywhere in a handler as the REST envelope."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            check_request(request)
            return await handler(request)
        except AdcpError as exc:
            return error_response(exc)

    return wrapper


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.adcp
    return state


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, strictly: ``NaN`` and ``Infinity`` (Python's parser takes them,
    JSON has neither) and nesting past the parser's depth (a RecursionError: every REST
    route answered it with a 500) raise ValueError, as any other invalid JSON does."""
    try:
        return json.loads(raw, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def check_values(data: Any) -> None:
    """VALIDATION_ERROR naming where, if ``data`` holds anything ``json_values.malformed``
    refuses (a NUL character, which PostgreSQL cannot store; half a surrogate pair;
    deep nesting)."""
    if (bad := malformed(data)) is not None:
        field, problem = bad
        raise AdcpError("VALIDATION_ERROR", f"'{field}' {problem}.", field=field or "body")


def check_request(request: Request) -> None:
    """``check_values`` for the path's and the query's parameters (an id holding a NUL
    character failed in PostgreSQL's hands, an HTTP 500)."""
    check_values({**request.query_params, **request.path_params})


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` so a missing required field is
    reported by name rather than as a missing body."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = parse_json(raw)
    except ValueError as exc:  # (UnicodeDecodeError is one)
        raise AdcpError(
            "INVALID_REQUEST", f"The request body is not valid JSON ({exc}).", field="body"
        ) from None
    if not isinstance(data, dict):
        raise AdcpError("VALIDATION_ERROR", "The request body must be a JSON object.", field="body")
    check_values(data)
    return data


async def read_model(request: Request, model: type[M]) -> M:
    data = await read_json_object(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError, where: str = "body") -> AdcpError:
    """Pydantic's complaints as one VALIDATION_ERROR naming the first field, with up to
    ten problems listed in details (shared by every REST surface)."""
    problems = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or where
        if err["type"] == "missing":
            text = f"'{loc}' is required."
        elif err["type"] == "extra_forbidden":
            text = f"'{loc}' is not a known field."
        else:
            text = f"'{loc}': {err['msg']}."
        problems.append({"field": loc, "message": text})
    first = problems[0]
    return AdcpError(
        "VALIDATION_ERROR", first["message"], field=first["field"], details={"errors": problems}
    )


def presented_token(request: Request) -> str | None:
    return identity.token_from_headers(request.headers)


async def authenticated_caller(request: Request) -> Caller:
    token = presented_token(request)
    if token is None:
        raise AdcpError("AUTH_REQUIRED", "Authentication is required.", suggestion=_AUTH_HINT)
    return await identity.authenticate(app_state(request).db, token)


async def optional_caller(request: Request) -> Caller:
    """A token pins its own tenant; without one, the anonymous public view of the tenant
    named like MCP does it (x-adcp-tenant, Host subdomain, then the default tenant)."""
    if presented_token(request) is not None:
        return await authenticated_caller(request)
    state = app_state(request)
    return await identity.anonymous(
        state.db, identity.tenant_hint(request.headers, state.default_tenant)
    )


def page_params(request: Request, default_limit: int) -> tuple[int, str | None]:
    raw = request.query_params.get("limit")
    limit = default_limit
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_PAGE:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"'limit' must be an integer from 1 to {MAX_PAGE}.",
                field="limit",
            )
    return limit, request.query_params.get("cursor") or None
