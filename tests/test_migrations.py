"""Migrations: up from empty, idempotent, and in step with the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.db import load_all_models
from adcp_agent.db.engine import create_database
from adcp_agent.db.migrate import current_revision, upgrade_to_head
from adcp_agent.services.bootstrap import ensure_demo

load_all_models()


async def test_upgrade_from_empty_creates_every_table(tmp_path: Path) -> None:
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert await current_revision(db) is None
        await upgrade_to_head(db)
        head = await current_revision(db)
        await upgrade_to_head(db)  # a second run is a no-op
        assert await current_revision(db) == head is not None
        async with db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            diffs = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), SQLModel.metadata)
            )
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    finally:
        await db.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert diffs == [], f"models and migrations disagree: {diffs}"
    # Durability settings: WAL with FULL sync (2) — a commit is on disk when acknowledged.
    assert journal == "wal" and sync == 2


async def test_restart_keeps_existing_data(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keep.db'}"
    registry = AdapterRegistry()
    db = create_database(url)
    await upgrade_to_head(db)
    first = await ensure_demo(db, registry, None)
    await db.dispose()

    db = create_database(url)
    await upgrade_to_head(db)
    second = await ensure_demo(db, registry, None)
    fixed = await ensure_demo(db, registry, "adcp_fixed_demo_token_for_scripts_01")
    from adcp_agent.services.identity import authenticate

    caller = await authenticate(db, "adcp_fixed_demo_token_for_scripts_01")
    await db.dispose()
    assert first.created and first.token
    assert not second.created and second.token is None
    assert fixed.token == "adcp_fixed_demo_token_for_scripts_01"
    assert caller.principal_id == "demo_buyer"
