"""Shared builders for media-buy tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

_keys = itertools.count(1)


def key(prefix: str = "test") -> str:
    return f"{prefix}-{next(_keys):06d}-0123456789"


def flight(days_ahead: int = 10, days: int = 14) -> tuple[str, str]:
    start = (datetime.now(UTC) + timedelta(days=days_ahead)).replace(microsecond=0)
    return start.isoformat(), (start + timedelta(days=days)).isoformat()


def whole_days(
    product: str, days_ahead: int, days: int, overlay: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A flight of whole days as get_avails reads date-only flights (first to last
    second): the get_avails arguments for ``product``, and the create_media_buy
    ``start_time``/``end_time`` of the same window."""
    day_one, day_last = flight(days_ahead=days_ahead, days=days)
    start, end = f"{day_one[:10]}T00:00:00Z", f"{day_last[:10]}T23:59:59Z"
    avail: dict[str, Any] = {
        "product_ids": [product],
        "flight_start_date": start[:10],
        "flight_end_date": end[:10],
        "total_budget": 10_000_000,
    }
    if overlay:
        avail["targeting_overlay"] = overlay
    return avail, {"start_time": start, "end_time": end}


def non_guaranteed(budget: float = 5000, **package: Any) -> dict[str, Any]:
    start, end = flight()
    return {
        "brand": {"domain": "acme.example"},
        "start_time": start,
        "end_time": end,
        "idempotency_key": key("ng"),
        "packages": [
            {
                "product_id": "display_run_of_site",
                "pricing_option_id": "ros_auction",
                "bid_price": 4.0,
                "budget": budget,
                **package,
            }
        ],
    }


def guaranteed(
    budget: float = 20000, product: str = "ctv_sports_premium", option: str = "ctv_sports_cpm"
) -> dict[str, Any]:
    start, end = flight()
    return {
        "brand": {"domain": "acme.example"},
        "start_time": start,
        "end_time": end,
        "idempotency_key": key("g"),
        "packages": [{"product_id": product, "pricing_option_id": option, "budget": budget}],
    }


async def own_tenant(
    settings: Any,
    tenant_id: str,
    token: str,
    fail_on: list[str],
    principal_id: str | None = None,
    *others: str,
    features: dict[str, Any] | None = None,
) -> None:
    """A tenant of the test's own with the demo catalog, whose mock ad server refuses
    the operations ``fail_on`` (a simulated outage), a buyer with ``token`` and one
    more with each of ``others``."""
    from adcp_agent import demo_catalog
    from adcp_agent.db.engine import create_database
    from adcp_agent.services import catalog_admin, tenants
    from adcp_agent.state import AppState

    db = create_database(settings.resolved_database_url())
    registry = AppState.from_settings(settings).registry
    try:
        await tenants.create_tenant(
            db,
            registry,
            name=tenant_id.capitalize(),
            subdomain=tenant_id,
            tenant_id=tenant_id,
            adapter_config={"fail_on": fail_on},
            features=features or {},
        )
        await catalog_admin.load_catalog(
            db,
            tenant_id,
            formats=demo_catalog.FORMATS,
            properties=demo_catalog.PROPERTIES,
            products=demo_catalog.PRODUCTS,
            signals=demo_catalog.SIGNALS,
        )
        await tenants.create_principal(
            db, tenant_id=tenant_id, name=tenant_id[0].upper(), token=token,
            principal_id=principal_id,
        )  # fmt: skip
        for n, other in enumerate(others, start=2):
            await tenants.create_principal(
                db, tenant_id=tenant_id, name=f"{tenant_id[0].upper()}{n}", token=other
            )
    finally:
        await db.dispose()


def avails_args(
    overlay: dict[str, Any] | None = None, *, now: datetime | None = None, days: int = 10
) -> dict[str, Any]:
    """get_avails for run-of-site display over ``days`` days from 20 days after ``now``
    (the wall clock's, by default), with ``overlay`` as its targeting."""
    start = ((now or datetime.now(UTC)) + timedelta(days=20)).date()
    args: dict[str, Any] = {
        "product_ids": ["display_run_of_site"],
        "flight_start_date": start.isoformat(),
        "flight_end_date": (start + timedelta(days=days)).isoformat(),
    }
    return {**args, "targeting_overlay": overlay} if overlay else args
