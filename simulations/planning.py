"""How a buyer turns offers into packages: the pricing option to use, a format it can
supply, and a budget that clears the product's minimum and fits what get_avails says
the flight can deliver. Pure functions of the offers, the avails and the seeded plan."""

from __future__ import annotations

import math

from simulations.buyer import JsonObject
from simulations.errors import JourneyFailed
from simulations.records import PackageRun
from simulations.scenarios import BuyerPlan


def ids(items: list[JsonObject], key: str) -> list[str]:
    return [str(i.get(key)) for i in items]


def option(product: JsonObject, price_key: str) -> JsonObject | None:
    """The product's first pricing option priced by ``price_key`` (fixed or floor)."""
    return next((o for o in product.get("pricing_options", []) if o.get(price_key)), None)


def format_for(product: JsonObject, formats: dict[str, JsonObject]) -> str:
    """The first of the product's formats the publisher describes (so a creative can be
    built from its spec)."""
    for ref in product.get("format_ids", []):
        if ref["id"] in formats:
            return str(ref["id"])
    raise JourneyFailed(f"'{product['product_id']}' lists no format the publisher describes")


def guaranteed_package(
    offers: list[JsonObject],
    avails: dict[str, JsonObject],
    plan: BuyerPlan,
    signal_id: str,
    formats: dict[str, JsonObject],
) -> PackageRun | None:
    """The best-ranked offer whose deliverable budget clears its minimum spend, sized
    at the plan's multiple of that minimum (capped by what can deliver); None if no
    offer can run in the flight."""
    for product in offers:
        fixed = option(product, "fixed_price")
        if fixed is None:
            continue
        minimum = float(fixed.get("min_spend_per_package") or 0)
        deliverable = float(avails.get(product["product_id"], {}).get("deliverable_budget", 0))
        if deliverable < max(minimum, 1.0):
            continue
        wanted = round((minimum or 5000) * plan.guaranteed_factor, -2)
        return PackageRun(
            key="G1",
            product_id=str(product["product_id"]),
            pricing_option_id=str(fixed["pricing_option_id"]),
            budget=max(minimum, min(wanted, math.floor(deliverable / 100) * 100)),
            bid_price=None,
            signals=[signal_id],
            format_id=format_for(product, formats),
        )
    return None


def auction_package(
    i: int, product: JsonObject, plan: BuyerPlan, signal_id: str, formats: dict[str, JsonObject]
) -> PackageRun:
    """The i-th auction package: bid a seeded margin over the floor; the audience signal
    goes on the lead package only, so the others show untargeted delivery."""
    floor = option(product, "floor_price")
    assert floor is not None, "callers pass auction offers only"
    minimum = float(floor.get("min_spend_per_package") or 0)
    return PackageRun(
        key=f"A{i + 1}",
        product_id=str(product["product_id"]),
        pricing_option_id=str(floor["pricing_option_id"]),
        budget=max(minimum, plan.auction_budgets[i]),
        bid_price=round(float(floor["floor_price"]) * plan.bid_multipliers[i], 2),
        signals=[signal_id] if i == 0 else [],
        format_id=format_for(product, formats),
    )
