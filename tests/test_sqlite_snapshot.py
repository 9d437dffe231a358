"""A new SQLite database is made from ``sqlite_schema.sql`` (db.sqlite_snapshot), not by
running every migration: the file must be exactly what the migrations make, and what
it makes must be a current database the migrations would recognise."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adcp_agent.db import sqlite_snapshot
from adcp_agent.db.engine import create_database
from adcp_agent.db.migrate import is_current, upgrade_to_head


def test_the_snapshot_is_what_the_migrations_make() -> None:
    made = sqlite_snapshot.migrated_schema()
    assert made == sqlite_snapshot.SNAPSHOT.read_text(encoding="utf-8"), (
        "db/sqlite_schema.sql is stale: run `uv run python -m adcp_agent.db.sqlite_snapshot`"
    )


async def test_migrations_leave_no_rows_the_snapshot_would_miss(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    await sqlite_snapshot.migrate_file(path)
    connection = sqlite3.connect(path)
    try:
        listed = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        tables = [r[0] for r in connection.execute(listed)]
        rows = {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        connection.close()
    heads = sqlite_snapshot.SNAPSHOT.read_text().count("INSERT INTO alembic_version")
    assert {t: n for t, n in rows.items() if n} == {"alembic_version": heads}


async def test_a_new_file_gets_the_snapshot_and_is_current(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade_to_head(db)
        assert await is_current(db)
        await upgrade_to_head(db)  # current: nothing to do
    finally:
        await db.dispose()
    connection = sqlite3.connect(path)
    try:
        assert sqlite_snapshot.dump(connection) == sqlite_snapshot.SNAPSHOT.read_text()
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


def test_a_file_with_tables_is_left_to_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "used.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE something_else (x INTEGER)")
    connection.commit()
    connection.close()
    assert sqlite_snapshot.create(str(path), ["PRAGMA journal_mode=WAL"]) is False
