"""Media buys as GAM Orders and packages as LineItems (pure mapping, no I/O).

- Guaranteed packages are STANDARD line items with a lifetime goal (the package's
  impressions goal, or budget / rate); non-guaranteed ones are PRICE_PRIORITY, or NETWORK
  when the product's ``implementation_config`` says ``line_item_type: NETWORK``. Flat-rate
  packages are SPONSORSHIP lines priced per day (CPD).
- ``costPerUnit`` is Money in micros; start and end are sent in the network time zone.
- A line's ``externalId`` is the AdCP package id and names carry the AdCP ids, which makes
  a retried create find what an earlier attempt already booked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from adcp_agent.adapter_protocol import LineSpec, OrderSpec
from adcp_agent_adapters.gam import faults

NAME_MAX = 255
COST_TYPES = {"cpm": "CPM", "vcpm": "VCPM", "cpc": "CPC", "flat_rate": "CPD"}
GOAL_UNITS = {"CPM": "IMPRESSIONS", "VCPM": "VIEWABLE_IMPRESSIONS", "CPC": "CLICKS"}
LINE_ITEM_TYPES = ("STANDARD", "SPONSORSHIP", "NETWORK", "BULK", "PRICE_PRIORITY", "HOUSE")
PRIORITIES = {
    "SPONSORSHIP": 4,
    "STANDARD": 8,
    "NETWORK": 12,
    "BULK": 12,
    "PRICE_PRIORITY": 12,
    "HOUSE": 16,
}
SHARE_OF_VOICE_TYPES = ("SPONSORSHIP", "NETWORK", "HOUSE")
PACING = {"even": "EVENLY", "asap": "AS_FAST_AS_POSSIBLE", "front_loaded": "FRONTLOADED"}
TIME_UNITS = {"minutes": "MINUTE", "hours": "HOUR", "days": "DAY", "campaign": "LIFETIME"}
_SIZE = re.compile(r"(\d{1,4})x(\d{1,4})")


def named(name: str, ident: str) -> str:
    """``"<name> [<id>]"`` within GAM's 255 characters, the id always kept."""
    suffix = f" [{ident}]"
    return name[: NAME_MAX - len(suffix)] + suffix


def micros(amount: float | Decimal) -> int:
    return int((Decimal(str(amount)) * 1_000_000).to_integral_value(rounding=ROUND_HALF_UP))


def money(amount: float | Decimal, currency: str) -> dict[str, Any]:
    return {"currencyCode": currency, "microAmount": micros(amount)}


def gam_datetime(value: datetime, timezone: str) -> dict[str, Any]:
    """GAM DateTime in the network's zone (naive datetimes are taken as UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    local = aware.astimezone(ZoneInfo(timezone))
    return {
        "date": {"year": local.year, "month": local.month, "day": local.day},
        "hour": local.hour,
        "minute": local.minute,
        "second": local.second,
        "timeZoneId": timezone,
    }


def flight_days(start: datetime, end: datetime) -> int:
    return max(1, math.ceil((end - start).total_seconds() / 86_400))


def cost_type(line: LineSpec) -> str:
    cost = COST_TYPES.get(line.pricing_model)
    if cost is None:
        raise faults.error(
            "UNSUPPORTED_FEATURE",
            f"Google Ad Manager has no '{line.pricing_model}' pricing for line items.",
            "",
            "UNSUPPORTED_PRICING",
            field="pricing_model",
            suggestion=f"Use one of: {', '.join(COST_TYPES)}.",
        )
    return cost


def line_item_type(line: LineSpec) -> str:
    override = line.implementation_config.get("line_item_type")
    if override is not None:
        if override not in LINE_ITEM_TYPES:
            raise faults.error(
                "CONFIGURATION_ERROR",
                f"implementation_config.line_item_type '{override}' is not a GAM type.",
                "",
                "BAD_LINE_ITEM_TYPE",
                field="implementation_config.line_item_type",
                suggestion=f"Use one of: {', '.join(LINE_ITEM_TYPES)}.",
            )
        return str(override)
    if line.pricing_model == "flat_rate":
        return "SPONSORSHIP"
    return "STANDARD" if line.guaranteed else "PRICE_PRIORITY"


def goal_units_from_budget(budget: float, rate: float, cost: str) -> int:
    if rate <= 0:
        return 0
    per = 1000 if cost in ("CPM", "VCPM") else 1
    return int(Decimal(str(budget)) / Decimal(str(rate)) * per)


def primary_goal(line: LineSpec, kind: str, cost: str) -> dict[str, Any]:
    if kind in SHARE_OF_VOICE_TYPES:
        share = int(line.implementation_config.get("share_of_voice", 100))
        return {"goalType": "DAILY", "unitType": "IMPRESSIONS", "units": share}
    unit = GOAL_UNITS.get(cost, "IMPRESSIONS")
    units = line.impressions_goal if line.impressions_goal and unit != "CLICKS" else None
    if units is None:
        units = goal_units_from_budget(line.budget, line.rate, cost)
    if units <= 0:
        raise faults.error(
            "VALIDATION_ERROR",
            f"Package '{line.package_id}' has no goal: give a budget and rate or an "
            "impressions goal.",
            "",
            "NO_GOAL",
            field="budget",
        )
    return {"goalType": "LIFETIME", "unitType": unit, "units": units}


def creative_placeholders(line: LineSpec) -> tuple[list[dict[str, Any]], str]:
    """Placeholders from ``implementation_config.creative_sizes`` (``["300x250"]``) or the
    sizes in the package's format ids, and the environment (video/audio players)."""
    configured = line.implementation_config.get("creative_sizes") or []
    sources = [str(s) for s in configured] or list(line.format_ids)
    sizes: list[tuple[int, int]] = []
    for source in sources:
        match = _SIZE.search(source)
        if match:
            sizes.append((int(match[1]), int(match[2])))
        elif source.startswith("audio"):
            sizes.append((1, 1))  # GAM books audio against a 1x1 player placeholder
    player = any(f.startswith(("video", "audio")) for f in line.format_ids)
    environment = str(
        line.implementation_config.get("environment_type")
        or ("VIDEO_PLAYER" if player else "BROWSER")
    )
    if not sizes:
        raise faults.error(
            "CONFIGURATION_ERROR",
            f"Package '{line.package_id}' has no creative size for Google Ad Manager.",
            "",
            "NO_CREATIVE_SIZE",
            field="implementation_config.creative_sizes",
            suggestion='Set creative_sizes (e.g. ["300x250"]) in the product\'s '
            "implementation_config.",
        )
    unique = list(dict.fromkeys(sizes))
    return (
        [{"size": {"width": w, "height": h, "isAspectRatio": False}} for w, h in unique],
        environment,
    )


def frequency_caps(cap: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """AdCP frequency_cap: ``max_impressions`` per ``window`` ({interval, unit}), and/or
    a ``suppress`` cooldown (one impression per interval)."""
    if not cap:
        return []
    caps: list[dict[str, Any]] = []
    if cap.get("max_impressions"):
        window = cap.get("window") or {"interval": 1, "unit": "days"}
        caps.append(_cap(int(cap["max_impressions"]), window))
    suppress = cap.get("suppress")
    if suppress is None and cap.get("suppress_minutes"):
        suppress = {"interval": math.ceil(float(cap["suppress_minutes"])), "unit": "minutes"}
    if suppress:
        caps.append(_cap(1, suppress))
    return caps


def _cap(max_impressions: int, window: Mapping[str, Any]) -> dict[str, Any]:
    unit = str(window.get("unit", "days"))
    interval = int(window.get("interval", 1))
    if unit == "seconds":
        unit, interval = "minutes", max(1, math.ceil(interval / 60))
    time_unit = TIME_UNITS.get(unit)
    if time_unit is None:
        raise faults.error(
            "VALIDATION_ERROR",
            f"Frequency cap window unit '{unit}' is not supported.",
            "",
            "BAD_FREQUENCY_CAP",
            field="targeting.frequency_cap.window.unit",
        )
    return {
        "maxImpressions": max_impressions,
        "numTimeUnits": 1 if time_unit == "LIFETIME" else interval,
        "timeUnit": time_unit,
    }


def order(spec: OrderSpec, advertiser_id: int, trafficker_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": named(spec.name, spec.media_buy_id),
        "advertiserId": advertiser_id,
        "traffickerId": trafficker_id,
        "notes": f"AdCP media buy {spec.media_buy_id} for {spec.advertiser_name}"[:65_535],
    }
    if spec.po_number:
        out["poNumber"] = spec.po_number[:63]
    if spec.media_buy_id.isdigit() and int(spec.media_buy_id) < 2**63:
        out["externalOrderId"] = int(spec.media_buy_id)
    return out


def line_item(
    line: LineSpec,
    order_id: int,
    targeting: dict[str, Any],
    *,
    timezone: str,
    now: datetime,
) -> dict[str, Any]:
    cost = cost_type(line)
    kind = line_item_type(line)
    placeholders, environment = creative_placeholders(line)
    unit_cost = line.rate
    if cost == "CPD":  # a flat fee: GAM charges it per day of the flight
        unit_cost = line.budget / flight_days(line.start, line.end)
    out: dict[str, Any] = {
        "orderId": order_id,
        "name": named(line.name, line.package_id),
        "externalId": line.package_id,
        "endDateTime": gam_datetime(line.end, timezone),
        "creativeRotationType": str(line.implementation_config.get("creative_rotation", "EVEN")),
        "deliveryRateType": PACING.get(line.pacing, "EVENLY"),
        "frequencyCaps": frequency_caps(line.targeting.frequency_cap),
        "lineItemType": kind,
        "priority": int(line.implementation_config.get("priority", PRIORITIES[kind])),
        "costPerUnit": money(unit_cost, line.currency),
        "costType": cost,
        "creativePlaceholders": placeholders,
        "environmentType": environment,
        "allowOverbook": False,
        "notes": f"AdCP package {line.package_id} (product {line.product_id})",
        "primaryGoal": primary_goal(line, kind, cost),
        "targeting": targeting,
    }
    return out | line_start(line.start, now, timezone)


def line_start(start: datetime, now: datetime, timezone: str) -> dict[str, Any]:
    """A line item's start fields: GAM rejects start times in the past."""
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if start <= now:
        return {"startDateTimeType": "IMMEDIATELY"}
    return {
        "startDateTimeType": "USE_START_DATE_TIME",
        "startDateTime": gam_datetime(start, timezone),
    }
