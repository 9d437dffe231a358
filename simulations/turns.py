"""Buyers who compete for the same inventory book one at a time, in buyer order, so a
seeded run resolves the contention the same way every time: buyer 2 finds what buyer 1
booked (and may be refused and buy again), never the other way round by chance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Turns:
    def __init__(self) -> None:
        self._left: set[int] = set()  # buyers who had their turn or will never take it
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def turn(self, buyer: int) -> AsyncIterator[None]:
        """Wait until every buyer before ``buyer`` (1-based) has left."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._left.issuperset(range(1, buyer)))
        try:
            yield
        finally:
            await self.leave(buyer)

    async def leave(self, buyer: int) -> None:
        """``buyer`` is done with its turn, or gave up before it (idempotent)."""
        async with self._changed:
            self._left.add(buyer)
            self._changed.notify_all()
