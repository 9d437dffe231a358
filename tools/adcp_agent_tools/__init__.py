"""The MCP tool layer: thin functions that parse AdCP arguments, call services and shape
AdCP 3.1 responses. No SQL and no domain rules live here."""

from adcp_agent_tools.app import build_mcp

__all__ = ["build_mcp"]
