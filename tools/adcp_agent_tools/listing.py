"""tools/list with self-contained schemas, computed once.

Some MCP clients cannot follow JSON Schema ``$ref``, so every schema we list has its
``$defs`` inlined. fastmcp's own ``DereferenceRefsMiddleware`` does that on every
tools/list request, which made tools/list cost about fourteen no-op tool calls (our
schemas are large: AdCP packages, targeting, creatives). Tools do not change after
start-up, so this middleware inlines each tool once and hands out the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def inline_refs(tool: Tool) -> Tool:
    """A copy of ``tool`` whose input and output schemas carry no ``$ref``."""
    updates: dict[str, Any] = {}
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
