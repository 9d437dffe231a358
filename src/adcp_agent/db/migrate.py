"""Apply Alembic migrations programmatically (``serve`` does this on every start)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from adcp_agent.db.engine import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Postgres advisory-lock keys (any bigint; these spell "adcp" + a number). Several
# processes on one database start together in production; these keep them from both
# creating the schema or both seeding the demo tenant.
MIGRATION_LOCK = 0x6164_6370_0001
STARTUP_LOCK = 0x6164_6370_0002


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade_to_head(db: Database) -> None:
    """Upgrade to every head: features add their tables on their own migration branch
    (each revises ``0001``), so they can land in any order."""

    def _upgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")

    async with db.engine.begin() as conn:
        if not db.is_sqlite:  # SQLite serialises writers on the file already
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


@asynccontextmanager
async def startup_lock(db: Database) -> AsyncIterator[None]:
    """Hold a database-wide lock across first-start work (migrations, then seeding), so
    the second of two processes starting together finds the work done instead of
    racing it. A no-op on SQLite (one host; writers serialise on the file)."""
    if db.is_sqlite:
        yield
        return
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": STARTUP_LOCK})
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": STARTUP_LOCK})
            await conn.commit()


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _current(connection: Connection) -> str | None:
        heads = MigrationContext.configure(connection).get_current_heads()
        return ",".join(sorted(heads)) if heads else None

    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)
