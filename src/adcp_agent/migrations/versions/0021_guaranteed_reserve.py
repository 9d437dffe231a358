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

The reservation sum now also requires ``guaranteed``, and the partial index
``ix_packages_reserving`` holds only guaranteed reserving packages. Only the index is
made again: 0017's generated columns stay as they are (dropping a column needs SQLite
3.35; PostgreSQL would rewrite the table).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_guaranteed_reserve"
down_revision: str | None = "0020_interrupted_work"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
# Spelled as the sum's WHERE clause compiles (``Package.guaranteed == True``): SQLite
# uses a partial index only when the query's terms match the index's.
GUARANTEED = {
    "sqlite": "reserve_rate IS NOT NULL AND guaranteed = 1",
    "postgresql": "reserve_rate IS NOT NULL AND guaranteed = true",
}
ANY = "reserve_rate IS NOT NULL"


def _index(sqlite_where: str, postgresql_where: str) -> None:
    op.drop_index(INDEX, table_name="packages")
    op.create_index(
        INDEX,
        "packages",
        INDEX_COLUMNS,
        unique=False,
        sqlite_where=sa.text(sqlite_where),
        postgresql_where=sa.text(postgresql_where),
    )


def upgrade() -> None:
    _index(GUARANTEED["sqlite"], GUARANTEED["postgresql"])


def downgrade() -> None:
    _index(ANY, ANY)
