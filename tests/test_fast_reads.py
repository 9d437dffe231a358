"""``db/fast_reads.py``: the statements it serves come back exactly as through the
engine (same values, same Python types: aware datetimes, dates, decoded JSON, bools),
it sees every commit at once, and whatever it cannot serve — expanding parameters, a
statement built per call past the plan limit, a busy or broken read — goes through the
engine instead of failing."""

from __future__ import annotations

import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, update

from adcp_agent.config import Settings
from adcp_agent.db import fast_reads, statements
from adcp_agent.db.models import AuditLog, Principal
from adcp_agent.db.models_delivery import DeliveryHour, DeliveryWatermark, PacingAlert
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.db.types import utcnow
from adcp_agent.server import prepare
from adcp_agent.services import delivery, delivery_reports, identity, media_reads
from adcp_agent.state import AppState
from tests.support import DEMO_TOKEN

BENCHMARKS = str(Path(__file__).resolve().parent.parent / "benchmarks")


@pytest.fixture
async def state(tmp_path: Path) -> Any:
    sys.path.insert(0, BENCHMARKS)
    from seed_buys import seed

    settings = Settings(data_dir=tmp_path, demo_token=DEMO_TOKEN)
    app_state = AppState.from_settings(settings)
    await prepare(app_state)
    await seed(settings.resolved_database_url(), 5)
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    async with app_state.db.transaction() as session:
        for i in range(5):
            buy_id, package_id = f"mb_seed{i:08d}", f"pkg_seed{i:08d}"
            session.add(DeliveryHour(tenant_id="demo", media_buy_id=buy_id, source="tracking",
                                     package_id=package_id, hour=hour - timedelta(hours=i),
                                     impressions=10 * i, spend=i / 4))  # fmt: skip
            session.add(DeliveryWatermark(media_buy_id=buy_id, tenant_id="demo",
                                          materialised_until=hour))  # fmt: skip
            session.add(PacingAlert(tenant_id="demo", principal_id="demo_buyer",
                                    media_buy_id=buy_id, day=date(2031, 1, 1 + i),
                                    kind="underpacing", severity="warning", pacing_index=0.5,
                                    expected_spend=10.0, actual_spend=5.0, message="m",
                                    recommendation="r", observed_at=now))  # fmt: skip
    yield app_state
    await app_state.db.dispose()


def _typed(rows: Any) -> list[list[tuple[type, Any]]]:
    return [[(type(v), v) for v in row] for row in rows]


async def test_the_served_statements_read_what_the_engine_reads(state: AppState) -> None:
    db = state.db
    assert db.fast is not None
    ids = [f"mb_seed{i:08d}" for i in range(3)]
    owner = {"tenant": "demo", "principal": "demo_buyer"}
    cut = utcnow().replace(minute=0, second=0, microsecond=0)
    async with db.session() as session:
        [token_hash] = (await session.exec(select(Principal.token_hash))).first()
    statements = [
        (identity._TOKEN_LOOKUP, {"digest": token_hash}),
        media_reads._BUYS_BY_ID.bind(ids, **owner),
        media_reads._PACKAGES_OF.bind(ids),
        delivery_reports._HOURS_OF.bind(ids),
        delivery_reports._DAYS_OF.bind(ids, cut=cut),
        delivery_reports._ALERTS_OF.bind(ids),
        delivery._WATERMARKS_OF.bind(ids),
    ]
    for statement, params in statements:
        plan = db.fast.plan(statement)
        assert plan is not None, statement
        fast = db.fast.run(plan, params)
        async with db.engine.connect() as conn:
            slow = (await conn.execute(statement, params)).all()
        assert fast and _typed(fast) == _typed(slow), statement
        assert [r._fields for r in fast[:1]] == [tuple(slow[0]._fields)]
    # Aware datetimes, dates, decoded JSON and bools, as the models promise.
    [buy] = db.fast.run(*_bound(db, media_reads._BUYS_BY_ID.bind(ids[:1], **owner)))
    assert buy.created_at.tzinfo is not None and isinstance(buy.brand, dict)
    assert buy.sandbox is False
    [alert] = db.fast.run(*_bound(db, delivery_reports._ALERTS_OF.bind(ids[:1])))
    assert alert.day == date(2031, 1, 1)


def _bound(db: Any, bound: tuple[Any, dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    statement, params = bound
    return db.fast.plan(statement), params


async def test_a_commit_is_read_at_once(state: AppState) -> None:
    caller = await identity.authenticate(state.db, DEMO_TOKEN)
    assert caller.principal_id == "demo_buyer"
    async with state.db.transaction() as session:
        await session.exec(
            update(Principal)
            .where(Principal.principal_id == "demo_buyer")
            .values(revoked_at=utcnow())  # type: ignore[arg-type]
        )
    with pytest.raises(Exception, match="invalid|revoked"):
        await identity.authenticate(state.db, DEMO_TOKEN)


async def test_what_it_cannot_serve_goes_through_the_engine(
    state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = state.db
    assert db.fast is not None
    ids = [f"mb_seed{i:08d}" for i in range(6)]
    expanding, params = media_reads._PACKAGES_OF.bind(ids)  # six ids: an expanding IN
    assert db.fast.plan(expanding) is None
    assert len(await db.read(expanding, params)) == 5  # five seeded, one unknown id

    monkeypatch.setattr(fast_reads, "MAX_PLANS", len(db.fast._plans))
    per_call = select(MediaBuy.media_buy_id).where(MediaBuy.state == bindparam("s"))
    assert db.fast.plan(per_call) is None  # past the limit: not planned, not kept
    assert len(await db.read(per_call, {"s": "live"})) >= 1

    def busy(*_args: Any, **_kw: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    statement, params = media_reads._BUYS_BY_ID.bind(ids[:2], tenant="demo", principal="demo_buyer")
    monkeypatch.setattr(db.fast, "run", busy)
    assert sorted(b.media_buy_id for b in await db.read(statement, params)) == ids[:2]


async def test_statements_in_a_transaction_bypass_the_engine(state: AppState) -> None:
    """db.statements runs its plans on the transaction's own sqlite3 connection."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        seen.append(sql)

    insert_audit = statements.insert_of(AuditLog)
    by_actor = select(AuditLog.action).where(AuditLog.actor == bindparam("who"))
    event.listen(state.db.engine.sync_engine, "before_cursor_execute", before)
    try:
        async with state.db.transaction() as session:
            row = AuditLog(tenant_id="demo", actor="fast", action="written")
            await statements.execute(session, insert_audit, statements.values_of(row))
            rows = await statements.fetch(session, by_actor, {"who": "fast"})
        async with state.db.write() as tx:  # no session at all
            row = AuditLog(tenant_id="demo", actor="fast", action="again")
            await statements.execute(tx, insert_audit, statements.values_of(row))
            rows += await statements.fetch(tx, by_actor, {"who": "fast"})
    finally:
        event.remove(state.db.engine.sync_engine, "before_cursor_execute", before)
    assert [r.action for r in rows] == ["written", "written", "again"]
    assert seen == []  # no statement went through the engine
