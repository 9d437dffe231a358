"""Kevel (formerly Adzerk) over its Management API v1 (``X-Adzerk-ApiKey``).

A media buy is a Kevel Campaign under an Advertiser (the principal's
``kevel_advertiser_id``, else found by name, else created); each package is a Flight;
a creative is a Creative, assigned to a flight as an Ad (``/flight/{id}/creative``).
Kevel updates replace the whole object, so every change is GET → modify → PUT of the
full flight or campaign. Geo targets of an existing flight live in their own
sub-resource (``/flight/{id}/geotargeting``), so they are never echoed in a PUT.
Delivery comes from the queued reporting API, forecasts from Kevel Forecast.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from adcp_agent.adapter_protocol import (
    CreativeSpec,
    DeliveryRow,
    ExternalOrderState,
    Forecast,
    ForecastRequest,
    InventoryItem,
    LineAction,
    LineChange,
    LineSpec,
    OrderAction,
    OrderResult,
    OrderSpec,
)
from adcp_agent.errors import AdcpError
from adcp_agent_adapters._http import (
    ApiSession,
    HttpApi,
    HttpSettings,
    SleepFn,
    capacity_forecast,
    require_id,
)
from adcp_agent_adapters.kevel import jobs
from adcp_agent_adapters.kevel import mapping as m
from adcp_agent_adapters.kevel.config import KevelConfig

_NESTED = ("GeoTargeting", "SiteZoneTargeting", "CreativeMaps", "Flights")


def _campaign_name(name: str, media_buy_id: str) -> str:
    """The Kevel campaign name of a media buy's order (Kevel caps names at 200)."""
    return f"{name} ({media_buy_id})"[:200]


def _search_items(found: Any) -> list[dict[str, Any]]:
    """The matches of a Kevel search answer: ``{"items": [...]}`` (``Items`` in some of
    its documentation's examples) or a bare list."""
    if isinstance(found, list):
        return found
    body = found or {}
    return list(body.get("items") or body.get("Items") or [])


def _id(value: str | int, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AdcpError(
            "REFERENCE_NOT_FOUND",
            f"'{value}' is not a Kevel {what} id.",
            details={"ad_server": "kevel"},
        ) from None


def _new_id(body: Any, what: str) -> int:
    return int(require_id(body, "Id", label="Kevel", what=what, code="SERVICE_UNAVAILABLE"))


def _status(obj: dict[str, Any]) -> str:
    if obj.get("IsArchived"):
        return "archived"
    return "active" if obj.get("IsActive") else "inactive"


def _full(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The complete object for a PUT, minus sub-resources Kevel manages on their own."""
    return {**{k: v for k, v in obj.items() if k not in _NESTED}, **changes}


class KevelAdapter:
    name: ClassVar[str] = "kevel"
    config_model: ClassVar[type[BaseModel]] = KevelConfig

    def __init__(
        self,
        config: KevelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        self.config = config
        self._api = HttpApi(self._settings, sleep=sleep, transport=transport)
        self._ad_types: dict[tuple[int, int], int] | None = None

    def _settings(self) -> HttpSettings:
        key = self.config.resolve_api_key("Kevel")
        headers = {"X-Adzerk-ApiKey": key}
        return HttpSettings("kevel", "Kevel", self.config.base_url, headers, self.config)

    async def _list(self, api: ApiSession, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, 1001):
            body = await api.request("GET", path, params={"page": page, "pageSize": 500})
            if isinstance(body, list):
                items = body
                break
            items.extend((body or {}).get("items") or [])
            if page >= int((body or {}).get("totalPages") or 1):
                break
        return [item for item in items if not item.get("IsDeleted")]

    async def health(self) -> bool:
        try:
            async with self._api.session() as api:
                await api.request("GET", "/channel", params={"page": 1, "pageSize": 1})
        except AdcpError:
            return False
        return True

    async def sync_inventory(self) -> list[InventoryItem]:
        root = f"network:{self.config.network_id}"
        items = [InventoryItem(root, f"Kevel network {self.config.network_id}", "network")]
        async with self._api.session() as api:
            for c in await self._list(api, "/channel"):
                items.append(
                    InventoryItem(f"channel:{c['Id']}", c.get("Title", ""), "channel", root)
                )
            for p in await self._list(api, "/priority"):
                parent = f"channel:{p['ChannelId']}" if p.get("ChannelId") else root
                items.append(
                    InventoryItem(f"priority:{p['Id']}", p.get("Name", ""), "priority", parent)
                )
            for s in await self._list(api, "/site"):
                items.append(InventoryItem(f"site:{s['Id']}", s.get("Title", ""), "site", root))
            for z in await self._list(api, "/zone"):
                items.append(
                    InventoryItem(
                        f"zone:{z['Id']}", z.get("Name", ""), "zone", f"site:{z.get('SiteId')}"
                    )
                )
        return items

    async def forecast(self, request: ForecastRequest) -> Forecast:
        if self.config.forecast_mode == "daily_capacity":
            return capacity_forecast(request)
        async with self._api.session() as api:
            impl = request.implementation_config
            priority = await self._priority(api, impl, guaranteed=True)
            return await jobs.availability(api, request, priority, self.config.tags_from_signals)

    async def _priority(self, api: ApiSession, impl: dict[str, Any], *, guaranteed: bool) -> int:
        explicit = impl.get("priority_id") or self.config.default_priority_id
        if explicit:
            return int(explicit)
        channel = impl.get("channel_id") or self.config.default_channel_id
        if channel:
            ranked = sorted(
                (
                    p
                    for p in await self._list(api, "/priority")
                    if p.get("ChannelId") == int(channel)
                ),
                key=lambda p: p.get("Weight") or 0,
            )
            if ranked:  # weight 1 is Kevel's highest priority
                return int((ranked[0] if guaranteed else ranked[-1])["Id"])
        raise AdcpError(
            "CONFIGURATION_ERROR",
            "No Kevel priority for this product.",
            field="implementation_config.priority_id",
            suggestion="Set priority_id (or channel_id) on the product, or "
            "default_priority_id in the tenant's adapter_config.",
        )

    async def _flight_body(
        self, api: ApiSession, line: LineSpec, campaign_id: int
    ) -> dict[str, Any]:
        priority = await self._priority(api, line.implementation_config, guaranteed=line.guaranteed)
        return m.flight_body(line, campaign_id, priority, self.config.tags_from_signals)

    async def _advertiser(self, api: ApiSession, name: str, mapping: dict[str, Any]) -> int:
        if mapping.get("kevel_advertiser_id"):
            return _id(mapping["kevel_advertiser_id"], "advertiser")
        found = await api.request("POST", "/advertiser/search", data={"advertiserName": name})
        for adv in _search_items(found):
            if str(adv.get("Title", "")).casefold() == name.casefold() and not adv.get("IsDeleted"):
                return int(adv["Id"])
        created = await api.request(
            "POST", "/advertiser", json={"Title": name, "IsActive": True, "IsDeleted": False}
        )
        return _new_id(created, "advertiser")

    async def create_order(self, spec: OrderSpec) -> OrderResult:
        async with self._api.session() as api:
            bodies = [(line, await self._flight_body(api, line, 0)) for line in spec.lines]
            advertiser = await self._advertiser(api, spec.advertiser_name, spec.advertiser_mapping)
            campaign = await api.request(
                "POST",
                "/campaign",
                json={
                    "Name": _campaign_name(spec.name, spec.media_buy_id),
                    "AdvertiserId": advertiser,
                    "IsActive": False,  # nothing serves before order_action("activate")
                    "IsDeleted": False,
                    "IsArchived": False,
                    "CapType": m.CAP_REVENUE,
                    "LifetimeCapAmount": int(spec.total_budget),
                },
            )
            campaign_id = _new_id(campaign, "campaign")
            line_ids: dict[str, str] = {}
            try:
                for line, body in bodies:
                    flight = await api.request(
                        "POST", "/flight", json={**body, "CampaignId": campaign_id}
                    )
                    line_ids[line.package_id] = str(_new_id(flight, "flight"))
            except AdcpError as exc:
                exc.details["kevel_campaign_id"] = campaign_id
                try:  # leave nothing half-booked that could serve later
                    await self._campaign_put(api, campaign_id, IsActive=False, IsArchived=True)
                except AdcpError:
                    exc.details["cleanup"] = "failed: archive the campaign in Kevel by hand"
                raise
        return OrderResult(str(campaign_id), line_ids)

    async def find_order(self, media_buy_id: str, name: str) -> str | None:
        """The campaign ``create_order`` made for this media buy, by the name it gave it
        (which carries the buy id). Kevel's campaign search answers in one request; its
        matching of names with punctuation is not documented, so a name it does not
        return (or a network answering 404 to it) is looked for in the campaign list,
        page by page: a campaign missed here could go on serving with nobody's buy
        behind it. Only for a booking interrupted mid-way."""
        wanted = _campaign_name(name, media_buy_id)

        def exact(campaigns: list[dict[str, Any]]) -> str | None:
            for campaign in campaigns:
                if (
                    campaign.get("Name") == wanted
                    and campaign.get("Id") is not None
                    and not campaign.get("IsDeleted")
                ):
                    return str(campaign["Id"])
            return None

        async with self._api.session() as api:
            try:
                found = await api.request("POST", "/campaign/search", data={"campaignName": wanted})
            except AdcpError as exc:
                if exc.details.get("status") != 404:
                    raise
                found = None
            return exact(_search_items(found)) or exact(await self._list(api, "/campaign"))

    async def find_line(self, external_order_id: str, package_id: str) -> str | None:
        """The flight ``add_line`` made for this package: its name ends with the package
        id in parentheses (``mapping.flight_body``)."""
        campaign_id = _id(external_order_id, "campaign")
        async with self._api.session() as api:
            flights = await self._list(api, f"/campaign/{campaign_id}/flight")
        for flight in flights:
            if str(flight.get("Name", "")).endswith(f"({package_id})") and flight.get("Id"):
                return str(flight["Id"])
        return None

    async def add_line(self, external_order_id: str, line: LineSpec) -> str:
        campaign_id = _id(external_order_id, "campaign")
        async with self._api.session() as api:
            await api.request("GET", f"/campaign/{campaign_id}")
            flight = await api.request(
                "POST", "/flight", json=await self._flight_body(api, line, campaign_id)
            )
        return str(_new_id(flight, "flight"))

    async def _flight(self, api: ApiSession, order_id: str, line_id: str) -> dict[str, Any]:
        flight = await api.request("GET", f"/flight/{_id(line_id, 'flight')}")
        if flight.get("CampaignId") != _id(order_id, "campaign"):
            raise AdcpError(
                "REFERENCE_NOT_FOUND",
                f"Kevel flight {line_id} is not part of campaign {order_id}.",
                details={"ad_server": "kevel"},
            )
        return flight

    async def update_line(
        self, external_order_id: str, external_line_id: str, change: LineChange
    ) -> None:
        if change.device_bid_adjustments:
            raise m.unsupported("device bid adjustments", "packages.bid_adjustments")
        if change.pacing not in (None, "even"):
            raise m.unsupported(f"{change.pacing} pacing (Kevel paces evenly)", "packages.pacing")
        async with self._api.session() as api:
            flight = await self._flight(api, external_order_id, external_line_id)
            body = _full(flight)
            if change.budget is not None:
                body.update(
                    CapType=m.CAP_REVENUE,
                    LifetimeCapAmount=int(change.budget),
                    LifetimeCapAmountDecimal=change.budget,
                )
            if change.daily_budget is not None:
                body.update(
                    CapType=m.CAP_REVENUE,
                    DailyCapAmount=int(change.daily_budget),
                    DailyCapAmountDecimal=change.daily_budget,
                )
            if change.impressions_goal is not None:
                body.update(GoalType=m.GOAL_IMPRESSIONS, Impressions=change.impressions_goal)
            if change.rate is not None:
                body["Price"] = change.rate
            if change.start is not None:
                body["StartDateISO"] = m.iso(change.start)
            if change.end is not None:
                body["EndDateISO"] = m.iso(change.end)
            geo: list[dict[str, Any]] | None = None
            if change.targeting is not None:
                days = m.days_between(body.get("StartDateISO"), body.get("EndDateISO"))
                fields = m.targeting_fields(
                    change.targeting, {}, self.config.tags_from_signals, days
                )
                geo = fields.pop("GeoTargeting")
                body.update(fields)
            await api.request("PUT", f"/flight/{flight['Id']}", json=body)
            if geo is not None:
                base = f"/flight/{flight['Id']}/geotargeting"
                for old in flight.get("GeoTargeting") or []:
                    await api.request("GET", f"{base}/{old['LocationId']}/delete")
                for target in geo:
                    await api.request("POST", base, json=target)

    async def line_action(
        self, external_order_id: str, external_line_id: str, action: LineAction
    ) -> None:
        async with self._api.session() as api:
            flight = await self._flight(api, external_order_id, external_line_id)
            body = _full(flight, IsActive=action == "resume")
            await api.request("PUT", f"/flight/{flight['Id']}", json=body)

    async def _campaign_put(self, api: ApiSession, campaign_id: int, **changes: Any) -> None:
        campaign = await api.request("GET", f"/campaign/{campaign_id}")
        await api.request("PUT", f"/campaign/{campaign_id}", json=_full(campaign, **changes))

    async def order_action(self, external_order_id: str, action: OrderAction) -> None:
        campaign_id = _id(external_order_id, "campaign")
        async with self._api.session() as api:
            campaign = await api.request("GET", f"/campaign/{campaign_id}")
            if campaign.get("IsArchived") and action not in ("archive", "cancel"):
                raise AdcpError(
                    "INVALID_STATE",
                    f"Kevel campaign {campaign_id} is archived; it cannot {action}.",
                    details={"ad_server": "kevel", "status": "archived"},
                )
            if action == "approve":
                return  # Kevel has no approval step; the campaign stays inactive until activate
            changes: dict[str, Any] = {"IsActive": action in ("activate", "resume")}
            if action in ("archive", "cancel"):
                changes["IsArchived"] = True
            await api.request("PUT", f"/campaign/{campaign_id}", json=_full(campaign, **changes))

    async def _ad_type(self, api: ApiSession, spec: CreativeSpec) -> int:
        size = (spec.width, spec.height) if spec.width and spec.height else None
        for key in (spec.format_id, f"{size[0]}x{size[1]}" if size else None):
            if key and key in self.config.ad_type_ids:
                return self.config.ad_type_ids[key]
        if size:
            if self._ad_types is None:
                types = await self._list(api, "/adtypes")
                self._ad_types = {(t.get("Width"), t.get("Height")): int(t["Id"]) for t in types}
            if size in self._ad_types:
                return self._ad_types[size]
        raise AdcpError(
            "VALIDATION_ERROR",
            f"No Kevel ad type for format '{spec.format_id}'.",
            field="creatives.format_id",
            suggestion="Add the format to ad_type_ids in the tenant's Kevel adapter_config.",
        )

    async def upload_creative(self, spec: CreativeSpec) -> str:
        if not spec.advertiser_mapping.get("kevel_advertiser_id"):
            raise AdcpError(
                "CONFIGURATION_ERROR",
                "The principal has no kevel_advertiser_id, so the creative has no owner.",
                field="platform_mappings.kevel_advertiser_id",
                suggestion="Map the buyer to its Kevel advertiser id.",
            )
        advertiser = _id(spec.advertiser_mapping["kevel_advertiser_id"], "advertiser")
        async with self._api.session() as api:
            body = m.creative_body(spec, advertiser, await self._ad_type(api, spec))
            created = await api.request("POST", "/creative", json=body)
        return str(_new_id(created, "creative"))

    async def assign_creative(
        self, external_order_id: str, external_line_id: str, external_creative_id: str
    ) -> None:
        async with self._api.session() as api:
            flight = await self._flight(api, external_order_id, external_line_id)
            ad = {
                "Creative": {"Id": _id(external_creative_id, "creative")},
                "FlightId": flight["Id"],
                "CampaignId": flight["CampaignId"],
                "IsActive": True,
                "IsDeleted": False,
                "DistributionType": 1,  # auto-balanced across the flight's ads
                "SizeOverride": False,
                "Iframe": False,
            }
            await api.request("POST", f"/flight/{flight['Id']}/creative", json=ad)

    async def get_delivery(
        self, external_order_id: str, start: date, end: date
    ) -> list[DeliveryRow]:
        campaign_id = _id(external_order_id, "campaign")
        async with self._api.session() as api:
            return await jobs.delivery_report(
                api, campaign_id, start, end, self.config.completion_event_id
            )

    async def sync_orders(self, external_order_ids: list[str]) -> list[ExternalOrderState]:
        states: list[ExternalOrderState] = []
        async with self._api.session() as api:
            for order_id in external_order_ids:
                campaign_id = _id(order_id, "campaign")
                try:
                    campaign = await api.request("GET", f"/campaign/{campaign_id}")
                except AdcpError as exc:
                    if exc.code == "REFERENCE_NOT_FOUND":
                        continue
                    raise
                flights = await self._list(api, f"/campaign/{campaign_id}/flight")
                lines = {str(f["Id"]): _status(f) for f in flights}
                states.append(ExternalOrderState(order_id, _status(campaign), lines))
        return states
