"""Migrations: up from empty, idempotent, and in step with the models — on SQLite and on
PostgreSQL (this module runs on both backends; see tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.db import load_all_models
from adcp_agent.db.engine import create_database
from adcp_agent.db.migrate import current_revision, is_current, tree_heads, upgrade_to_head
from adcp_agent.services.bootstrap import ensure_demo
from tests.databases import Backend, database_settings

load_all_models()
BENCHMARKS = str(Path(__file__).resolve().parent.parent / "benchmarks")


def _alembic(action: Any, revision: str) -> Any:
    """``action`` (alembic.command.upgrade/downgrade) to ``revision``, for run_sync."""

    def run(connection: Any) -> None:
        from adcp_agent.db.migrate import alembic_config

        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg, revision)

    return run


async def _upgraded_rows(db: Any, sql: str) -> list[Any]:
    """``upgrade_to_head`` and then the rows of ``sql``: what a migration left behind."""
    from sqlalchemy import text

    await upgrade_to_head(db)
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


def _url(tmp_path: Path, name: str, backend: Backend) -> str:
    """A new empty database: an SQLite file, or a fresh Postgres database."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"
    return database_settings(tmp_path, backend, migrated=False)["DATABASE_URL"]


async def test_upgrade_from_empty_creates_every_table(tmp_path: Path, backend: Backend) -> None:
    db = create_database(_url(tmp_path, "fresh", backend))
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
            if backend == "sqlite":
                journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    finally:
        await db.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert diffs == [], f"models and migrations disagree: {diffs}"
    if backend != "sqlite":
        return
    # Durability settings: WAL with FULL sync (2) — a commit is on disk when acknowledged.
    assert journal == "wal" and sync == 2


async def test_restart_keeps_existing_data(tmp_path: Path, backend: Backend) -> None:
    url = _url(tmp_path, "keep", backend)
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


async def test_accounts_migration_backfills_default_accounts(
    tmp_path: Path, backend: Backend
) -> None:
    """Principals created before accounts existed get a default account on upgrade."""
    from alembic import command
    from sqlalchemy import text

    db = create_database(_url(tmp_path, "old", backend))
    async with db.engine.begin() as conn:
        await conn.run_sync(_alembic(command.upgrade, "0001"))
        await conn.execute(
            text(
                "INSERT INTO tenants (tenant_id, name, subdomain, ad_server, adapter_config, "
                "features, publisher_domains, public_discovery, created_at, updated_at) VALUES "
                "('t1', 'T', 't1', 'mock', '{}', '{}', '[]', TRUE, '2026-01-01', '2026-01-01')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO principals (principal_id, tenant_id, name, token_hash, token_hint, "
                "role, platform_mappings, created_at) VALUES ('p1', 't1', 'Old Buyer', 'h', "
                "'adcp_', 'buyer', '{}', '2026-01-01')"
            )
        )
    rows = await _upgraded_rows(
        db,
        "SELECT a.name, a.is_default, l.principal_id FROM accounts a "
        "JOIN account_principals l ON l.account_id = a.account_id",
    )
    await db.dispose()
    assert rows == [("Old Buyer (default)", True, "p1")]  # SQLite answers 1: equal


def test_the_heads_read_without_alembic_are_alembics_heads() -> None:
    from alembic.script import ScriptDirectory

    from adcp_agent.db.migrate import alembic_config, tree_heads

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert tree_heads() == frozenset(heads) and len(heads) > 1


def _python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_a_current_database_is_started_without_loading_alembic(
    tmp_path: Path, backend: Backend
) -> None:
    """``serve`` migrates in a child process (``python -m adcp_agent.db.migrate``) and
    the server, on a current database, never imports Alembic (~13 MiB it would keep)."""
    url = _url(tmp_path, "lean", backend)
    env = {**os.environ, "ADCP_AGENT_MIGRATE_URL": url}
    done = _python("-m", "adcp_agent.db.migrate", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    probe = _python(
        "-c",
        "import asyncio, os, sys\n"
        "from adcp_agent.db.engine import create_database\n"
        "from adcp_agent.db.migrate import is_current, upgrade_to_head\n"
        "async def main():\n"
        "    db = create_database(os.environ['ADCP_AGENT_MIGRATE_URL'])\n"
        "    print(await is_current(db))\n"
        "    await upgrade_to_head(db)\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n",
        env=env,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["True", "False"]
    db = create_database(url)
    try:
        async with db.engine.begin() as conn:
            head = max(tree_heads())  # any one of them
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_unknown' "
                                       f"WHERE version_num = '{head}'")  # fmt: skip
        assert not await is_current(db)
    finally:
        await db.dispose()
    failed = _python("-m", "adcp_agent.db.migrate", env=env)
    assert failed.returncode != 0 and "9999_unknown" in failed.stderr


async def test_buys_already_announced_as_completed_are_marked_on_upgrade(
    tmp_path: Path, backend: Backend
) -> None:
    """0016 backfills ``completion_announced_at`` from the campaign.completed events that
    exist, so the outbox worker's flight-end scan starts with only the unannounced."""
    from alembic import command

    sys.path.insert(0, BENCHMARKS)
    from seed_buys import seed

    url = _url(tmp_path, "announced", backend)
    db = create_database(url)
    try:
        await upgrade_to_head(db)
        await ensure_demo(db, AdapterRegistry(), None)
        await seed(url, 300)

        async with db.engine.begin() as conn:
            await conn.run_sync(_alembic(command.downgrade, "0015_package_flight"))
            columns = await conn.run_sync(lambda c: inspect(c).get_columns("media_buys"))
        assert "completion_announced_at" not in {c["name"] for c in columns}
        rows = await _upgraded_rows(
            db,
            "SELECT b.completion_announced_at, e.created_at, b.state FROM media_buys b "
            "LEFT JOIN outbox_events e ON e.media_buy_id = b.media_buy_id "
            "AND e.event_type = 'campaign.completed'",
        )
    finally:
        await db.dispose()
    announced = [r for r in rows if r[1] is not None]
    assert len(rows) == 300 and 150 < len(announced) < 300
    assert all(str(marked)[:19] == str(event)[:19] for marked, event, _ in announced)
    assert all(marked is None for marked, event, _ in rows if event is None)
