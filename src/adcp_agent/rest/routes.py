"""Every REST route, in one list. Feature modules contribute their routes here."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adcp_agent.errors import AdcpError
from adcp_agent.rest.admin_events import event_routes
from adcp_agent.rest.chat import chat_routes
from adcp_agent.rest.health import health
from adcp_agent.rest.notifications import notification_routes
from adcp_agent.rest.tenant_admin import tenant_admin_routes
from adcp_agent.rest.tools_api import tools_routes
from adcp_agent.rest.tracking import tracking_routes
from adcp_agent.state import AppState
from adcp_agent.tool_executor import ToolExecutor


def build_routes(state: AppState, tools: ToolExecutor) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *event_routes(state),  # before tenant_admin_routes, which ends in a catch-all 404
        *tenant_admin_routes(state),
        *notification_routes(),
        *chat_routes(state, tools),
        *tools_routes(tools),
        *tracking_routes(),
    ]
    return routes


SURFACES = "/mcp/ (MCP), /api/tools, /api/chat, /api/notifications, /api/v1/tenant-management"


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route for the path, a method the route does not
    take) in the error envelope every other answer uses, instead of plain text."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    allow = next((v for k, v in headers.items() if k.lower() == "allow"), "another method")
    if exc.status_code == 404:
        error = AdcpError(
            "NOT_FOUND",
            f"There is no endpoint at {request.url.path}.",
            suggestion=f"Endpoints live under {SURFACES}.",
        )
    elif exc.status_code == 405:
        error = AdcpError(
            "INVALID_REQUEST",
            f"{request.method} is not supported at {request.url.path}; use {allow}.",
        )
    else:
        error = AdcpError("INVALID_REQUEST", str(exc.detail))
    return JSONResponse(error.to_rest(), status_code=exc.status_code, headers=headers)
