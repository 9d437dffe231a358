"""``Database.reading``: a session for reads. On PostgreSQL it reads without a
transaction — no BEGIN and no ROLLBACK, two round trips fewer — and on either database
a write in it fails loudly instead of being lost or committed one statement at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from adcp_agent.db import statements
from adcp_agent.db.models import AuditLog, Tenant
from adcp_agent.db.statements import ReadOnlyError
from adcp_agent.state import AppState
from tests.databases import Backend
from tests.test_statements import _RENAME_ONE as _RENAME


@pytest.fixture
def state(prepared_state: AppState) -> AppState:
    return prepared_state


async def _audits(state: AppState) -> list[str]:
    async with state.db.session() as session:
        mine = select(AuditLog.action).where(AuditLog.actor == "test")
        return list((await session.exec(mine)).all())


async def test_a_reading_session_reads_what_is_committed(state: AppState) -> None:
    async with state.db.transaction() as session:
        session.add(AuditLog(tenant_id="demo", actor="test", action="kept"))
    async with state.db.reading() as session:
        [tenant] = (await session.exec(select(Tenant).where(Tenant.tenant_id == "demo"))).all()
        actions = (
            await session.exec(select(AuditLog.action).where(AuditLog.actor == "test"))
        ).all()
    assert tenant.name and actions == ["kept"]


async def test_a_write_in_a_reading_session_raises_and_stores_nothing(state: AppState) -> None:
    async with state.db.transaction() as session:
        session.add(AuditLog(tenant_id="demo", actor="test", action="one"))
    with pytest.raises(ReadOnlyError):
        async with state.db.reading() as session:
            session.add(AuditLog(tenant_id="demo", actor="test", action="added"))
            await session.flush()
    with pytest.raises(ReadOnlyError):
        async with state.db.reading() as session:
            await session.exec(_RENAME, params={"was": "one", "to": "renamed"})  # type: ignore[call-overload]
    with pytest.raises(ReadOnlyError):
        async with state.db.reading() as session:
            await statements.execute(session, _RENAME, {"was": "one", "to": "renamed"})
    with pytest.raises(ReadOnlyError):
        async with state.db.reading() as session:
            audit = AuditLog(tenant_id="demo", actor="test", action="inserted")
            await statements.insert(session, audit)
    assert await _audits(state) == ["one"]


@pytest.fixture
def transaction_statements(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> Iterator[list[str]]:
    """The BEGINs and ROLLBACKs asyncpg sends (SELECTs go as prepared statements)."""
    if backend != "postgres":
        pytest.skip("round trips are PostgreSQL's")
    import asyncpg

    sent: list[str] = []
    original = asyncpg.Connection.execute

    async def execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if query.split()[0].rstrip(";") in ("BEGIN", "ROLLBACK", "COMMIT"):
            sent.append(query.split()[0].rstrip(";"))
        return await original(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "execute", execute)
    yield sent


async def test_on_postgresql_a_reading_session_sends_no_begin_or_rollback(
    state: AppState, transaction_statements: list[str]
) -> None:
    async with state.db.session() as session:  # the ordinary session, for comparison
        await session.exec(select(Tenant.name))
        await session.exec(select(AuditLog.action))
    assert transaction_statements == ["BEGIN", "ROLLBACK"]
    transaction_statements.clear()
    async with state.db.reading() as session:
        await session.exec(select(Tenant.name))
        await session.exec(select(AuditLog.action))
    assert transaction_statements == []
