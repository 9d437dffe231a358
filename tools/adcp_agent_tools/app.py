"""Assemble the FastMCP server: every tool module registers against the app state."""

from __future__ import annotations

import logging

import fastmcp
from fastmcp import FastMCP

from adcp_agent import __version__
from adcp_agent.state import AppState
from adcp_agent_tools import (
    accounts,
    audiences,
    conversions,
    creatives,
    delivery,
    discovery,
    media,
    media_update,
    signals,
    tasks,
    test_controller,
)
from adcp_agent_tools.listing import InlinedSchemas, ListingCache
from adcp_agent_tools.middleware import AdcpMiddleware
from adcp_agent_tools.state_store import AgentMCP

INSTRUCTIONS = """\
AdCP 3.1 sales agent for a publisher. Typical flow: get_adcp_capabilities → get_products
(with a brief) → get_signals / activate_signal → get_avails → create_media_buy (guaranteed
buys return a task: poll get_task_status) → sync_creatives (assign to packages) →
get_media_buy_delivery → provide_performance_feedback / update_media_buy. Authenticate with
'Authorization: Bearer <token>' (or 'x-adcp-auth'). Errors come back as AdCP `errors` with
a code, the offending field and a suggestion."""


class InvalidArgumentsAreTheCallers(logging.Filter):
    """FastMCP logs a WARNING for every call whose arguments its schema refuses. The
    caller gets a typed VALIDATION_ERROR naming the field; for the server it is the
    client's mistake, not a problem, and a buyer agent retrying bad arguments must not
    flood the log: such records go out at DEBUG (seen with ``--log-level debug``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(
            "Invalid arguments for tool"
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


FASTMCP_SERVER_LOG = "fastmcp.server.server"
_CALLERS_MISTAKES = InvalidArgumentsAreTheCallers()


def build_mcp(state: AppState) -> FastMCP:
    logging.getLogger(FASTMCP_SERVER_LOG).addFilter(_CALLERS_MISTAKES)  # (added once)
    # fastmcp's settings are the process's: one server per process.
    fastmcp.settings.telemetry_mode = "native" if state.settings.otel_spans else "off"
    adcp = AdcpMiddleware(state)
    mcp = AgentMCP(
        name="adcp-agent",
        instructions=INSTRUCTIONS,
        version=__version__,
        middleware=[adcp, InlinedSchemas()],
        mask_error_details=True,
        dereference_schemas=False,  # InlinedSchemas does it once, not per tools/list
    )
    discovery.register(mcp, state)
    signals.register(mcp, state)
    accounts.register(mcp, state)
    media.register(mcp, state)
    media_update.register(mcp, state)
    tasks.register(mcp, state)
    creatives.register(mcp, state)
    delivery.register(mcp, state)
    conversions.register(mcp, state)
    audiences.register(mcp, state)
    test_controller.register(mcp, state)
    # Innermost in the SDK's chain: after fastmcp binds the request, before serialising.
    mcp._mcp_server.middleware.append(ListingCache(adcp.sees_sandbox_tools))
    return mcp
