"""A small stand-in for fastmcp's session-state store.

fastmcp keeps per-session state (visibility rules, ``ctx.set_state``) in a key-value
store and reads the visibility rules on every tools/list and tools/call. Its default
store is py-key-value's MemoryStore behind a pydantic adapter, which imports beartype
and ~400 modules (~14 MiB of a server's memory) on the first request and runs
beartype-checked code on every one. We serve MCP statelessly over HTTP and use none of
that state, so this keeps the same three calls (``get``/``put``/``delete``) in a
bounded dict: whatever fastmcp stores still reads back within the process.

``AgentMCP`` is the FastMCP server with that store, with each tool's lookup kept, and
with each tool function's signature parsed once a process (``parsed_tools``).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from fastmcp.tools.base import Tool
from fastmcp.utilities.versions import VersionSpec

from adcp_agent_tools.parsed_tools import OPTIONS, function_tool


class BoundedStateStore:
    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._items: OrderedDict[tuple[str | None, str], Any] = OrderedDict()

    async def get(self, key: str, *, collection: str | None = None) -> Any:
        return self._items.get((collection, key))

    async def put(
        self, key: str, value: Any, *, collection: str | None = None, ttl: float | None = None
    ) -> None:
        self._items[(collection, key)] = value
        self._items.move_to_end((collection, key))
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        return self._items.pop((collection, key), None) is not None


class AgentMCP(FastMCP):
    """FastMCP with the bounded state store above, and each tool looked up once.

    fastmcp resolves a tool for every call afresh — through its aggregate provider,
    which gathers the answers of its providers in an anyio task group, then session
    visibility, component auth and enablement — twice a tools/call: ~4% of a booking's
    instructions, more of a lighter call. Here every tool is registered once, before
    the first request (``build_mcp``); none has component auth, no session has
    visibility rules (the transport is stateless) and nothing enables, disables, adds
    or removes one later, so the first answer for a name is the answer for good. A
    name that resolves to nothing is asked again each time (it stays unknown)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._light_state = BoundedStateStore()
        self._resolved: dict[str, Tool] = {}

    @property
    def _state_store(self) -> Any:  # type: ignore[override]
        return self._light_state

    async def get_tool(self, name: str, version: VersionSpec | None = None) -> Tool | None:
        if version is not None:
            return await super().get_tool(name, version)
        tool = self._resolved.get(name)
        if tool is None:
            tool = await super().get_tool(name)
            if tool is not None and tool.auth is None:
                self._resolved[name] = tool
        return tool

    def tool(self, name_or_fn: Any = None, **options: Any) -> Any:  # type: ignore[override]
        """``@mcp.tool(name=..., ...)`` and ``mcp.tool(fn, name=...)`` as fastmcp has them,
        with the parse kept (``parsed_tools``); other forms and options go to fastmcp."""
        if not (name_or_fn is None or inspect.isroutine(name_or_fn)) or not (
            options.keys() <= OPTIONS
        ):
            return super().tool(name_or_fn, **options)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add_tool(function_tool(fn, options))
            return fn

        return register if name_or_fn is None else register(name_or_fn)
