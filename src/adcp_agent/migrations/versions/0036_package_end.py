"""packages: an end of their own (a package flight inside its buy's)

Revision ID: 0036_package_end
Revises: 0035_conversions

AdCP 3.1 packages may run a flight of their own within the buy's (``start_time`` /
``end_time`` on a package of create_media_buy or update_media_buy's new_packages): the
line runs it, and pacing and simulated delivery count over it. NULL means the buy's
end (and, for ``start_time``, its start).

The reservation copies 0015's triggers keep on each package (``flight_start``,
``flight_end``, from which 0017's reserving rate is computed) now follow the package's
own flight where it has one: a guaranteed package of one week in a month-long buy
reserves its goal in that week, not spread over the month.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0036_package_end"
down_revision: str | None = "0035_conversions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_OWN = {"flight_start": "start_time", "flight_end": "end_time"}


def _copies(package: str, buy: str) -> str:
    """SET list of 0015's copies: the package's own flight, else its buy's."""
    sets = [
        f"{mine} = COALESCE({package}.{_OWN[mine]}, {buy('b.' + theirs)})"
        if mine in _OWN
        else f"{mine} = {buy('b.' + theirs)}"
        for mine, theirs in COPIES
    ]
    return ", ".join(sets)


COPIES = (("buy_state", "state"), ("flight_start", "start_time"), ("flight_end", "end_time"),
          ("buy_sandbox", "sandbox"))  # fmt: skip


def _subquery(target: str):  # type: ignore[no-untyped-def]
    return lambda column: (
        f"(SELECT {column.removeprefix('b.')} FROM media_buys b WHERE b.media_buy_id = {target})"
    )


def _triggers(own: bool) -> None:
    """0015's triggers; with ``own``, the copies take a package's own flight first."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS media_buys_flight_follow ON media_buys")
        op.execute("DROP TRIGGER IF EXISTS packages_flight_fill ON packages")
        op.execute("DROP FUNCTION IF EXISTS package_flight_follow()")
        op.execute("DROP FUNCTION IF EXISTS package_flight_fill()")
    else:
        for name in ("media_buys_flight_follow", "packages_flight_fill", "packages_flight_move"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    changed = " OR ".join(f"NEW.{theirs} IS DISTINCT FROM OLD.{theirs}" for _, theirs in COPIES)

    def follow(mine: str, theirs: str) -> str:
        if own and mine in _OWN:
            return f"{mine} = COALESCE(packages.{_OWN[mine]}, NEW.{theirs})"
        return f"{mine} = NEW.{theirs}"

    follows = ", ".join(follow(mine, theirs) for mine, theirs in COPIES)
    watched = "media_buy_id, start_time, end_time" if own else "media_buy_id"
    if postgres:
        fill = "; ".join(
            f"NEW.{mine} := "
            + (f"COALESCE(NEW.{_OWN[mine]}, " if own and mine in _OWN else "(")
            + f"(SELECT {theirs} FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id))"
            for mine, theirs in COPIES
        )
        op.execute(
            "CREATE FUNCTION package_flight_fill() RETURNS trigger AS $$ "
            f"BEGIN {fill}; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER packages_flight_fill BEFORE INSERT OR UPDATE OF {watched} "
            "ON packages FOR EACH ROW EXECUTE FUNCTION package_flight_fill()"
        )
        op.execute(
            "CREATE FUNCTION package_flight_follow() RETURNS trigger AS $$ "
            f"BEGIN IF {changed} THEN UPDATE packages SET {follows} "
            "WHERE media_buy_id = NEW.media_buy_id; END IF; RETURN NULL; END $$ "
            "LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER media_buys_flight_follow AFTER UPDATE ON media_buys "
            "FOR EACH ROW EXECUTE FUNCTION package_flight_follow()"
        )
        return
    fill = (
        _copies("packages", _subquery("NEW.media_buy_id"))
        if own
        else ", ".join(
            f"{mine} = {_subquery('NEW.media_buy_id')('b.' + theirs)}" for mine, theirs in COPIES
        )
    )
    op.execute(
        "CREATE TRIGGER packages_flight_fill AFTER INSERT ON packages BEGIN "
        f"UPDATE packages SET {fill} WHERE package_id = NEW.package_id; END"
    )
    op.execute(
        f"CREATE TRIGGER packages_flight_move AFTER UPDATE OF {watched} ON packages BEGIN "
        f"UPDATE packages SET {fill} WHERE package_id = NEW.package_id; END"
    )
    op.execute(
        "CREATE TRIGGER media_buys_flight_follow AFTER UPDATE ON media_buys "
        f"WHEN {changed.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
        f"UPDATE packages SET {follows} WHERE media_buy_id = NEW.media_buy_id; END"
    )


def upgrade() -> None:
    op.add_column("packages", sa.Column("end_time", UTCDateTime(), nullable=True))
    _triggers(own=True)
    op.execute(f"UPDATE packages SET {_copies('packages', _subquery('packages.media_buy_id'))}")


def downgrade() -> None:
    _triggers(own=False)
    op.execute(
        "UPDATE packages SET "
        + ", ".join(
            f"{mine} = {_subquery('packages.media_buy_id')('b.' + theirs)}"
            for mine, theirs in COPIES
        )
    )
    op.drop_column("packages", "end_time")
