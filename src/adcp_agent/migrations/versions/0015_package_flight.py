"""reservations: each package carries its buy's flight, state and sandbox flag

Revision ID: 0015_package_flight
Revises: 0014_reservation_index

The reservation sum behind every create_media_buy and get_avails walked every buy of
the tenant still running in the requested flight (about 5k of 100k buys) and probed
each one for the product: +5 ms per booking at 100k buys. With the buy's flight,
state and sandbox flag copied onto its packages, one index on (tenant, product,
sandbox, flight end) reaches only the product's running packages.

The indexes that served the old plan (ix_media_buys_flight from 0009,
ix_media_buys_tenant_end from 0014, ix_packages_tenant_product from 0009) serve no other
query: they are dropped, so buy and package writes stop maintaining them.

The copies are kept by the database, not the application: a trigger fills them when a
package is inserted and another follows every change of a buy's state, flight or
sandbox flag, whoever makes it (any process, the CLI, the test controller, SQL by hand).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0015_package_flight"
down_revision: str | None = "0014_reservation_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIES = (("buy_state", "state"), ("flight_start", "start_time"), ("flight_end", "end_time"),
          ("buy_sandbox", "sandbox"))  # fmt: skip
INDEX = "ix_packages_reservation"
INDEX_COLUMNS = [
    "tenant_id",
    "product_id",
    "buy_sandbox",
    "flight_end",
    "flight_start",
    "buy_state",
    "impressions_goal",
    "media_buy_id",
]


# Replaced by ix_packages_reservation: (name, table, columns), for the downgrade.
SUPERSEDED = (
    ("ix_media_buys_flight", "media_buys",
     ["media_buy_id", "end_time", "start_time", "state", "sandbox"]),
    ("ix_media_buys_tenant_end", "media_buys",
     ["tenant_id", "end_time", "start_time", "state", "sandbox", "media_buy_id"]),
    ("ix_packages_tenant_product", "packages",
     ["tenant_id", "product_id", "media_buy_id", "impressions_goal"]),
)  # fmt: skip


def _from_buy(target: str) -> str:
    """SET list copying the buy's columns, from a correlated subquery per column."""
    return ", ".join(
        f"{mine} = (SELECT {theirs} FROM media_buys b WHERE b.media_buy_id = {target})"
        for mine, theirs in COPIES
    )


def upgrade() -> None:
    op.add_column("packages", sa.Column("buy_state", sa.String(length=20), nullable=True))
    op.add_column("packages", sa.Column("flight_start", UTCDateTime(), nullable=True))
    op.add_column("packages", sa.Column("flight_end", UTCDateTime(), nullable=True))
    op.add_column("packages", sa.Column("buy_sandbox", sa.Boolean(), nullable=True))
    op.execute(f"UPDATE packages SET {_from_buy('packages.media_buy_id')}")
    op.create_index(INDEX, "packages", INDEX_COLUMNS, unique=False)
    for name, table, _ in SUPERSEDED:
        op.drop_index(name, table_name=table)
    changed = " OR ".join(f"NEW.{theirs} IS DISTINCT FROM OLD.{theirs}" for _, theirs in COPIES)
    follow = ", ".join(f"{mine} = NEW.{theirs}" for mine, theirs in COPIES)
    if op.get_bind().dialect.name == "postgresql":
        fill = "; ".join(
            f"NEW.{mine} := (SELECT {theirs} FROM media_buys b "
            "WHERE b.media_buy_id = NEW.media_buy_id)"
            for mine, theirs in COPIES
        )
        op.execute(
            "CREATE FUNCTION package_flight_fill() RETURNS trigger AS $$ "
            f"BEGIN {fill}; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER packages_flight_fill BEFORE INSERT OR UPDATE OF media_buy_id "
            "ON packages FOR EACH ROW EXECUTE FUNCTION package_flight_fill()"
        )
        op.execute(
            "CREATE FUNCTION package_flight_follow() RETURNS trigger AS $$ "
            f"BEGIN IF {changed} THEN UPDATE packages SET {follow} "
            "WHERE media_buy_id = NEW.media_buy_id; END IF; RETURN NULL; END $$ "
            "LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER media_buys_flight_follow AFTER UPDATE ON media_buys "
            "FOR EACH ROW EXECUTE FUNCTION package_flight_follow()"
        )
        return
    # SQLite: a BEFORE trigger cannot assign NEW, so the inserted row is updated after.
    op.execute(
        "CREATE TRIGGER packages_flight_fill AFTER INSERT ON packages BEGIN "
        f"UPDATE packages SET {_from_buy('NEW.media_buy_id')} "
        "WHERE package_id = NEW.package_id; END"
    )
    op.execute(
        "CREATE TRIGGER packages_flight_move AFTER UPDATE OF media_buy_id ON packages BEGIN "
        f"UPDATE packages SET {_from_buy('NEW.media_buy_id')} "
        "WHERE package_id = NEW.package_id; END"
    )
    op.execute(
        "CREATE TRIGGER media_buys_flight_follow AFTER UPDATE ON media_buys "
        f"WHEN {changed.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
        f"UPDATE packages SET {follow} WHERE media_buy_id = NEW.media_buy_id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS media_buys_flight_follow ON media_buys")
        op.execute("DROP TRIGGER IF EXISTS packages_flight_fill ON packages")
        op.execute("DROP FUNCTION IF EXISTS package_flight_follow()")
        op.execute("DROP FUNCTION IF EXISTS package_flight_fill()")
    else:
        for name in ("media_buys_flight_follow", "packages_flight_fill", "packages_flight_move"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for name, table, columns in SUPERSEDED:
        op.create_index(name, table, columns, unique=False)
    op.drop_index(INDEX, table_name="packages")
    for mine, _ in COPIES:
        op.drop_column("packages", mine)
