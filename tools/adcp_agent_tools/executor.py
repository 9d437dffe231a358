"""In-process tool execution for REST surfaces: same middleware, same validation, with
the caller resolved by the REST layer instead of from MCP headers."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP

from adcp_agent.services.identity import Caller
from adcp_agent.tool_executor import ToolOutcome, ToolSpec
from adcp_agent_tools.caller import preset_caller


class McpToolExecutor:
    def __init__(self, mcp: FastMCP) -> None:
        self.mcp = mcp

    async def list_tools(self) -> list[ToolSpec]:
        tools = await self.mcp.list_tools()
        return [
            ToolSpec(
                name=t.name,
                description=t.description or "",
                input_schema=t.parameters,
                read_only=bool(t.annotations and t.annotations.read_only_hint),
            )
            for t in tools
        ]

    async def call(self, caller: Caller, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        with preset_caller(caller):
            result = await self.mcp.call_tool(name, arguments)
        data = result.structured_content or {}
        return ToolOutcome(is_error=bool(result.is_error), data=data)
