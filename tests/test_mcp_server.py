"""What our FastMCP server does differently from fastmcp's defaults, for speed:
``AgentMCP`` resolves each tool once (fastmcp would resolve it through its providers on
every call) — the answer for a name is kept; an unknown name, a versioned lookup and a
tool with component auth are asked of fastmcp every time — and fastmcp's OpenTelemetry
spans are on only when asked for (``ADCP_AGENT_OTEL_SPANS``)."""

from __future__ import annotations

from typing import Any

import fastmcp
from adcp_agent_tools.app import build_mcp
from adcp_agent_tools.state_store import AgentMCP
from fastmcp import FastMCP
from fastmcp.telemetry import native_spans_enabled
from fastmcp.utilities.versions import VersionSpec

from adcp_agent.config import Settings
from adcp_agent.state import AppState


def _counting(monkeypatch: Any) -> list[str]:
    asked: list[str] = []
    original = FastMCP.get_tool

    async def get_tool(self: FastMCP, name: str, version: VersionSpec | None = None) -> Any:
        asked.append(name)
        return await original(self, name, version)

    monkeypatch.setattr(FastMCP, "get_tool", get_tool)
    return asked


async def test_a_tool_is_resolved_once_and_an_unknown_name_every_time(monkeypatch: Any) -> None:
    mcp = AgentMCP(name="t")

    @mcp.tool
    def echo(text: str) -> str:
        return text

    asked = _counting(monkeypatch)
    first = await mcp.get_tool("echo")
    again = await mcp.get_tool("echo")
    assert first is not None and again is first
    assert await mcp.get_tool("missing") is None
    assert await mcp.get_tool("missing") is None
    assert asked == ["echo", "missing", "missing"]
    result = await mcp.call_tool("echo", {"text": "hi"})
    assert result.structured_content == {"result": "hi"}
    assert asked == ["echo", "missing", "missing"]  # the call used the kept answer


async def test_a_tool_with_component_auth_is_checked_on_every_lookup(monkeypatch: Any) -> None:
    mcp = AgentMCP(name="t")
    allowed = {"now": True}

    def check(_ctx: Any) -> bool:
        return allowed["now"]

    @mcp.tool(auth=check)
    def guarded() -> str:
        return "ok"

    asked = _counting(monkeypatch)
    assert await mcp.get_tool("guarded") is not None
    allowed["now"] = False
    assert await mcp.get_tool("guarded") is None  # refused now: the first answer not kept
    assert asked == ["guarded", "guarded"]


async def test_fastmcp_spans_only_when_asked_for(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(fastmcp.settings, "telemetry_mode", "native")  # fastmcp's default
    seen = []
    for asked in (False, True):
        state = AppState.from_settings(Settings(data_dir=tmp_path, otel_spans=asked))
        try:
            build_mcp(state)
            seen.append(native_spans_enabled())
        finally:
            await state.db.dispose()
    assert seen == [False, True]
