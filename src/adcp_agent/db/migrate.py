"""Apply Alembic migrations programmatically (``serve`` does this on every start).

Alembic (with Mako and Pygments, ~13 MiB) is imported only when there is something to
apply: whether the database is current is read from ``alembic_version`` and the
version files themselves, so a server restarting on a current database never loads it,
and a new SQLite database is made from the migrated schema (``db.sqlite_snapshot``).
"""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from adcp_agent.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Postgres advisory-lock keys (any bigint; these spell "adcp" + a number). Several
# processes on one database start together in production; these keep them from both
# creating the schema or both seeding the demo tenant.
MIGRATION_LOCK = 0x6164_6370_0001
STARTUP_LOCK = 0x6164_6370_0002


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


@cache
def tree_heads() -> frozenset[str]:
    """The heads of the migration tree, read from the version files' ``revision`` and
    ``down_revision`` assignments (the same values Alembic reads, without Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.AnnAssign | ast.Assign) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            value = ast.literal_eval(node.value) if names & {"revision", "down_revision"} else None
            if "revision" in names:
                revisions.add(value)
            elif "down_revision" in names and value:
                parents.update([value] if isinstance(value, str) else value)
    return frozenset(revisions - parents)


async def applied_heads(db: Database) -> frozenset[str]:
    """The revisions recorded in the database (none for a new one)."""

    def _read(connection: Connection) -> frozenset[str]:
        if not inspect(connection).has_table("alembic_version"):
            return frozenset()
        rows = connection.execute(text("SELECT version_num FROM alembic_version"))
        return frozenset(row[0] for row in rows)

    async with db.engine.connect() as conn:
        return await conn.run_sync(_read)


async def is_current(db: Database) -> bool:
    return await applied_heads(db) == tree_heads()


async def upgrade_to_head(db: Database) -> None:
    """Upgrade to every head: features add their tables on their own migration branch
    (each revises ``0001``), so they can land in any order. An empty SQLite file gets
    the migrated schema in one script instead (``db.sqlite_snapshot``)."""
    if await is_current(db) or await create_if_new(db):
        return
    await run_migrations(db)


async def create_if_new(db: Database) -> bool:
    """Give an empty SQLite file the migrated schema in one script (no Alembic); False
    for anything else (PostgreSQL, in-memory, a file with tables)."""
    if db.sqlite_file is None:
        return False
    from adcp_agent.db import sqlite_snapshot

    file = db.sqlite_file
    async with file.lock:  # this process's writers wait; others get SQLITE_BUSY
        return sqlite_snapshot.create(file.path, file.pragmas)


async def run_migrations(db: Database) -> None:
    """Apply the migrations not yet applied, with Alembic."""

    def _upgrade(connection: Connection) -> None:
        from alembic import command

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


def _main() -> None:
    """``python -m adcp_agent.db.migrate``: upgrade the database that
    ``ADCP_AGENT_MIGRATE_URL`` names (in the environment, so a password never shows in
    the process list). ``serve`` runs this in a child process."""
    import asyncio
    import os

    from adcp_agent.db.engine import create_database

    async def run() -> None:
        db = create_database(os.environ["ADCP_AGENT_MIGRATE_URL"])
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    _main()
