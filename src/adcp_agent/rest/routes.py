"""Every REST route, in one list. Feature modules contribute their routes here."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from adcp_agent.rest.chat import chat_routes
from adcp_agent.rest.health import health
from adcp_agent.rest.tenant_admin import tenant_admin_routes
from adcp_agent.rest.tools_api import tools_routes
from adcp_agent.state import AppState
from adcp_agent.tool_executor import ToolExecutor


def build_routes(state: AppState, tools: ToolExecutor) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *tenant_admin_routes(state),
        *chat_routes(state, tools),
        *tools_routes(tools),
    ]
    return routes
