"""The composition root: one ASGI app with the MCP endpoint at ``/mcp/`` and the REST
routes beside it. Migrations and first-start seeding run in the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from adcp_agent.body_limit import BodyLimitMiddleware
from adcp_agent.db.migrate import startup_lock, upgrade_to_head
from adcp_agent.ratelimit import Clock, RateLimitMiddleware
from adcp_agent.rest.routes import build_routes, http_error
from adcp_agent.services.bootstrap import DemoInfo, ensure_demo
from adcp_agent.services.outbox_worker import running as outbox_worker
from adcp_agent.services.sealed_secrets import adopt_key
from adcp_agent.state import AppState

log = logging.getLogger("adcp_agent")


@dataclass
class Startup:
    demo: DemoInfo | None = None


async def prepare(state: AppState) -> Startup:
    """Bring the database to the current schema and seed the demo tenant once (under a
    lock, so servers starting together on one Postgres do it one after the other)."""
    demo = None
    async with startup_lock(state.db):
        await upgrade_to_head(state.db)
        sealed = await adopt_key(state.db, state.secrets)
        if sealed:
            log.info("sealed %d stored secrets with key %s", sealed, state.secrets.key_id)
        if state.settings.seed_demo:
            demo = await ensure_demo(state.db, state.registry, state.settings.demo_token)
    return Startup(demo=demo)


def create_app(
    state: AppState, *, startup: Startup | None = None, clock: Clock | None = None
) -> Starlette:
    """``clock`` drives the rate limits (tests inject one instead of sleeping)."""
    from adcp_agent_tools import build_mcp
    from adcp_agent_tools.executor import McpToolExecutor
    from adcp_agent_tools.fast_calls import install_fast_tool_calls

    mcp = build_mcp(state)
    executor = McpToolExecutor(mcp)
    mcp_app = mcp.http_app(path="/", stateless_http=True, json_response=True)
    if state.settings.mcp_fast_tool_calls:
        install_fast_tool_calls(mcp_app, mcp)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if startup is None:
            app.state.startup = await prepare(state)
        async with mcp_app.lifespan(app), outbox_worker(state):
            yield
        await state.db.dispose()

    app = Starlette(
        # MCP first: Starlette tries routes in order, and every MCP request would
        # otherwise be matched against each REST route's pattern before its own.
        routes=[Mount("/mcp", app=mcp_app), *build_routes(state, executor)],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.add_middleware(RateLimitMiddleware, settings=state.settings, clock=clock)
    app.add_middleware(BodyLimitMiddleware, max_bytes=state.settings.max_request_bytes)
    app.state.adcp = state
    app.state.mcp = mcp
    app.state.tools = executor
    return app
