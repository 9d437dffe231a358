"""Reservations: the capacity check reads each package's copy of its buy's flight,
state and sandbox flag (kept by database triggers, migration 0015). Whatever changes a
buy (the services, another process, SQL by hand), the sum must equal the one computed
from the buys themselves, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import col, select, update

from adcp_agent.config import Settings
from adcp_agent.db.models import Product
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.server import prepare
from adcp_agent.services import avails
from adcp_agent.services.avails import RESERVING
from adcp_agent.state import AppState
from tests.databases import Backend, database_settings
from tests.support import DEMO_TOKEN

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from seed_buys import seed  # noqa: E402


async def _book(state: AppState) -> list[tuple[Package, MediaBuy]]:
    """Every package with its buy, as stored now."""
    async with state.db.session() as session:
        return list(
            (
                await session.exec(
                    select(Package, MediaBuy).join(
                        MediaBuy, col(MediaBuy.media_buy_id) == col(Package.media_buy_id)
                    )
                )
            ).all()
        )


def _reference(
    rows: list[tuple[Package, MediaBuy]],
    product_id: str,
    start: datetime,
    end: datetime,
    sandbox: bool,
    exclude: str | None = None,
) -> int:
    """The reservation sum from the buys' own columns: what the copies must reproduce."""
    total = 0.0
    for package, buy in rows:
        if package.product_id != product_id or buy.sandbox != sandbox:
            continue
        if buy.media_buy_id == exclude:
            continue
        if not package.guaranteed:  # an auction package is promised nothing
            continue
        if buy.state not in RESERVING or not package.impressions_goal:
            continue
        if not (buy.start_time < end and buy.end_time > start):
            continue
        span = (buy.end_time - buy.start_time).total_seconds()
        if span <= 0:
            continue
        inside = (min(end, buy.end_time) - max(start, buy.start_time)).total_seconds()
        total += package.impressions_goal * max(inside, 0.0) / span
    return int(total)


async def _assert_sums_agree(state: AppState, products: list[str], now: datetime) -> int:
    """Compare on several flights for every product; returns how many sums were > 0."""
    flights = [
        (now, now + timedelta(days=14)),
        (now - timedelta(days=400), now - timedelta(days=300)),
        (now + timedelta(days=5), now + timedelta(days=6)),
        (now - timedelta(days=30), now + timedelta(days=90)),
    ]
    nonzero = 0
    rows = await _book(state)
    for product_id in products:
        for start, end in flights:
            for sandbox in (False, True):
                got = await avails.reserved(state, "demo", product_id, start, end, sandbox=sandbox)
                want = _reference(rows, product_id, start, end, sandbox)
                # Epoch seconds from text on SQLite (julianday): a few impressions of
                # rounding on sums of millions.
                assert abs(got - want) <= max(2, want // 100_000), (
                    product_id, start, end, sandbox, got, want
                )  # fmt: skip
                nonzero += got > 0
    # Without one buy (an update checks its own buy's new size against the others').
    start, end = flights[0]
    for product_id in products:
        for exclude in await _reserving_buys(state, product_id, start, end):
            got = await avails.reserved(state, "demo", product_id, start, end,
                                        exclude_media_buy=exclude)  # fmt: skip
            want = _reference(rows, product_id, start, end, False, exclude)
            assert abs(got - want) <= max(2, want // 100_000), (product_id, exclude, got, want)
    return nonzero


async def _reserving_buys(
    state: AppState, product_id: str, start: datetime, end: datetime
) -> list[str]:
    """Two buys holding the product in the flight (the sums without each must drop)."""
    async with state.db.session() as session:
        found = await session.exec(
            select(MediaBuy.media_buy_id)
            .join(Package, col(MediaBuy.media_buy_id) == col(Package.media_buy_id))
            .where(
                Package.product_id == product_id,
                col(MediaBuy.state).in_(RESERVING),
                col(MediaBuy.sandbox).is_(False),
                MediaBuy.start_time < end,
                MediaBuy.end_time > start,
                col(Package.impressions_goal) > 0,
                col(Package.guaranteed).is_(True),
            )
            .order_by(MediaBuy.media_buy_id)
            .limit(2)
        )
        return list(found)


async def test_reservations_follow_every_change_to_a_buy(tmp_path: Path, backend: Backend) -> None:
    settings = Settings(
        data_dir=tmp_path, demo_token=DEMO_TOKEN, **database_settings(tmp_path, backend)
    )
    state = AppState.from_settings(settings)
    await prepare(state)
    await seed(settings.resolved_database_url(), 600)
    try:
        now = state.clock.now()
        async with state.db.session() as session:
            products = sorted(
                await session.exec(select(Product.product_id).where(Product.tenant_id == "demo"))
            )
            # Buys with a guaranteed package: only those reserve (their changes must show).
            buys = list(
                await session.exec(
                    select(MediaBuy)
                    .where(
                        col(MediaBuy.media_buy_id).in_(
                            select(Package.media_buy_id).where(col(Package.guaranteed).is_(True))
                        )
                    )
                    .order_by(MediaBuy.media_buy_id)
                )
            )
        # The seeded book: running, upcoming and ended buys, so the sums mean something.
        assert await _assert_sums_agree(state, products, now) > 10

        running = [
            b
            for b in buys
            if b.state == "live" and b.start_time < now + timedelta(days=14) < b.end_time
        ]
        assert len(running) >= 8
        # Change buys the way every code path does in the end: UPDATE statements on
        # media_buys (state, flight, sandbox; several columns at once), a package moved
        # to another buy, a buy deleted with its packages, a package inserted for an
        # existing buy.
        async with state.db.transaction() as session:
            changes = [
                {"state": "canceled"},
                {"state": "paused"},
                {"end_time": now + timedelta(days=200)},
                {"start_time": now + timedelta(days=20), "end_time": now + timedelta(days=40)},
                {"sandbox": True},
                {"state": "live", "end_time": now + timedelta(days=3)},
            ]
            for buy, values in zip(running, changes, strict=False):
                await session.exec(
                    update(MediaBuy)  # type: ignore[call-overload]
                    .where(col(MediaBuy.media_buy_id) == buy.media_buy_id)
                    .values(**values)
                )
            moved, target, gone = running[6], running[7], running[-1]
            await session.exec(
                update(Package)  # type: ignore[call-overload]
                .where(col(Package.media_buy_id) == running[1].media_buy_id)
                .values(impressions_goal=Package.impressions_goal * 3)  # type: ignore[operator]
            )
            await session.exec(
                update(Package)  # type: ignore[call-overload]
                .where(col(Package.media_buy_id) == moved.media_buy_id)
                .values(media_buy_id=target.media_buy_id)
            )
            await session.exec(
                text("DELETE FROM packages WHERE media_buy_id = :m"),
                params={"m": gone.media_buy_id},
            )
            await session.exec(
                text("DELETE FROM media_buys WHERE media_buy_id = :m"),
                params={"m": gone.media_buy_id},
            )
            session.add(
                Package(
                    package_id="pkg_added",
                    media_buy_id=running[2].media_buy_id,
                    tenant_id="demo",
                    product_id=products[0],
                    pricing_option_id="x",
                    rate=10.0,
                    budget=5000.0,
                    impressions_goal=500_000,
                    guaranteed=True,
                )
            )
        copy = Package.__table__.c  # type: ignore[attr-defined]  # the trigger-kept copies
        async with state.db.session() as session:
            stale = (
                await session.exec(
                    select(Package.package_id)
                    .join(MediaBuy, col(MediaBuy.media_buy_id) == col(Package.media_buy_id))
                    .where(
                        (copy.buy_state != col(MediaBuy.state))
                        | (copy.flight_start != col(MediaBuy.start_time))
                        | (copy.flight_end != col(MediaBuy.end_time))
                        | (copy.buy_sandbox != col(MediaBuy.sandbox))
                        | copy.buy_state.is_(None)
                    )
                )
            ).all()
        assert stale == []
        assert await _assert_sums_agree(state, products, now) > 10
        # The sandbox flip above moved a running buy's reservation to sandbox inventory.
        sandboxed = [
            await avails.reserved(state, "demo", p, now, now + timedelta(days=30), sandbox=True)
            for p in products
        ]
        assert any(sandboxed)
    finally:
        await state.db.dispose()


async def test_the_sum_reads_only_the_reserving_packages_index(prepared_state: AppState) -> None:
    """The sum must be answered by ix_packages_reserving (a partial index of the
    reserving packages): a query that stops implying its condition scans far more."""
    db = prepared_state.db
    values = {"tenant": "demo", "product": "p", "sandbox": False, "lo": 0.0, "hi": 1.0,
              "exclude": ""}  # fmt: skip
    sql = str(
        avails._RESERVED.params(**values).compile(
            dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}
        )
    )
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            plan = [r[3] for r in (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))]
            assert plan == [
                "SEARCH packages USING INDEX ix_packages_reserving "
                "(tenant_id=? AND product_id=? AND buy_sandbox=? AND flight_end_s>?)"
            ]
        else:  # PostgreSQL picks by statistics: only whether the index can serve it
            await conn.exec_driver_sql("SET enable_seqscan = off")
            plan = [r[0] for r in (await conn.exec_driver_sql("EXPLAIN " + sql))]
            assert "ix_packages_reserving" in "\n".join(plan), plan
