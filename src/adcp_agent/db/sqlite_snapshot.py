"""A new SQLite database made from the schema the migrations produce, in one script.

A first start on a fresh data dir used to run every migration through Alembic (~0.4 s
of CPU for 37 of them, and Alembic with Mako and Pygments loaded): most of what a cold
start spent beyond imports. ``sqlite_schema.sql`` is what those migrations leave in an
empty database — every table, index and trigger as SQLite stores it, and the
``alembic_version`` rows — so an empty file gets it in one transaction, with no
Alembic. Migrations stay the source of truth: ``tests/test_sqlite_snapshot.py`` fails
when the file differs from what they produce, and regenerating it is one command::

    uv run python -m adcp_agent.db.sqlite_snapshot

Only empty SQLite files take this path; any database with tables (and PostgreSQL)
migrates as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("sqlite_schema.sql")
_OBJECTS = (
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
    "ORDER BY rowid"
)


def dump(connection: sqlite3.Connection) -> str:
    """The schema of ``connection``'s database as a script that recreates it, with its
    ``alembic_version`` rows."""
    statements = [row[0] for row in connection.execute(_OBJECTS)]
    versions = sorted(
        row[0] for row in connection.execute("SELECT version_num FROM alembic_version")
    )
    statements += [f"INSERT INTO alembic_version (version_num) VALUES ('{v}')" for v in versions]
    return "".join(f"{s};\n" for s in statements)


def create(path: str, pragmas: Sequence[str]) -> bool:
    """Give the empty database at ``path`` the migrated schema in one transaction;
    False (nothing done) when there is no snapshot or the file is not empty."""
    if not SNAPSHOT.exists():
        return False
    script = SNAPSHOT.read_text(encoding="utf-8")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in pragmas:  # (the file's journal mode is set by the first of them)
            connection.execute(pragma)
        if connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[
            0
        ]:
            return False
        connection.executescript(f"BEGIN IMMEDIATE;\n{script}COMMIT;\n")
        return True
    finally:
        connection.close()


async def migrate_file(path: Path) -> None:
    """Run every migration (Alembic, never the snapshot) on the SQLite file ``path``."""
    from adcp_agent.db.engine import create_database
    from adcp_agent.db.migrate import run_migrations

    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        await run_migrations(db)
    finally:
        await db.dispose()


async def _migrated(path: Path) -> str:
    await migrate_file(path)
    connection = sqlite3.connect(path)
    try:
        return dump(connection)
    finally:
        connection.close()


def migrated_schema() -> str:
    """What the migrations leave in an empty SQLite database (as ``dump`` tells it)."""
    with tempfile.TemporaryDirectory(prefix="adcp-schema-") as where:
        return asyncio.run(_migrated(Path(where) / "schema.db"))


def main() -> int:
    SNAPSHOT.write_text(migrated_schema(), encoding="utf-8")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
