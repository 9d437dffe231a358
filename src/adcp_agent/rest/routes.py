"""Every REST route, in one list. Feature modules contribute their routes here."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

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
