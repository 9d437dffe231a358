"""tools/list with self-contained schemas, computed once and served from a cache.

Some MCP clients cannot follow JSON Schema ``$ref``, so every schema we list has its
``$defs`` inlined. fastmcp's own ``DereferenceRefsMiddleware`` does that on every
tools/list request, which made tools/list cost about fourteen no-op tool calls (our
schemas are large: AdCP packages, targeting, creatives). Tools do not change after
start-up, so ``InlinedSchemas`` inlines each tool once and hands out the same result.

Even inlined, the listing is ~48 kB of nested schemas that the MCP SDK dumps, validates
against the protocol version's surface and dumps again on every request: half of a
tools/list. ``ListingCache`` keeps the finished wire result per protocol version and
visibility class (whether the caller sees the sandbox-only tools) and answers from it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import mcp.types as mt
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool
from fastmcp.utilities.json_schema import dereference_refs


def _has_ref(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "$ref" in schema or "$defs" in schema or any(map(_has_ref, schema.values()))
    if isinstance(schema, list):
        return any(map(_has_ref, schema))
    return False


@contextmanager
def _without_requests() -> Iterator[None]:
    """fastmcp inlines with jsonref, which imports ``requests`` (and urllib3, idna,
    charset_normalizer: ~5 MiB) only to fetch remote ``$ref``s, which fastmcp strips
    before inlining. Without it installed, jsonref resolves local refs the same."""
    if "requests" in sys.modules:
        yield
        return
    sys.modules["requests"] = None  # type: ignore[assignment]  # import fails: jsonref skips it
    try:
        yield
    finally:
        del sys.modules["requests"]


def inline_refs(tool: Tool) -> Tool:
    """A copy of ``tool`` whose input and output schemas carry no ``$ref``."""
    updates: dict[str, Any] = {}
    with _without_requests():
        if _has_ref(tool.parameters):
            updates["parameters"] = dereference_refs(tool.parameters)
        if tool.output_schema is not None and _has_ref(tool.output_schema):
            updates["output_schema"] = dereference_refs(tool.output_schema)
    return tool.model_copy(update=updates) if updates else tool


class InlinedSchemas(Middleware):
    """Replaces fastmcp's per-request dereferencing (``dereference_schemas=False``)."""

    def __init__(self) -> None:
        # Keyed by the listed Tool object itself: a tool re-registered under the same
        # name is a new object, so it is inlined afresh rather than served stale.
        self._inlined: dict[str, tuple[Tool, Tool]] = {}

    def _inline(self, tool: Tool) -> Tool:
        cached = self._inlined.get(tool.key)
        if cached is None or cached[0] is not tool:
            cached = (tool, inline_refs(tool))
            self._inlined[tool.key] = cached
        return cached[1]

    async def on_list_tools(
        self,
        context: MiddlewareContext[mt.ListToolsRequest],
        call_next: CallNext[mt.ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        return [self._inline(tool) for tool in await call_next(context)]


class ListingCache:
    """An MCP SDK server middleware (innermost: it runs inside fastmcp's request
    context, before the handler and the SDK's serialisation) that answers tools/list
    from the finished result of the first identical request.

    ``visibility`` names the caller's class; callers of one class see the same tools.
    A paginated request (``cursor``) is never cached.
    """

    def __init__(self, visibility: Callable[[], Awaitable[Any]]) -> None:
        self._visibility = visibility
        self._results: dict[tuple[str, Any], dict[str, Any]] = {}

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        if ctx.method != "tools/list" or ctx.request_id is None or (ctx.params or {}).get("cursor"):
            return await call_next(ctx)
        key = (ctx.protocol_version, await self._visibility())
        cached = self._results.get(key)
        if cached is None:
            result = await call_next(ctx)
            if not isinstance(result, dict) or "tools" not in result:
                return result  # not the SDK's finished wire dict: do not keep it
            self._results[key] = cached = result
        return dict(cached)  # the SDK copies and stamps the top level; nested is shared
