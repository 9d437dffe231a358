"""reservations: only guaranteed packages hold inventory

Revision ID: 0021_guaranteed_reserve
Revises: 0020_interrupted_work

An auction (non-guaranteed) package bids for impressions; it is not promised any, so
it takes nothing from the inventory others can book — as an ad server's forecast
counts only guaranteed line items as contending for availability. Until now every
package with a goal reserved its impressions: a product's auction buys shrank its
avails for the next buyer (towards zero on a busy auction product), and every booking
and avails check of that product added up all of them (~0.26 µs a package on SQLite:
~1 ms a booking at 4,000 running auction buys, growing with each one booked).

0017's generated ``reserve_rate`` now also requires ``guaranteed``, so the partial
index ``ix_packages_reserving`` holds only guaranteed packages. A generated column's
expression cannot be altered: the index and the column are dropped and made again
(SQLite: a VIRTUAL column, nothing rewritten; PostgreSQL: STORED, the table rewritten
once).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_guaranteed_reserve"
down_revision: str | None = "0020_interrupted_work"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As 0017 spelled them (services.avails.RESERVING; a change there needs a migration).
RESERVING = "('provisioning', 'pending_approval', 'live', 'paused')"
EPOCH = {
    "sqlite": "((julianday({0}) - 2440587.5) * 86400.0)",
    "postgresql": "EXTRACT(EPOCH FROM ({0} - TIMESTAMPTZ '1970-01-01 00:00:00+00'))",
}
INDEX = "ix_packages_reserving"
INDEX_COLUMNS = [
    "tenant_id",
    "product_id",
    "buy_sandbox",
    "flight_end_s",
    "flight_start_s",
    "reserve_rate",
    "media_buy_id",
]


def reserve_rate(dialect: str, *, guaranteed_only: bool) -> str:
    """The generated column's SQL: impressions goal per second of flight while the buy
    holds inventory (and, from this revision, the package is guaranteed), else NULL."""
    start, end = (EPOCH[dialect].format(c) for c in ("flight_start", "flight_end"))
    only = "guaranteed AND " if guaranteed_only else ""
    return (
        f"CASE WHEN {only}buy_state IN {RESERVING} AND impressions_goal > 0 "
        f"AND flight_end > flight_start THEN impressions_goal / ({end} - {start}) END"
    )


def _redefine(*, guaranteed_only: bool) -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index(INDEX, table_name="packages")
    # Plain ALTER TABLE (no batch copy on SQLite: that would drop 0015's triggers).
    op.drop_column("packages", "reserve_rate")
    sql = reserve_rate(dialect, guaranteed_only=guaranteed_only)
    computed = sa.Computed(sa.text(sql), persisted=dialect == "postgresql")
    op.add_column("packages", sa.Column("reserve_rate", sa.Float(), computed, nullable=True))
    op.create_index(
        INDEX,
        "packages",
        INDEX_COLUMNS,
        unique=False,
        sqlite_where=sa.text("reserve_rate IS NOT NULL"),
        postgresql_where=sa.text("reserve_rate IS NOT NULL"),
    )


def upgrade() -> None:
    _redefine(guaranteed_only=True)


def downgrade() -> None:
    _redefine(guaranteed_only=False)
