"""Group commit (db/group_commit.py): units that arrive together share one transaction,
each in its own savepoint; a failing unit fails alone; a failed commit fails them all,
and nothing is acknowledged before the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.group_commit import GroupCommit
from adcp_agent.db.models import AuditLog
from adcp_agent.state import AppState


@pytest.fixture
def state(prepared_state: AppState) -> AppState:
    return prepared_state


def _write(action: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
    async def work(session: AsyncSession) -> str:
        session.add(AuditLog(tenant_id="demo", actor="test", action=action))
        await session.flush()
        if fail:
            raise ValueError(f"{action} refused")
        return action

    return work


async def _actions(state: AppState) -> list[str]:
    async with state.db.session() as session:
        rows = (await session.exec(select(AuditLog.action).where(AuditLog.actor == "test"))).all()
    return sorted(rows)


async def test_units_of_a_batch_commit_together_and_a_failing_one_alone(state: AppState) -> None:
    group = GroupCommit(state.db)
    results = await asyncio.gather(
        group.run(_write("a")),
        group.run(_write("b", fail=True)),
        group.run(_write("c")),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], ValueError)
    assert await _actions(state) == ["a", "c"]


async def test_a_failed_commit_fails_every_unit_of_the_batch(
    state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = state.db.transaction

    @asynccontextmanager
    async def failing_commit() -> AsyncIterator[AsyncSession]:
        async with real() as session:
            yield session
            raise OSError("disk full")  # rolls the transaction back, like a failed COMMIT

    monkeypatch.setattr(state.db, "transaction", failing_commit)
    group = GroupCommit(state.db)
    results = await asyncio.gather(
        group.run(_write("x")), group.run(_write("y")), return_exceptions=True
    )
    assert [type(r) for r in results] == [OSError, OSError]
    monkeypatch.undo()
    assert await _actions(state) == []
    # The next batch works again.
    assert await group.run(_write("z")) == "z"
    assert await _actions(state) == ["z"]
