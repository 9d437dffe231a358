"""The seam between core and the MCP tool layer.

REST surfaces (chat, ``/api/tools``) run the very same tools as MCP clients, with the same
validation, errors and tenant scoping. Core may not import the tool layer, so it talks to
this protocol; the composition root (``adcp_agent.server``) passes the implementation in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from adcp_agent.services.identity import Caller


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool


@dataclass(frozen=True)
class ToolOutcome:
    is_error: bool
    data: dict[str, Any]  # the AdCP structured payload (errors included on failure)


class ToolExecutor(Protocol):
    async def list_tools(self) -> list[ToolSpec]: ...

    async def call(self, caller: Caller, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run a tool as ``caller`` (already authenticated by the REST layer)."""
        ...
