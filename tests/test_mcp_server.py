"""What our FastMCP server does differently from fastmcp's defaults, for speed:
``AgentMCP`` resolves each tool once (fastmcp would resolve it through its providers on
every call) — the answer for a name is kept; an unknown name, a versioned lookup and a
tool with component auth are asked of fastmcp every time — and fastmcp's OpenTelemetry
spans are on only when asked for (``ADCP_AGENT_OTEL_SPANS``) — and parses each tool
function's signature once a process (``parsed_tools``): a second app gets copies bound to
its own functions."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import fastmcp
import httpx
from adcp_agent_tools.app import build_mcp
from adcp_agent_tools.state_store import AgentMCP
from fastmcp import FastMCP
from fastmcp.telemetry import native_spans_enabled
from fastmcp.tools.function_tool import FunctionTool
from fastmcp.utilities.versions import VersionSpec

from adcp_agent.config import Settings
from adcp_agent.state import AppState
from tests.media_helpers import non_guaranteed
from tests.support import DEMO_TOKEN
from tests.tenant_admin_support import served_app

AUTH = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "authorization": f"Bearer {DEMO_TOKEN}",
}


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


async def _tool_call(client: httpx.AsyncClient, name: str, arguments: dict[str, Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    body["params"] = {"name": name, "arguments": arguments}
    answer = (await client.post("/mcp/", content=json.dumps(body), headers=AUTH)).json()
    return answer["result"]["structuredContent"]


async def test_a_second_app_has_the_same_tools_working_on_its_own_state(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        clients = [
            (await stack.enter_async_context(served_app(settings))).http
            for settings in (
                Settings(data_dir=tmp_path / name, demo_token=DEMO_TOKEN)
                for name in ("first", "second")
            )
        ]
        created = await _tool_call(clients[0], "create_media_buy", non_guaranteed())
        assert created["status"] == "completed", created
        listed = [await _tool_call(c, "get_media_buys", {}) for c in clients]
        assert [b["media_buy_id"] for b in listed[0]["media_buys"]] == [created["media_buy_id"]]
        assert listed[1]["media_buys"] == []  # the second app's tools read its own database


async def test_each_tool_is_as_fastmcp_would_parse_it_and_owned_by_its_app(
    tmp_path: Path,
) -> None:
    states = [AppState.from_settings(Settings(data_dir=tmp_path / name)) for name in ("a", "b")]
    try:
        first, second = (build_mcp(state) for state in states)
        tools = {t.name: t for t in await first.list_tools(run_middleware=False)}
        again = {t.name: t for t in await second.list_tools(run_middleware=False)}
        assert len(tools) > 20 and tools.keys() == again.keys()
        for name, tool in again.items():
            fresh = FunctionTool.from_function(
                tool.fn, name=name, annotations=tool.annotations, output_schema=None
            )
            assert (tool.parameters, tool.description) == (fresh.parameters, fresh.description)
            assert tool.fn is not tools[name].fn
        # pause/resume share one definition: each keeps its own docstring.
        assert "Pause" in again["pause_media_buy"].description
        assert "Resume" in again["resume_media_buy"].description
        again["get_products"].parameters["properties"].clear()
        assert tools["get_products"].parameters["properties"]  # not shared between apps
    finally:
        for state in states:
            await state.db.dispose()
