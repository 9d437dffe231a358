"""Triton Digital (audio) over the ASSUMED booking contract described in
``adcp_agent_adapters.triton``: campaigns, flights with stations/dayparts/audio formats,
audio creatives and delivery reports, each at a configurable path."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import quote

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
    Targeting,
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
from adcp_agent_adapters.triton.config import TritonConfig

ORDER_STATUS = {
    "activate": "active",
    "approve": "approved",
    "pause": "paused",
    "resume": "active",
    "archive": "archived",
    "cancel": "canceled",
}
LINE_STATUS = {"pause": "paused", "resume": "active"}
CREATIVE_TYPES = {"audio": "audio", "display": "companion_banner"}


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fill(template: str, **ids: str) -> str:
    """A path template with ids percent-encoded, so an id can never leave its segment."""
    return template.format(**{k: quote(str(v), safe="") for k, v in ids.items()})


def targeting_body(t: Targeting) -> dict[str, Any]:
    if t.daypart_windows:  # Triton's dayparts are the stations' named ones
        raise AdcpError(
            "UNSUPPORTED_FEATURE",
            "Triton flights take the stations' named dayparts, not AdCP daypart_targets.",
            field="targeting.daypart_targets",
            suggestion="Send the station daypart names in the seed's dayparts.",
            details={"ad_server": "triton_digital"},
        )
    return {
        "countries": list(t.geo_countries),
        "countries_exclude": list(t.geo_countries_exclude),
        "regions": list(t.geo_regions),
        "regions_exclude": list(t.geo_regions_exclude),
        "metros": list(t.geo_metros),
        "metros_exclude": list(t.geo_metros_exclude),
        "devices": list(t.device_types),
        "devices_exclude": list(t.device_types_exclude),
        "platforms": list(t.device_platforms),
        "postal_codes": list(t.postal_codes),
        "postal_codes_exclude": list(t.postal_codes_exclude),
        "key_values": {k: list(v) for k, v in t.key_values.items()},
    }


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    """A list answer: a bare array, or the array under ``key`` or ``items``."""
    if isinstance(body, list):
        return body
    body = body or {}
    return body.get(key) or body.get("items") or []


def _created_id(body: Any, what: str) -> str:
    return require_id(body, "id", label="Triton Digital", what=what, code="CONFIGURATION_ERROR")


def _mismatch(what: str, exc: Exception) -> AdcpError:
    return AdcpError(
        "CONFIGURATION_ERROR",
        f"Triton Digital's {what} does not match the assumed contract ({exc!r}).",
        suggestion="Compare the booking API with the contract in the README.",
        details={"ad_server": "triton_digital"},
    )


class TritonAdapter:
    name: ClassVar[str] = "triton_digital"
    config_model: ClassVar[type[BaseModel]] = TritonConfig

    def __init__(
        self,
        config: TritonConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        self.config = config
        self.paths = config.paths
        self._api = HttpApi(self._settings, sleep=sleep, transport=transport)

    def _settings(self) -> HttpSettings:
        cfg = self.config
        key = cfg.resolve_api_key("Triton Digital")
        value = f"{cfg.auth_scheme} {key}" if cfg.auth_scheme else key
        headers = {**cfg.extra_headers, cfg.auth_header: value}
        return HttpSettings("triton_digital", "Triton Digital", cfg.base_url, headers, cfg)

    async def health(self) -> bool:
        try:
            async with self._api.session() as api:
                await api.request("GET", self.paths.health)
        except AdcpError:
            return False
        return True

    async def sync_inventory(self) -> list[InventoryItem]:
        async with self._api.session() as api:
            stations = _items(await api.request("GET", self.paths.stations), "stations")
        root = InventoryItem("triton", "Triton Digital stations", "network")
        try:
            return [root] + [
                InventoryItem(
                    f"station:{s['id']}", str(s.get("name", s["id"])), "station", "triton"
                )
                for s in stations
            ]
        except (KeyError, TypeError) as exc:
            raise _mismatch("stations list", exc) from None

    def _stations(self, impl: dict[str, Any]) -> list[str]:
        stations = [str(s) for s in impl.get("station_ids") or self.config.default_station_ids]
        if not stations:
            raise AdcpError(
                "CONFIGURATION_ERROR",
                "No Triton stations for this product.",
                field="implementation_config.station_ids",
                suggestion="Set station_ids on the product or default_station_ids on the tenant.",
            )
        return stations

    async def forecast(self, request: ForecastRequest) -> Forecast:
        if self.config.forecast_mode == "daily_capacity":
            return capacity_forecast(request)
        impl = request.implementation_config
        body = {
            "stations": self._stations(impl),
            "dayparts": list(impl.get("dayparts", [])),
            "audio_formats": list(impl.get("audio_formats", [])),
            "start": iso(request.start),
            "end": iso(request.end),
            "targeting": request.targeting,
        }
        async with self._api.session() as api:
            answer = await api.request("POST", self.paths.forecast, json=body) or {}
        capacity = int(answer.get("capacity_impressions", 0))
        available = int(answer.get("available_impressions", capacity))
        return Forecast(available_impressions=available, capacity_impressions=capacity)

    def _flight_body(self, line: LineSpec) -> dict[str, Any]:
        if line.pricing_model not in ("cpm", "flat_rate"):
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                f"Triton audio flights are sold by CPM or flat rate, not {line.pricing_model}.",
                field="packages.pricing_option_id",
                details={"ad_server": "triton_digital"},
            )
        impl = line.implementation_config
        goal = line.impressions_goal
        return {
            "name": line.name,
            "external_id": line.package_id,
            "guaranteed": line.guaranteed,
            "start": iso(line.start),
            "end": iso(line.end),
            "stations": self._stations(impl),
            "dayparts": list(line.targeting.dayparts) or list(impl.get("dayparts", [])),
            "audio_formats": list(impl.get("audio_formats") or line.format_ids),
            "goal": {"type": "impressions", "value": goal} if goal else None,
            "pricing": {"model": line.pricing_model, "rate": line.rate, "currency": line.currency},
            "budget": {"amount": line.budget, "currency": line.currency},
            "pacing": line.pacing,
            "targeting": targeting_body(line.targeting),
            "frequency_cap": line.targeting.frequency_cap,
        }

    async def create_order(self, spec: OrderSpec) -> OrderResult:
        flights = [(line.package_id, self._flight_body(line)) for line in spec.lines]
        advertiser = {"name": spec.advertiser_name}
        if spec.advertiser_mapping.get("triton_advertiser_id"):
            advertiser["id"] = str(spec.advertiser_mapping["triton_advertiser_id"])
        campaign = {
            "name": spec.name,
            "external_id": spec.media_buy_id,
            "advertiser": advertiser,
            "start": iso(spec.start),
            "end": iso(spec.end),
            "budget": {"amount": spec.total_budget, "currency": spec.currency},
            "po_number": spec.po_number,
            "status": "draft",
        }
        async with self._api.session() as api:
            created = await api.request("POST", self.paths.campaigns, json=campaign)
            campaign_id = _created_id(created, "campaign")
            path = fill(self.paths.flights, campaign_id=campaign_id)
            line_ids: dict[str, str] = {}
            try:
                for package_id, body in flights:
                    flight = await api.request("POST", path, json=body)
                    line_ids[package_id] = _created_id(flight, "flight")
            except AdcpError as exc:
                exc.details["triton_campaign_id"] = campaign_id
                try:  # nothing half-booked may go live later
                    await self._set_status(api, campaign_id, "canceled")
                except AdcpError:
                    exc.details["cleanup"] = "failed: cancel the campaign in Triton by hand"
                raise
        return OrderResult(campaign_id, line_ids)

    async def find_order(self, media_buy_id: str, name: str) -> str | None:
        """The campaign ``create_order`` made for this media buy: listed by the
        ``external_id`` it carries (matched here too, should the filter be ignored)."""
        async with self._api.session() as api:
            found = await api.request(
                "GET", self.paths.campaigns, params={"external_id": media_buy_id}
            )
        for campaign in _items(found, "campaigns"):
            if str(campaign.get("external_id")) == media_buy_id and campaign.get("id"):
                return str(campaign["id"])
        return None

    async def _set_status(self, api: ApiSession, campaign_id: str, status: str) -> None:
        path = fill(self.paths.campaign, campaign_id=campaign_id)
        await api.request("PATCH", path, json={"status": status})

    async def add_line(self, external_order_id: str, line: LineSpec) -> str:
        body = self._flight_body(line)
        path = fill(self.paths.flights, campaign_id=external_order_id)
        async with self._api.session() as api:
            return _created_id(await api.request("POST", path, json=body), "flight")

    async def update_line(
        self, external_order_id: str, external_line_id: str, change: LineChange
    ) -> None:
        if change.device_bid_adjustments:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                "Triton audio flights have no device bid adjustments.",
                field="packages.bid_adjustments",
                details={"ad_server": "triton_digital"},
            )
        patch: dict[str, Any] = {}
        if change.budget is not None:
            patch["budget"] = {"amount": change.budget}
        if change.daily_budget is not None:
            patch["daily_budget"] = {"amount": change.daily_budget}
        if change.impressions_goal is not None:
            patch["goal"] = {"type": "impressions", "value": change.impressions_goal}
        if change.rate is not None:
            patch["pricing"] = {"rate": change.rate}
        if change.start is not None:
            patch["start"] = iso(change.start)
        if change.end is not None:
            patch["end"] = iso(change.end)
        if change.pacing is not None:
            patch["pacing"] = change.pacing
        if change.targeting is not None:
            patch["targeting"] = targeting_body(change.targeting)
            patch["frequency_cap"] = change.targeting.frequency_cap
            if change.targeting.dayparts:
                patch["dayparts"] = list(change.targeting.dayparts)
        if not patch:
            return
        await self._patch_flight(external_order_id, external_line_id, patch)

    async def _patch_flight(self, order_id: str, line_id: str, patch: dict[str, Any]) -> None:
        path = fill(self.paths.flight, campaign_id=order_id, flight_id=line_id)
        async with self._api.session() as api:
            await api.request("PATCH", path, json=patch)

    async def order_action(self, external_order_id: str, action: OrderAction) -> None:
        async with self._api.session() as api:
            await self._set_status(api, external_order_id, ORDER_STATUS[action])

    async def line_action(
        self, external_order_id: str, external_line_id: str, action: LineAction
    ) -> None:
        patch = {"status": LINE_STATUS[action]}
        await self._patch_flight(external_order_id, external_line_id, patch)

    async def upload_creative(self, spec: CreativeSpec) -> str:
        kind = CREATIVE_TYPES.get(spec.kind)
        if kind is None:
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                f"Triton Digital takes audio spots and companion banners, not {spec.kind}.",
                field="creatives.format_id",
                details={"ad_server": "triton_digital"},
            )
        if not (spec.asset_url or spec.snippet):
            raise AdcpError(
                "VALIDATION_ERROR",
                "A Triton creative needs an asset URL or a VAST tag.",
                field="creatives.assets",
            )
        body = {
            "name": spec.name,
            "external_id": spec.creative_id,
            "type": kind,
            "format_id": spec.format_id,
            "asset_url": spec.asset_url,
            "vast": spec.snippet,
            "click_url": spec.click_url,
            "duration_s": spec.duration_s,
            "width": spec.width,
            "height": spec.height,
            "advertiser_id": spec.advertiser_mapping.get("triton_advertiser_id"),
        }
        async with self._api.session() as api:
            return _created_id(
                await api.request("POST", self.paths.creatives, json=body), "creative"
            )

    async def assign_creative(
        self, external_order_id: str, external_line_id: str, external_creative_id: str
    ) -> None:
        path = fill(
            self.paths.flight_creatives, campaign_id=external_order_id, flight_id=external_line_id
        )
        async with self._api.session() as api:
            await api.request("POST", path, json={"creative_id": external_creative_id})

    async def get_delivery(
        self, external_order_id: str, start: date, end: date
    ) -> list[DeliveryRow]:
        path = fill(self.paths.delivery, campaign_id=external_order_id)
        params = {"start": start.isoformat(), "end": end.isoformat()}
        async with self._api.session() as api:
            rows = _items(await api.request("GET", path, params=params), "rows")
        try:
            return [
                DeliveryRow(
                    external_line_id=str(r["flight_id"]),
                    day=date.fromisoformat(str(r["date"])[:10]),
                    impressions=int(r.get("impressions") or 0),
                    clicks=int(r.get("clicks") or 0),
                    completions=int(r.get("completions") or 0),
                    spend=round(float(r.get("spend") or 0.0), 2),
                )
                for r in rows
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise _mismatch("delivery report", exc) from None

    async def sync_orders(self, external_order_ids: list[str]) -> list[ExternalOrderState]:
        states: list[ExternalOrderState] = []
        async with self._api.session() as api:
            for order_id in external_order_ids:
                try:
                    body = await api.request("GET", fill(self.paths.campaign, campaign_id=order_id))
                except AdcpError as exc:
                    if exc.code == "REFERENCE_NOT_FOUND":
                        continue
                    raise
                lines = {str(f["id"]): str(f.get("status", "")) for f in body.get("flights", [])}
                states.append(ExternalOrderState(order_id, str(body.get("status", "")), lines))
        return states
