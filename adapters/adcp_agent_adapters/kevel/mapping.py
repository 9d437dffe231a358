"""AdCP ↔ Kevel translation: pure functions, no I/O.

Kevel enumerations used (Management API v1): GoalType 1 = impressions, 2 = percentage;
RateType 1 = flat, 2 = CPM, 3 = CPC; CapType 4 = revenue (budget caps); FreqCapType
1 = hour, 2 = day. Targeting lives on the flight: SiteZoneTargeting and GeoTargeting lists
(``IsExclude``), Keywords (newline-separated, any line matches) and CustomTargeting (a
Kevel targeting expression over request properties such as ``adcp_seg``).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from adcp_agent.adapter_protocol import CreativeSpec, DeliveryRow, LineSpec, Targeting
from adcp_agent.errors import AdcpError

GOAL_IMPRESSIONS, GOAL_PERCENTAGE = 1, 2
RATE_TYPES = {"flat_rate": 1, "cpm": 2, "vcpm": 2, "cpc": 3}
CAP_REVENUE = 4
FREQ_HOUR, FREQ_DAY = 1, 2
FORM_FACTORS = {"desktop", "mobile", "tablet"}
REPORT_PENDING, REPORT_DONE, REPORT_FAILED = 1, 2, 3
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_UNIT_HOURS = {"seconds": 1 / 3600, "minutes": 1 / 60, "hours": 1.0}


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unsupported(what: str, field: str) -> AdcpError:
    return AdcpError(
        "UNSUPPORTED_FEATURE",
        f"Kevel flights cannot express {what}.",
        field=field,
        details={"ad_server": "kevel"},
    )


def geo_targets(t: Targeting) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for country in t.geo_countries:
        out.append({"CountryCode": country.upper(), "IsExclude": False})
    for country in t.geo_countries_exclude:
        out.append({"CountryCode": country.upper(), "IsExclude": True})
    for regions, exclude in ((t.geo_regions, False), (t.geo_regions_exclude, True)):
        for region in regions:
            country, sep, code = region.partition("-")
            if not sep or not code:
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"Region '{region}' is not ISO 3166-2 (e.g. 'US-NY').",
                    field="targeting.geo_regions" + ("_exclude" if exclude else ""),
                )
            out.append(
                {"CountryCode": country.upper(), "Region": code.upper(), "IsExclude": exclude}
            )
    for metros, exclude in ((t.geo_metros, False), (t.geo_metros_exclude, True)):
        for metro in metros:
            code = metro.rsplit("-", 1)[-1]
            if not code.isdigit():
                raise AdcpError(
                    "VALIDATION_ERROR",
                    f"Metro '{metro}' is not a Nielsen DMA code (e.g. '501').",
                    field="targeting.geo_metros" + ("_exclude" if exclude else ""),
                )
            out.append({"CountryCode": "US", "MetroCode": int(code), "IsExclude": exclude})
    return out


def keywords(t: Targeting, tag_names: list[str], extra: list[str]) -> str:
    lines = list(extra)
    for name in tag_names:
        lines.extend(t.key_values.get(name, ()))
    return "\n".join(dict.fromkeys(line for line in lines if line))


_EXCLUDE = "_exclude"


def custom_targeting(t: Targeting, tag_names: list[str], extra: str | None) -> str:
    """Each key-value is ``(key CONTAINS "a" OR key CONTAINS "b")`` (``NOT (…)`` for an
    ``…_exclude`` key); all are ANDed."""
    clauses = [f"({extra})"] if extra else []
    for key, values in sorted(t.key_values.items()):
        if key in tag_names or not values:
            continue
        if not _NAME.match(key):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Key '{key}' cannot be used in Kevel custom targeting.",
                field="targeting.key_values",
            )
        # An exclusion (``adcp_seg_exclude``, ``adcp_aud_exclude``) is NOT the base key.
        base = key.removesuffix(_EXCLUDE)
        any_of = "(" + " OR ".join(f"{base} CONTAINS {_quote(v)}" for v in values) + ")"
        clauses.append(f"NOT {any_of}" if base != key else any_of)
    for devices, exclude in ((t.device_types, False), (t.device_types_exclude, True)):
        lowered = [d.lower() for d in devices]
        if not lowered:
            continue
        unknown = sorted(set(lowered) - FORM_FACTORS)
        if unknown:
            field = "targeting.device_types" + ("_exclude" if exclude else "")
            raise unsupported(f"device types {', '.join(unknown)}", field)
        any_of = "(" + " OR ".join(f"$device.formFactor = {_quote(d)}" for d in lowered) + ")"
        clauses.append(f"NOT {any_of}" if exclude else any_of)
    return " AND ".join(clauses)


def freq_cap(cap: dict[str, Any] | None, flight_days: int) -> dict[str, Any]:
    """AdCP frequency_cap → Kevel FreqCap fields. A cooldown (``suppress``) becomes one
    impression per window, rounded up to whole hours."""
    if not cap:
        return {"IsFreqCap": False}
    window = cap.get("window")
    count = cap.get("max_impressions")
    if not (count and window):
        minutes = cap.get("suppress_minutes")
        window = cap.get("suppress") or (
            {"interval": minutes, "unit": "minutes"} if minutes else None
        )
        count = 1
    if not window:
        raise AdcpError(
            "VALIDATION_ERROR",
            "frequency_cap needs max_impressions with a window, or a suppress period.",
            field="targeting.frequency_cap",
        )
    interval, unit = float(window.get("interval", 1)), str(window.get("unit", ""))
    if unit in _UNIT_HOURS:
        kind, duration = FREQ_HOUR, math.ceil(interval * _UNIT_HOURS[unit])
    elif unit == "days":
        kind, duration = FREQ_DAY, math.ceil(interval)
    elif unit == "campaign":
        kind, duration = FREQ_DAY, flight_days
    else:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"Unknown frequency_cap window unit '{unit}'.",
            field="targeting.frequency_cap.window.unit",
        )
    return {
        "IsFreqCap": True,
        "FreqCap": int(count),
        "FreqCapDuration": max(duration, 1),
        "FreqCapType": kind,
    }


def targeting_fields(
    t: Targeting, impl: dict[str, Any], tag_names: list[str], flight_days: int
) -> dict[str, Any]:
    if t.dayparts:
        raise unsupported("named dayparts (use a Kevel day-parted product)", "targeting.dayparts")
    if t.postal_codes or t.postal_codes_exclude:
        raise unsupported("AdCP postal areas", "targeting.geo_postal_areas")
    if t.device_platforms:
        raise unsupported("AdCP device_platform", "targeting.device_platform")
    if t.daypart_windows:
        raise unsupported(
            "AdCP daypart_targets (use a Kevel day-parted product)", "targeting.daypart_targets"
        )
    return {
        "GeoTargeting": geo_targets(t),
        "Keywords": keywords(t, tag_names, list(impl.get("keywords", []))),
        "CustomTargeting": custom_targeting(t, tag_names, impl.get("custom_targeting")),
        **freq_cap(t.frequency_cap, flight_days),
    }


def site_zone_targeting(impl: dict[str, Any]) -> list[dict[str, Any]]:
    """``site_ids`` target whole sites; ``zone_ids`` need the one site they belong to."""
    sites = [int(s) for s in impl.get("site_ids", [])]
    zones = [int(z) for z in impl.get("zone_ids", [])]
    if zones and len(sites) != 1:
        raise AdcpError(
            "CONFIGURATION_ERROR",
            "A Kevel product with zone_ids must name exactly one site in site_ids.",
            field="implementation_config.site_ids",
        )
    if zones:
        return [{"SiteId": sites[0], "ZoneId": z, "IsExclude": False} for z in zones]
    return [{"SiteId": s, "IsExclude": False} for s in sites]


def flight_days(line: LineSpec) -> int:
    return max(math.ceil((line.end - line.start).total_seconds() / 86_400), 1)


def days_between(start_iso: str | None, end_iso: str | None) -> int:
    """Whole days of a flight as Kevel stores it (a flight without an end counts 30)."""
    if not start_iso or not end_iso:
        return 30
    start, end = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in (start_iso, end_iso))
    if (start.tzinfo is None) != (end.tzinfo is None):
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    return max(math.ceil((end - start).total_seconds() / 86_400), 1)


def flight_body(
    line: LineSpec, campaign_id: int, priority_id: int, tag_names: list[str]
) -> dict[str, Any]:
    rate_type = RATE_TYPES.get(line.pricing_model)
    if rate_type is None:
        raise unsupported(f"{line.pricing_model} pricing", "packages.pricing_option_id")
    if line.pacing != "even":
        raise unsupported(f"{line.pacing} pacing (Kevel paces evenly)", "packages.pacing")
    impl = line.implementation_config
    goal = line.impressions_goal
    return {
        "Name": f"{line.name} ({line.package_id})"[:200],
        "CampaignId": campaign_id,
        "PriorityId": priority_id,
        "StartDateISO": iso(line.start),
        "EndDateISO": iso(line.end),
        "IsActive": True,  # the campaign's IsActive gates delivery
        "IsDeleted": False,
        "GoalType": GOAL_IMPRESSIONS if goal else GOAL_PERCENTAGE,
        "Impressions": goal or 100,
        "RateType": rate_type,
        "Price": line.rate,
        "CapType": CAP_REVENUE,
        "LifetimeCapAmount": int(line.budget),
        "LifetimeCapAmountDecimal": line.budget,
        "SiteZoneTargeting": site_zone_targeting(impl),
        **targeting_fields(line.targeting, impl, tag_names, flight_days(line)),
    }


def creative_body(spec: CreativeSpec, advertiser_id: int, ad_type_id: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AdvertiserId": advertiser_id,
        "AdTypeId": ad_type_id,
        "Title": spec.name[:250],
        "Alt": spec.name[:250],
        "Url": spec.click_url or "",
        "IsActive": True,
        "IsDeleted": False,
        "Metadata": json.dumps(
            {
                "adcp_creative_id": spec.creative_id,
                "format_id": spec.format_id,
                "kind": spec.kind,
                "asset_url": spec.asset_url,
                "duration_s": spec.duration_s,
            }
        ),
    }
    if spec.snippet:
        body.update(IsHTMLJS=True, ScriptBody=spec.snippet)
    elif spec.kind == "display" and spec.asset_url:
        body["ImageLink"] = spec.asset_url
    elif not spec.asset_url:
        raise AdcpError(
            "VALIDATION_ERROR",
            "A Kevel creative needs an asset URL or an HTML/VAST snippet.",
            field="creatives.assets",
        )
    return body


def delivery_rows(result: dict[str, Any], completion_event_id: int | None) -> list[DeliveryRow]:
    """A finished queued report grouped by ``day`` and ``flightId`` → one row per flight and
    day. Kevel names the flight ``OptionId`` and splits it by RateTypeId; we sum."""
    sums: dict[tuple[str, date], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for record in result.get("Records") or []:
        for detail in record.get("Details") or []:
            grouping = detail.get("Grouping") or {}
            flight = grouping.get("OptionId", grouping.get("FlightId"))
            stamp = detail.get("Date") or record.get("Date")
            if flight is None or not stamp:
                continue
            day = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).date()
            acc = sums[(str(flight), day)]
            events = detail.get("Events") or {}
            acc[0] += int(detail.get("Impressions") or 0)
            acc[1] += int(detail.get("Clicks") or 0)
            if completion_event_id is not None:
                acc[2] += int(events.get(str(completion_event_id)) or 0)
            acc[3] += float(detail.get("Revenue") or 0.0)
    return [
        DeliveryRow(flight, day, int(a[0]), int(a[1]), int(a[2]), round(a[3], 2))
        for (flight, day), a in sorted(sums.items())
    ]
