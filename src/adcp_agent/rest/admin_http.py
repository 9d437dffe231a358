"""HTTP plumbing for the tenant-management API: one error envelope for every failure
(including bad JSON, unknown paths and wrong methods), strict body parsing that names
the offending field, and the API-key check in front of every route but init."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adcp_agent.errors import AdcpError
from adcp_agent.rest.http_io import check_request, check_values, parse_json, validation_error
from adcp_agent.services import admin_keys
from adcp_agent.state import AppState

log = logging.getLogger("adcp_agent.rest.admin")

PREFIX = "/api/v1/tenant-management"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


def error_response(exc: AdcpError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.to_rest(), status_code=exc.http_status, headers=headers)


def ok(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


async def read_body(request: Request, model: type[M]) -> M:
    """An empty body is ``{}`` (so bodiless POSTs work from curl); anything else must be
    a JSON object matching ``model``. The Content-Type is not checked, because
    ``curl -d`` sends a form type by default."""
    raw = await request.body()
    data: Any = {}
    if raw.strip():
        try:
            data = parse_json(raw)
        except ValueError as exc:  # (JSONDecodeError and UnicodeDecodeError are)
            raise AdcpError(
                "INVALID_REQUEST",
                f"The request body is not valid JSON ({exc}).",
                field="body",
                suggestion='Send a JSON object, e.g. -d \'{"name": "..."}\'.',
            ) from None
    check_values(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, "body") from None


def read_query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise validation_error(exc, "query") from None


def admin_route(
    path: str, state: AppState, handlers: Mapping[str, Handler], *, auth: bool = True
) -> Route:
    """One route per path; methods it does not serve get a JSON 405 naming the ones it
    does. Every AdcpError becomes the error envelope with its status."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        try:
            if handler is None:
                allowed = ", ".join(handlers)
                return error_response(
                    AdcpError(
                        "INVALID_REQUEST",
                        f"{request.method} is not supported here; use {allowed}.",
                        http_status=405,
                    ),
                    headers={"Allow": allowed},
                )
            if auth:
                await admin_keys.verify_api_key(state.db, request.headers.get(admin_keys.HEADER))
            check_request(request)
            return await handler(request)
        except AdcpError as exc:
            return error_response(exc)
        except Exception:  # noqa: BLE001 - logged with its traceback, never shown to callers
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(
                AdcpError(
                    "INTERNAL_ERROR",
                    "The request failed unexpectedly; the error has been logged.",
                    recovery="transient",
                    http_status=500,
                )
            )

    return Route(PREFIX + path, endpoint, methods=_ALL_METHODS)


def unknown_path_route() -> Route:
    async def endpoint(request: Request) -> Response:
        return error_response(
            AdcpError(
                "NOT_FOUND",
                f"There is no tenant-management endpoint at {request.url.path}.",
                suggestion=f"Endpoints live under {PREFIX}/ (tenants, audit-logs, health).",
            )
        )

    return Route(PREFIX + "/{rest:path}", endpoint, methods=_ALL_METHODS)
