"""The network's inventory (active ad units and placements) and availability forecasts.

Forecasts ask ForecastService for a *prospective* line item shaped like the product's
(its inventory, creative sizes and the buyer's targeting). Key-values are resolved
without creating anything: a key or value GAM does not know yet matches no traffic, so
it is left out of the forecast rather than created by a mere question.
"""

from __future__ import annotations

from datetime import UTC

from adcp_agent.adapter_protocol import Forecast, ForecastRequest, InventoryItem, LineSpec
from adcp_agent_adapters.gam import orders
from adcp_agent_adapters.gam.session import GamSession
from adcp_agent_adapters.gam.targeting import (
    CustomTargetingResolver,
    build_targeting,
    targeting_from_dict,
)


async def sync_inventory(session: GamSession) -> list[InventoryItem]:
    ad_units = await session.select(
        "InventoryService", "getAdUnitsByStatement", "status = :status", {"status": "ACTIVE"}
    )
    placements = await session.select(
        "PlacementService", "getPlacementsByStatement", "status = :status", {"status": "ACTIVE"}
    )
    items = [
        InventoryItem(
            item_id=str(unit.id),
            name=str(unit.name),
            kind="ad_unit",
            parent_id=str(unit.parentId) if unit.parentId else None,
        )
        for unit in ad_units
    ]
    items += [
        InventoryItem(item_id=str(p.id), name=str(p.name), kind="placement") for p in placements
    ]
    return items


async def forecast(
    session: GamSession,
    resolver: CustomTargetingResolver,
    request: ForecastRequest,
    advertiser_id: int | None,
) -> Forecast:
    config = session.config
    impl = request.implementation_config
    targeting = targeting_from_dict(request.targeting)
    probe = LineSpec(
        package_id=f"forecast-{request.product_id}",
        product_id=request.product_id,
        name=f"Forecast {request.product_id}",
        guaranteed=True,
        pricing_model="cpm",
        rate=float(impl.get("forecast_cpm", 1.0)),
        currency=config.currency_code,
        budget=0.0,
        # Availability does not depend on the goal, but GAM wants one to answer.
        impressions_goal=1,
        start=request.start if request.start.tzinfo else request.start.replace(tzinfo=UTC),
        end=request.end,
        pacing="even",
        targeting=targeting,
        format_ids=tuple(str(f) for f in impl.get("format_ids") or ()),
        implementation_config={**impl, "line_item_type": impl.get("line_item_type", "STANDARD")},
    )
    gam_targeting = await build_targeting(resolver, config, targeting, impl, create_keys=False)
    line = orders.line_item(
        probe, 0, gam_targeting, timezone=config.network_timezone, now=session.now()
    )
    for readonly in ("orderId", "name", "externalId", "notes"):
        line.pop(readonly, None)
    prospective: dict[str, object] = {"lineItem": line}
    if advertiser_id:
        prospective["advertiserId"] = advertiser_id
    result = await session.call(
        "ForecastService",
        "getAvailabilityForecast",
        prospective,
        {"includeTargetingCriteriaBreakdown": False, "includeContendingLineItems": False},
    )
    return Forecast(
        available_impressions=int(result.availableUnits or 0),
        capacity_impressions=int(result.matchedUnits or 0),
    )
