"""Kevel's two asynchronous jobs: a queued delivery report and an availability forecast.
Both are queued with a POST, then polled (bounded by ``poll_deadline_s``) until done."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from adcp_agent.adapter_protocol import DeliveryRow, Forecast, ForecastRequest, Targeting
from adcp_agent.errors import AdcpError
from adcp_agent_adapters._http import ApiSession, require_id
from adcp_agent_adapters.kevel import mapping as m

_TARGETING_KEYS = (
    "geo_countries",
    "geo_countries_exclude",
    "geo_regions",
    "geo_regions_exclude",
    "geo_metros",
    "geo_metros_exclude",
    "device_types",
    "device_types_exclude",
)


def _failed(what: str, reason: Any, ref: str) -> AdcpError:
    return AdcpError(
        "SERVICE_UNAVAILABLE",
        f"Kevel could not finish the {what}: {reason or 'no reason given'}",
        recovery="transient",
        details={"ad_server": "kevel", "reference": ref},
    )


async def delivery_report(
    api: ApiSession, campaign_id: int, start: date, end: date, completion_event_id: int | None
) -> list[DeliveryRow]:
    criteria = {
        "StartDateISO": f"{start.isoformat()}T00:00:00",
        "EndDateISO": f"{end.isoformat()}T23:59:59",
        "GroupBy": ["day", "optionId"],
        "Parameters": [{"campaignId": campaign_id}],
    }
    queued = await api.request("POST", "/report/queue", json=criteria)
    ref = require_id(queued, "Id", label="Kevel", what="report", code="SERVICE_UNAVAILABLE")
    report = await api.poll(
        lambda: api.request("GET", f"/report/queue/{ref}"),
        lambda r: r.get("Status") != m.REPORT_PENDING,
        what="delivery report",
        ref=ref,
    )
    if report.get("Status") != m.REPORT_DONE:
        raise _failed("delivery report", report.get("Message"), ref)
    return m.delivery_rows(report.get("Result") or {}, completion_event_id)


def forecast_targeting(request: ForecastRequest, tag_names: list[str]) -> dict[str, Any]:
    """The forecast's ``Targeting`` block, from the product and the buyer's overlay."""
    overlay = request.targeting
    targeting = Targeting(
        **{k: tuple(overlay[k]) for k in _TARGETING_KEYS if k in overlay},
        key_values={k: tuple(v) for k, v in overlay.get("key_values", {}).items()},
        frequency_cap=overlay.get("frequency_cap"),
    )
    days = max(math.ceil((request.end - request.start).total_seconds() / 86_400), 1)
    impl = request.implementation_config
    fields = m.targeting_fields(targeting, impl, tag_names, days)
    expression = fields.pop("CustomTargeting")
    return {
        **fields,
        "CustomTargeting": [expression] if expression else [],
        "SiteZoneTargeting": m.site_zone_targeting(impl),
    }


async def availability(
    api: ApiSession, request: ForecastRequest, priority_id: int, tag_names: list[str]
) -> Forecast:
    body = {
        "Type": "available",
        "StartDate": request.start.date().isoformat(),
        "EndDate": request.end.date().isoformat(),
        "TimeZone": "UTC",
        "PriorityId": priority_id,
        "Targeting": forecast_targeting(request, tag_names),
    }
    queued = await api.request("POST", "/forecaster", json=body)
    ref = require_id(queued, "id", label="Kevel", what="forecast", code="SERVICE_UNAVAILABLE")
    done = await api.poll(
        lambda: api.request("GET", f"/forecaster/{ref}"),
        lambda r: r.get("status") in ("finished", "failed", "error"),
        what="forecast",
        ref=ref,
    )
    if done.get("status") != "finished" or done.get("resultStatus") != "success":
        raise _failed("forecast", done.get("desc"), ref)
    total = (done.get("result") or {}).get("total") or {}
    available = int((total.get("available") or {}).get("impressions", 0))
    booked = int((total.get("booked") or {}).get("impressions", 0))
    # Kevel's figure already nets out every booked flight (ours included), so core's
    # reserved_impressions is not subtracted a second time.
    return Forecast(available_impressions=available, capacity_impressions=available + booked)
