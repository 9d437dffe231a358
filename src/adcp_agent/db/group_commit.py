"""Group commit: units of work that arrive while a commit is in flight share the next
transaction, so one durable commit (one fsync on SQLite) acknowledges many of them.

Each unit runs in its own savepoint: a unit that fails (a duplicate key, a refused
value) is rolled back alone and its caller gets the exception, while the others in the
batch commit. A caller's result is handed back only after the batch has committed; if
the commit fails, every caller in the batch gets that failure, so nothing is
acknowledged that was not stored. A unit arriving while nothing is in flight starts a
batch at once: there is no waiting window, a lone unit costs what its own transaction
would.

Units of one batch run one after another on one session and see each other's writes
(a budget check sees the spend of the events committed before it in the batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]

MAX_BATCH = 64


class GroupCommit:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self.loop = asyncio.get_running_loop()
        self._queue: list[tuple[Work, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in the next batch; its result once the batch has committed."""
        future: asyncio.Future[T] = self.loop.create_future()
        # Retrieved even when its caller has gone (no "exception never retrieved").
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append((work, future))
        if self._drainer is None:
            self._drainer = self.loop.create_task(self._drain())
        # The batch commits whether or not this caller still waits (a client that
        # hung up): shield the shared work from the caller's cancellation.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._commit(batch)
        finally:
            self._drainer = None
            for _, future in self._queue:  # cancelled at shutdown: nobody is left waiting
                if not future.done():
                    future.set_exception(RuntimeError("the server is shutting down"))
            self._queue.clear()

    async def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            async with self.db.transaction() as session:
                if self.db.is_sqlite:
                    # SQLite's Python driver opens a transaction only before a write: the
                    # first SAVEPOINT would open it instead, and releasing that savepoint
                    # would commit each unit on its own. Open it explicitly.
                    await (await session.connection()).exec_driver_sql("BEGIN IMMEDIATE")
                for work, future in batch:
                    try:
                        async with session.begin_nested():
                            outcomes.append((future, await work(session), None))
                    except Exception as exc:  # this unit only: its savepoint is rolled back
                        outcomes.append((future, None, exc))
        except BaseException as exc:  # the commit failed: nothing of the batch is stored
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, value, error in outcomes:
            if future.done():
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)
