"""PostgreSQL as production runs it: two server processes (``adcp-agent serve``) on one
database, started together on an empty database, serving the same tenant, with
idempotent creates racing across both processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from adcp_agent.config import Settings
from adcp_agent.db.engine import create_database
from adcp_agent.db.models_delivery import DeliveryHour
from adcp_agent.db.models_media import IdempotencyRecord, MediaBuy, Package
from adcp_agent.server import prepare
from adcp_agent.services import tracking
from adcp_agent.state import AppState
from tests.databases import SELECTION, PostgresUnavailable
from tests.media_helpers import non_guaranteed
from tests.support import call, free_port, mcp_client

TOKEN = "adcp_two_process_token_0123456789abcdef"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


@pytest.fixture
def postgres_url() -> str:
    try:
        url = SELECTION.postgres().create_database("multi")
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL: {exc}")
    SELECTION.postgres_tests += 1
    return url


def _stable(buys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A buy as any process reports it (``status_as_of`` is the time of the answer)."""
    return [{k: v for k, v in buy.items() if k != "status_as_of"} for buy in buys]


@contextmanager
def _servers(database_url: str, count: int) -> Iterator[list[str]]:
    """``count`` ``adcp-agent serve`` processes on one database, started at once."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADCP_AGENT_DEMO_TOKEN": TOKEN,
        "ADCP_AGENT_LOG_LEVEL": "warning",
        # Replicas behind one load balancer share one public URL (used in agent_url).
        "ADCP_AGENT_PUBLIC_BASE_URL": "http://agents.example",
    }
    ports = [free_port() for _ in range(count)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "adcp_agent.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        pending = set(ports)
        while pending and time.monotonic() < deadline:
            for proc, port in zip(procs, ports, strict=True):
                if proc.poll() is not None:
                    raise AssertionError(f"serve exited early:\n{proc.communicate()[0]}")
                if port in pending:
                    try:
                        url = f"http://127.0.0.1:{port}/health"
                        if httpx.get(url, timeout=1).status_code == 200:
                            pending.discard(port)
                    except httpx.HTTPError:
                        pass
            time.sleep(0.05)
        assert not pending, "serve did not answer /health within 60 s"
        yield [f"http://127.0.0.1:{port}/mcp/" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


async def test_two_processes_serve_one_tenant_and_create_a_keyed_buy_once(
    postgres_url: str,
) -> None:
    args = non_guaranteed(budget=2500)
    with _servers(postgres_url, 2) as (first, second):
        async with mcp_client(first, TOKEN) as a, mcp_client(second, TOKEN) as b:
            results = await asyncio.gather(
                *(call(client, "create_media_buy", args) for client in (a, b, a, b, a, b))
            )
            media_buy_id = results[0].data.get("media_buy_id")
            seen_by_a = await call(a, "get_media_buys", {"media_buy_ids": [media_buy_id]})
            seen_by_b = await call(b, "get_media_buys", {"media_buy_ids": [media_buy_id]})
            products_a = await call(a, "get_products", {"buying_mode": "wholesale"})
            products_b = await call(b, "get_products", {"buying_mode": "wholesale"})

    assert all(not r.is_error for r in results), [r.data for r in results]
    assert {r.data["media_buy_id"] for r in results} == {media_buy_id}
    assert sum(1 for r in results if r.data.get("replayed")) == len(results) - 1
    assert _stable(seen_by_a.data["media_buys"]) == _stable(seen_by_b.data["media_buys"])
    assert [m["media_buy_id"] for m in seen_by_b.data["media_buys"]] == [media_buy_id]
    assert products_a.data["pagination"]["total_count"] == 11
    assert products_a.data["products"] == products_b.data["products"]

    db = create_database(postgres_url)
    try:
        async with db.session() as session:
            buys = (await session.exec(select(MediaBuy))).all()
            claims = (await session.exec(select(IdempotencyRecord))).all()
    finally:
        await db.dispose()
    assert [b.media_buy_id for b in buys] == [media_buy_id]
    assert [(c.key, c.status) for c in claims] == [(args["idempotency_key"], "completed")]


async def test_racing_first_events_of_an_hour_both_count(postgres_url: str) -> None:
    """Two transactions (two processes, in production) counting the first events of a
    package's hour at once: the second waits for the first and adds to its row. With an
    update-then-insert, the second found no row, then collided with the first's insert
    and answered 409 for an event never seen."""
    from seed_buys import seed

    settings = Settings(data_dir=Path("/nonexistent"), demo_token=TOKEN, DATABASE_URL=postgres_url)
    state = AppState.from_settings(settings)
    await prepare(state)
    await seed(settings.resolved_database_url(), 1)
    hour = datetime(2030, 1, 1, 10, tzinfo=UTC)
    try:
        async with state.db.session() as session:
            package = (await session.exec(select(Package))).one()
        async with state.db.transaction() as first:
            await tracking._count(first, "demo", package, hour, "impression", 0.004)

            async def second() -> None:
                async with state.db.transaction() as session:
                    await tracking._count(session, "demo", package, hour, "click", 0.5)

            racing = asyncio.create_task(second())
            await asyncio.sleep(0.3)  # the second reaches the hour's row (and waits)
        await racing  # the first committed as its block ended; the second then follows
        async with state.db.session() as session:
            hours = (await session.exec(select(DeliveryHour))).all()
    finally:
        await state.db.dispose()
    assert [(h.impressions, h.clicks, round(h.spend, 3)) for h in hours] == [(1, 1, 0.504)]


async def _terminate_other_backends(url: str) -> int:
    """What a PostgreSQL restart (or an idle-session timeout) does to pooled connections.
    Termination is a signal: wait until those backends have exited."""
    from sqlalchemy import text

    admin = create_database(url)
    try:
        async with admin.engine.connect() as conn:
            pids = [
                pid
                for (pid,) in await conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            ]
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await conn.commit()
            for _ in range(500):
                alive = await conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": pids},
                )
                await conn.commit()  # a fresh snapshot of pg_stat_activity each time
                if alive.scalar_one() == 0:
                    break
                await asyncio.sleep(0.01)
            return len(pids)
    finally:
        await admin.dispose()


async def test_a_pooled_connection_that_died_while_idle_is_replaced_unnoticed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pooled connections are pinged only after sitting idle (``IDLE_PING_SECONDS``),
    not at every use: a connection the server dropped meanwhile is replaced before a
    request sees it. Without the ping its statement fails, and the pool then retires
    every connection of before the failure, so the next statement succeeds."""
    from sqlalchemy import text

    from adcp_agent.db import engine as engine_module

    db = create_database(postgres_url)
    try:

        async def one() -> int:
            async with db.engine.connect() as conn:
                return (await conn.execute(text("SELECT 1"))).scalar_one()

        assert await one() == 1  # a pooled, now idle, connection
        monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
        assert await _terminate_other_backends(postgres_url) >= 1
        assert await one() == 1  # pinged, found dead, replaced

        monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 3600.0)
        assert await _terminate_other_backends(postgres_url) >= 1
        with pytest.raises(Exception, match="closed|terminat|connection"):
            await one()  # not pinged: the dead connection fails its statement
        assert await one() == 1  # and the pool has moved on
    finally:
        await db.dispose()


async def test_reads_run_outside_a_transaction(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Database.read`` (the token lookup of every call, a report's reads) runs its one
    SELECT outside a transaction — no BEGIN before it and no ROLLBACK after it, a round
    trip each: a statement built once straight on asyncpg (``PgFast``, not through the
    engine), any other in autocommit through the engine. Work in a session still runs
    in a transaction."""
    import asyncpg
    from sqlalchemy import bindparam, event, literal, text

    db = create_database(postgres_url)
    engine_reads: list[bool] = []
    fast_reads: list[bool] = []

    def after(_conn: Any, cursor: Any, *_rest: Any) -> None:
        engine_reads.append(cursor._adapt_connection._connection.is_in_transaction())

    fetch = asyncpg.Connection.fetch

    async def spying(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        fast_reads.append(self.is_in_transaction())
        return await fetch(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", spying)
    event.listen(db.engine.sync_engine, "after_cursor_execute", after)
    try:
        statement = select(literal(1).label("one"))
        assert [r.one for r in await db.read(statement, {})] == [1]
        assert (fast_reads, engine_reads) == ([False], [])
        # A list parameter (expanding): compiled per call, so the engine runs it.
        listed = select(literal(1).label("one")).where(literal(2).in_(bindparam("xs")))
        assert [r.one for r in await db.read(listed, {"xs": [1, 2]})] == [1]
        assert (fast_reads, engine_reads) == ([False], [False])
        async with db.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        assert engine_reads == [False, True]
        assert [r.one for r in await db.read(statement, {})] == [1]  # pooled: still outside
        assert (fast_reads, engine_reads) == ([False, False], [False, True])
    finally:
        event.remove(db.engine.sync_engine, "after_cursor_execute", after)
        await db.dispose()


async def test_direct_connections_are_bounded_and_survive_a_restart(postgres_url: str) -> None:
    """``PgFast``'s own connections: more concurrent reads than connections wait their
    turn (no more than ``size`` are opened); connections the server dropped while idle
    are replaced, the read or BEGIN that found one retried; a write transaction cancelled in the
    middle of a statement leaves nothing half-done and no connection mid-transaction, a
    read cancelled mid-statement no connection still busy with it."""
    from sqlalchemy import Column, MetaData, String, Table, bindparam, func, insert, literal

    from adcp_agent.db import statements
    from adcp_agent.db.pg_fast import PgFast

    notes = Table("pg_fast_notes", MetaData(), Column("action", String(20)))
    add = insert(notes).values(action=bindparam("action"))
    actions = select(notes.c.action)
    slow = select(func.pg_sleep(0.05), literal(1).label("one"))
    db = create_database(postgres_url)
    assert isinstance(db.pg, PgFast)
    db.pg._size = 3  # noqa: SLF001 - a small set to exceed
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(notes.metadata.create_all)
        rows = await asyncio.gather(*(db.read(slow, {}) for _ in range(10)))
        assert [r[0].one for r in rows] == [1] * 10
        assert db.pg._open_count == 3  # noqa: SLF001
        assert await _terminate_other_backends(postgres_url) >= 3
        assert [r.one for r in await db.read(slow, {})] == [1]  # dead ones, then a new one
        await asyncio.gather(*(db.read(slow, {}) for _ in range(3)))  # three open again
        assert await _terminate_other_backends(postgres_url) >= 3
        async with db.write() as tx:  # its BEGIN found a dead one: retried on a new one
            await statements.execute(tx, add, {"action": "after a restart"})

        async def cancelled_write() -> None:
            async with db.write() as tx:
                await statements.execute(tx, add, {"action": "half"})
                await statements.fetch(tx, slow, {})  # cancelled in here

        task = asyncio.create_task(cancelled_write())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.write() as tx:
            await statements.execute(tx, add, {"action": "whole"})
        reading = asyncio.create_task(db.read(slow, {}))  # a client gone mid-read
        await asyncio.sleep(0.02)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        rows = await asyncio.gather(*(db.read(slow, {}) for _ in range(6)))  # every connection
        assert [r[0].one for r in rows] == [1] * 6
        assert sorted(r.action for r in await db.read(actions, {})) == ["after a restart", "whole"]
        assert db.pg._open_count <= 3  # noqa: SLF001
    finally:
        await db.dispose()


def test_direct_connections_take_the_urls_connection_options() -> None:
    """What the URL says for SQLAlchemy's asyncpg connections holds for ``PgFast``'s:
    host, port, database, credentials, TLS, and a statement cache turned off for a
    pooler that cannot keep prepared statements."""
    from adcp_agent.db.pg_fast import connect_options

    db = create_database(
        "postgresql+asyncpg://ad:pw@db.example:6432/adcp?ssl=require&prepared_statement_cache_size=0"
    )
    assert connect_options(db.engine) == {
        "host": "db.example", "port": 6432, "database": "adcp", "user": "ad", "password": "pw",
        "ssl": "require", "statement_cache_size": 0,
    }  # fmt: skip
    plain = create_database("postgresql+asyncpg://ad@db.example/adcp")
    assert "statement_cache_size" not in connect_options(plain.engine)
