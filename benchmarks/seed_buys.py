"""Bulk-load media buys into a migrated adcp-agent database, through the real tables
(``media_buys`` and ``packages``, with every column the models define), to see how the
server behaves with years of history. Fast: core ``INSERT``s in batches, about 100k
buys in seconds, instead of 100k ``create_media_buy`` calls.

The history looks like a busy publisher's: flights over the last three years (a few
per cent still running or upcoming), mostly live, some paused, canceled or awaiting
approval, one package each on a random demo product, all owned by the demo buyer, and
for each ended flight the ``campaign.completed`` event the server sent at the time.

    uv run python benchmarks/seed_buys.py --data-dir .adcp-agent --count 100000
    DATABASE_URL=postgresql://... uv run python benchmarks/seed_buys.py --count 100000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import select

from adcp_agent.config import Settings
from adcp_agent.db.engine import create_database
from adcp_agent.db.models import Product
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_events import OutboxEvent
from adcp_agent.db.models_media import MediaBuy, Package

BATCH = 5000
STATES = (("live", 0.90), ("paused", 0.03), ("canceled", 0.05), ("pending_approval", 0.02))


def _rows(
    i: int, rng: random.Random, now: datetime, products: list[Product], account_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    product = rng.choice(products)
    option = product.pricing_options[0]
    rate = float(option.get("fixed_price") or option.get("floor_price") or 10.0)
    start = now - timedelta(days=rng.uniform(-30, 1095))
    end = start + timedelta(days=rng.uniform(7, 60))
    budget = round(rng.uniform(1_000, 50_000), 2)
    state = rng.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
    guaranteed = product.delivery_type == "guaranteed"
    buy_id, package_id = f"mb_seed{i:08d}", f"pkg_seed{i:08d}"
    buy = {
        "media_buy_id": buy_id,
        "tenant_id": product.tenant_id,
        "principal_id": "demo_buyer",
        "account_id": account_id,
        "buyer_ref": f"seed-{i}",
        "brand": {"domain": "seed.example"},
        "po_number": None,
        "state": state,
        "guaranteed": guaranteed,
        "start_time": start,
        "end_time": end,
        "total_budget": budget,
        "currency": "USD",
        "pacing": "even",
        "daily_cap": None,
        "ad_server": "mock",
        "sandbox": False,
        "external_order_id": f"mock_order_seed{i}",
        "archived": False,
        "revision": 1,
        "rejection_reason": None,
        "approved_by": None,
        "approved_at": None,
        # Announced when the flight ended (see _completed_event).
        "completion_announced_at": (end if state in ("live", "paused") and end <= now else None),
        "created_at": start - timedelta(days=3),
        "updated_at": start - timedelta(days=3),
    }
    package = {
        "package_id": package_id,
        "media_buy_id": buy_id,
        "tenant_id": product.tenant_id,
        "product_id": product.product_id,
        "buyer_ref": None,
        "pricing_option_id": option["pricing_option_id"],
        "pricing_model": option.get("pricing_model", "cpm"),
        "rate": rate,
        "guaranteed": guaranteed,
        "budget": budget,
        "impressions_goal": int(budget / rate * 1000),
        "pacing": "even",
        "paused": state == "paused",
        "targeting": {},
        "bid_adjustments": {},
        "creative_ids": [],
        "format_ids": list(product.format_ids),
        "external_line_id": f"mock_line_seed{i}",
        "created_at": buy["created_at"],
        "updated_at": buy["updated_at"],
    }
    return buy, package


def _completed_event(buy: dict[str, Any]) -> dict[str, Any]:
    """The ``campaign.completed`` event a running server emitted when the flight ended
    (long since delivered): without it the server would spend its first minutes
    emitting a backlog that no real database has."""
    return {
        "event_id": f"evt_seed_{buy['media_buy_id']}",
        "tenant_id": buy["tenant_id"],
        "event_type": "campaign.completed",
        "status": "delivered",
        "principal_id": buy["principal_id"],
        "media_buy_id": buy["media_buy_id"],
        "dedupe_key": f"campaign.completed:{buy['media_buy_id']}",
        "payload": {"media_buy_id": buy["media_buy_id"]},
        "created_at": buy["end_time"],
        "updated_at": buy["end_time"],
    }


async def seed(database_url: str, count: int, *, tenant_id: str = "demo", seed: int = 7) -> float:
    """Insert ``count`` buys for the demo buyer; returns the seconds it took."""
    began = time.perf_counter()
    db = create_database(database_url)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    try:
        async with db.session() as session:
            products = list(
                (await session.exec(select(Product).where(Product.tenant_id == tenant_id))).all()
            )
            account_id = (
                await session.exec(
                    select(Account.account_id).where(
                        Account.tenant_id == tenant_id,
                        Account.owner_principal_id == "demo_buyer",
                        Account.is_default.is_(True),  # type: ignore[attr-defined]
                    )
                )
            ).one()
        if not products:
            raise SystemExit(f"tenant {tenant_id!r} has no products: start the server once first")
        for first in range(0, count, BATCH):
            pairs = [
                _rows(i, rng, now, products, account_id)
                for i in range(first, min(first + BATCH, count))
            ]
            ended = [
                _completed_event(b)
                for b, _ in pairs
                if b["state"] in ("live", "paused") and b["end_time"] <= now
            ]
            async with db.engine.begin() as conn:
                await conn.execute(insert(MediaBuy.__table__), [b for b, _ in pairs])  # type: ignore[attr-defined]
                await conn.execute(insert(Package.__table__), [p for _, p in pairs])  # type: ignore[attr-defined]
                if ended:
                    await conn.execute(insert(OutboxEvent.__table__), ended)  # type: ignore[attr-defined]
        if not db.is_sqlite:
            # Postgres's autovacuum would analyze tables this size within a minute; do it
            # now so the planner sees them as a running server soon would. (SQLite keeps
            # no statistics unless told to, and the server never tells it: left as is.)
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE media_buys")
                await conn.exec_driver_sql("ANALYZE packages")
    finally:
        await db.dispose()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".adcp-agent"))
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    url = Settings(data_dir=args.data_dir).resolved_database_url()
    took = asyncio.run(seed(url, args.count))
    print(f"seeded {args.count:,} media buys in {took:.1f} s")


if __name__ == "__main__":
    main()
