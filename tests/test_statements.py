"""``db/statements.py``: prebuilt statements run in a session's transaction write and
read what the ORM would, commit and roll back with it, keep their order with the ORM
writes around them, and raise the engine's exception types. (That on SQLite they bypass
the engine's execution machinery is tested in test_fast_reads.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import bindparam, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from adcp_agent.db import statements
from adcp_agent.db.models import AuditLog
from adcp_agent.db.models_events import NotificationDraft, OutboxEvent
from adcp_agent.state import AppState
from tests.databases import Backend

_INSERT_AUDIT = statements.insert_of(AuditLog)
_INSERT_EVENT = statements.insert_of(OutboxEvent)
_INSERT_DRAFT = statements.insert_of(NotificationDraft)
_AUDITS = AuditLog.__table__.c  # type: ignore[attr-defined]
_RENAME = (
    update(AuditLog.__table__)  # type: ignore[arg-type]
    .where(_AUDITS.actor == bindparam("who"))
    .values(action=bindparam("to"))
)
_RENAME_ONE = (
    update(AuditLog.__table__)  # type: ignore[arg-type]
    .where(_AUDITS.action == bindparam("was"))
    .values(action=bindparam("to"))
)
_SYNCHRONOUS_COMMIT = select(func.current_setting("synchronous_commit"))
_BY_ACTOR = select(AuditLog).where(AuditLog.actor == bindparam("who")).order_by(AuditLog.id)


@pytest.fixture
def state(prepared_state: AppState) -> AppState:
    return prepared_state


def _audit(action: str, actor: str = "test", **extra: Any) -> dict[str, Any]:
    return statements.values_of(AuditLog(tenant_id="demo", actor=actor, action=action, **extra))


async def _stored(state: AppState, actor: str = "test") -> list[Any]:
    async with state.db.session() as session:
        return list((await session.exec(_BY_ACTOR, params={"who": actor})).all())


async def test_rows_are_written_with_their_types_and_commit_with_the_transaction(
    state: AppState,
) -> None:
    async with state.db.transaction() as session:
        one = _audit("one", details={"nested": [1, "x"]}, before={"a": None}, success=False)
        assert await statements.execute(session, _INSERT_AUDIT, one) == 1
        await statements.execute(session, _INSERT_AUDIT, [_audit("two"), _audit("3")])
        # The transaction sees its own rows (and the database-assigned keys).
        mine = await statements.fetch(session, _BY_ACTOR, {"who": "test"})
        assert [r.action for r in mine] == ["one", "two", "3"] and mine[0].id is not None
        assert await statements.execute(session, _RENAME, {"who": "test", "to": "renamed"}) == 3
    stored = await _stored(state)
    assert [r.action for r in stored] == ["renamed"] * 3
    first = stored[0]
    assert first.details == {"nested": [1, "x"]} and first.before == {"a": None}
    assert first.success is False and first.after is None
    assert first.created_at == one["created_at"] and first.created_at.tzinfo is not None


async def test_a_failed_transaction_keeps_none_of_its_statements(state: AppState) -> None:
    with pytest.raises(RuntimeError):
        async with state.db.transaction() as session:
            await statements.execute(session, _INSERT_AUDIT, _audit("lost"))
            raise RuntimeError("the caller fails after writing")
    assert await _stored(state) == []
    # The connection went back to the pool usable, and the write lock with it.
    async with state.db.transaction() as session:
        await statements.execute(session, _INSERT_AUDIT, _audit("kept"))
    assert [r.action for r in await _stored(state)] == ["kept"]


async def test_a_duplicate_key_raises_the_engines_integrity_error(state: AppState) -> None:
    event = OutboxEvent(event_id="evt_dup", tenant_id="demo", event_type="x", status="pending",
                        dedupe_key="once")  # fmt: skip
    async with state.db.transaction() as session:
        await statements.execute(session, _INSERT_EVENT, statements.values_of(event))
    again = statements.values_of(event) | {"event_id": "evt_other"}
    with pytest.raises(IntegrityError):
        async with state.db.transaction() as session:
            await statements.execute(session, _INSERT_EVENT, again)


async def test_pending_orm_writes_are_flushed_before_a_statement(state: AppState) -> None:
    """A draft references its event: the event added through the ORM just before must be
    in the database when the draft's INSERT runs (foreign keys are checked at once)."""
    async with state.db.transaction() as session:
        session.add(OutboxEvent(event_id="evt_orm", tenant_id="demo", event_type="x",
                                status="pending"))  # fmt: skip
        draft = NotificationDraft(draft_id="draft_1", tenant_id="demo", event_id="evt_orm",
                                  event_type="x")  # fmt: skip
        await statements.execute(session, _INSERT_DRAFT, statements.values_of(draft))
    async with state.db.session() as session:
        stored = (await session.exec(select(NotificationDraft.event_id))).all()
    assert stored == ["evt_orm"]


async def test_concurrent_writers_each_commit_everything(state: AppState) -> None:
    async def writer(n: int) -> None:
        async with state.db.transaction() as session:
            await statements.execute(session, _INSERT_AUDIT, _audit(f"{n}-a", actor="w"))
            await asyncio.sleep(0.01)  # the other writers run meanwhile
            await statements.execute(session, _INSERT_AUDIT, _audit(f"{n}-b", actor="w"))

    await asyncio.gather(*(writer(n) for n in range(5)))
    actions = sorted(r.action for r in await _stored(state, "w"))
    assert actions == sorted(f"{n}-{x}" for n in range(5) for x in "ab")


async def test_write_transactions_commit_whole_or_not_at_all(state: AppState) -> None:
    async with state.db.write() as tx:
        rows = [statements.build(AuditLog, tenant_id="demo", actor="test", action=a) for a in "12"]
        await statements.insert(tx, *rows)  # several rows of one model
        for row in rows:
            row.action = f"w{row.action}"  # written as they were when inserted
        await statements.execute(
            tx, _RENAME_ONE, [{"was": "1", "to": "w1"}, {"was": "2", "to": "w2"}]
        )
        assert [r.action for r in await statements.fetch(tx, _BY_ACTOR, {"who": "test"})] == [
            "w1",
            "w2",
        ]
    with pytest.raises(RuntimeError):
        async with state.db.write() as tx:
            await statements.execute(tx, _INSERT_AUDIT, _audit("lost"))
            raise RuntimeError("the caller fails after writing")
    event = OutboxEvent(event_id="evt_w", tenant_id="demo", event_type="x", status="pending")
    async with state.db.write() as tx:
        await statements.execute(tx, _INSERT_EVENT, statements.values_of(event))
    with pytest.raises(IntegrityError):
        async with state.db.write() as tx:
            await statements.execute(tx, _INSERT_AUDIT, _audit("before the duplicate"))
            await statements.execute(tx, _INSERT_EVENT, statements.values_of(event))
    assert [r.action for r in await _stored(state)] == ["w1", "w2"]


async def test_write_transactions_and_sessions_take_turns(state: AppState) -> None:
    """Write transactions and ORM sessions writing at the same time (on SQLite they share
    the process's write lock) all commit, none blocks another for good."""

    async def raw(n: int) -> None:
        async with state.db.write() as tx:
            await statements.execute(tx, _INSERT_AUDIT, _audit(f"raw{n}", actor="t"))
            await asyncio.sleep(0.005)
            await statements.execute(tx, _INSERT_AUDIT, _audit(f"raw{n}b", actor="t"))

    async def orm(n: int) -> None:
        async with state.db.transaction() as session:
            session.add(AuditLog(tenant_id="demo", actor="t", action=f"orm{n}"))
            await session.flush()
            await asyncio.sleep(0.005)

    await asyncio.wait_for(
        asyncio.gather(*(raw(n) for n in range(4)), *(orm(n) for n in range(4))), timeout=30
    )
    actions = sorted(r.action for r in await _stored(state, "t"))
    expected = [f"raw{n}" for n in range(4)] + [f"raw{n}b" for n in range(4)]
    assert actions == sorted(expected + [f"orm{n}" for n in range(4)])


def test_build_makes_the_instance_the_constructor_makes() -> None:
    built = statements.build(AuditLog, actor="a", action="b", details={"k": 1})
    made = AuditLog(actor="a", action="b", details={"k": 1})
    mine = statements.values_of(built)
    theirs = statements.values_of(made)
    assert mine.pop("created_at") <= theirs.pop("created_at")  # default_factory: utcnow
    assert mine == theirs
    assert built.success is True and built.target_type == ""  # plain defaults
    built.action = "changed"  # an ORM instance like any other: attributes can be set
    assert built.action == "changed" and statements.values_of(built)["action"] == "changed"
    with pytest.raises(TypeError, match="needs actor"):
        statements.build(AuditLog, action="b")
    with pytest.raises(TypeError, match="has no"):
        statements.build(AuditLog, actor="a", action="b", colour="red")


async def test_a_non_durable_write_skips_only_its_own_wait_for_the_disk(
    state: AppState, backend: Backend
) -> None:
    """``write(durable=False)`` (the idempotency claim): SQLite commits it without an
    fsync (synchronous=NORMAL), PostgreSQL with synchronous_commit off — and the next
    transaction is durable again."""

    async def level(tx: Any) -> str:
        if backend == "sqlite":  # the writer's own connection: 1 = NORMAL, 2 = FULL
            return {1: "off", 2: "on"}[tx._conn._conn.execute("PRAGMA synchronous").fetchone()[0]]
        [(setting,)] = await statements.fetch(tx, _SYNCHRONOUS_COMMIT, {})
        return str(setting)

    if backend == "postgres":  # the test cluster runs with synchronous_commit=off
        name = state.db.engine.url.database
        async with state.db.engine.connect() as conn:
            await conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO on'))
            await conn.commit()
        # New connections take the database's setting.
        await state.db.engine.dispose()
        assert state.db.pg is not None
        await state.db.pg.close()
    async with state.db.write(durable=False) as tx:
        await statements.execute(tx, _INSERT_AUDIT, _audit("claim"))
        assert await level(tx) == "off"
    async with state.db.write() as tx:
        await statements.execute(tx, _INSERT_AUDIT, _audit("booking"))
        assert await level(tx) == "on"
    assert [r.action for r in await _stored(state)] == ["claim", "booking"]
