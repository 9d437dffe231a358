"""A small stand-in for fastmcp's session-state store.

fastmcp keeps per-session state (visibility rules, ``ctx.set_state``) in a key-value
store and reads the visibility rules on every tools/list and tools/call. Its default
store is py-key-value's MemoryStore behind a pydantic adapter, which imports beartype
and ~400 modules (~14 MiB of a server's memory) on the first request and runs
beartype-checked code on every one. We serve MCP statelessly over HTTP and use none of
that state, so this keeps the same three calls (``get``/``put``/``delete``) in a
bounded dict: whatever fastmcp stores still reads back within the process.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from fastmcp import FastMCP


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
    """FastMCP with the bounded state store above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._light_state = BoundedStateStore()

    @property
    def _state_store(self) -> Any:  # type: ignore[override]
        return self._light_state
