"""Triton Digital adapter against a fake of the ASSUMED booking contract on 127.0.0.1:
the requests we send (paths, auth header, bodies), what core gets back, and failures."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from adcp_agent_adapters.triton import TritonAdapter, TritonConfig

from adcp_agent.adapter_protocol import (
    AdapterRegistry,
    CreativeSpec,
    DeliveryRow,
    ForecastRequest,
    LineChange,
    LineSpec,
    OrderSpec,
    Targeting,
)
from adcp_agent.errors import AdcpError
from tests.test_adapter_kevel_fake import FakeServer, Seen, Sleeps

KEY = "triton-test-key-abcdef"
START, END = datetime(2031, 5, 1, tzinfo=UTC), datetime(2031, 5, 31, tzinfo=UTC)


class TritonFake:
    def __init__(self, auth: tuple[str, str] = ("authorization", f"Bearer {KEY}")) -> None:
        self.auth = auth
        self.ids = (f"T{n}" for n in itertools.count(1))
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.flights: dict[str, dict[str, Any]] = {}
        self.creatives: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []

    def handle(self, r: Seen) -> tuple[int, Any]:
        if r.headers.get(self.auth[0]) != self.auth[1]:
            return 401, {"error": "unauthorized"}
        p, m = r.path.removeprefix("/api"), r.method
        if (m, p) == ("GET", "/stations"):
            return 200, {"stations": [{"id": "WXYZ-FM", "name": "WXYZ 101.1"}, {"id": "KABC-AM"}]}
        if (m, p) == ("GET", "/campaigns"):
            wanted = r.query.get("external_id")
            found = [c for c in self.campaigns.values() if c["external_id"] == wanted]
            return 200, {"campaigns": [{"id": c["id"], "external_id": wanted} for c in found]}
        if (m, p) == ("POST", "/campaigns"):
            cid = next(self.ids)
            self.campaigns[cid] = {**r.json, "id": cid, "flights": []}
            return 201, {"id": cid, "status": "draft"}
        if (m, p) == ("POST", "/creatives"):
            self.creatives[cid := next(self.ids)] = r.json
            return 201, {"id": cid}
        if (m, p) == ("POST", "/forecasts"):
            return 200, {"available_impressions": 40_000, "capacity_impressions": 50_000}
        if hit := re.fullmatch(r"/campaigns/([^/]+)(/flights(?:/([^/]+))?)?(/creatives)?", p):
            campaign = self.campaigns.get(hit[1])
            if campaign is None:
                return 404, {"error": f"campaign {hit[1]} not found"}
            if hit[4]:
                self.flights[hit[3]].setdefault("creatives", []).append(r.json["creative_id"])
                return 204, None
            if hit[3]:
                self.flights[hit[3]].update(r.json)
                return 200, self.flights[hit[3]]
            if hit[2]:
                if not r.json.get("stations"):
                    return 400, {"error": "stations must not be empty"}
                fid = next(self.ids)
                self.flights[fid] = {**r.json, "id": fid, "status": "active"}
                campaign["flights"].append(fid)
                return 201, {"id": fid}
            if m == "PATCH":
                campaign.update(r.json)
            flights = [{"id": f, "status": self.flights[f]["status"]} for f in campaign["flights"]]
            return 200, {**campaign, "flights": flights}
        if hit := re.fullmatch(r"/campaigns/([^/]+)/delivery", p):
            return 200, {"rows": self.rows}
        return 404, {"error": f"no route {m} {p}"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    srv = FakeServer(TritonFake().handle).start()
    yield srv
    srv.stop()


@pytest.fixture
def triton(server: FakeServer) -> TritonFake:
    fake = TritonFake()
    server.reset(fake.handle)
    return fake


def adapter(server: FakeServer, sleeps: Sleeps | None = None, **config) -> TritonAdapter:
    config = {"api_key": KEY, "base_url": f"{server.url}/api", **config}
    return TritonAdapter(TritonConfig(**config), sleep=sleeps if sleeps is not None else Sleeps())


def line(package_id: str = "pkg_a", **overrides) -> LineSpec:
    spec = LineSpec(
        package_id=package_id, product_id="drive_time", name="Drive time", guaranteed=True,
        pricing_model="cpm", rate=18.0, currency="USD", budget=3600.0, impressions_goal=200_000,
        start=START, end=END, pacing="even",
        targeting=Targeting(geo_metros=("501",), dayparts=("morning_drive",),
                            key_values={"adcp_seg": ("commuters",)}),
        format_ids=("audio_30s",),
        implementation_config={"station_ids": ["WXYZ-FM"]},
    )  # fmt: skip
    return replace(spec, **overrides)


def order(*lines: LineSpec) -> OrderSpec:
    return OrderSpec(
        media_buy_id="mb_9", name="Harbor spring", advertiser_name="Harbor Bank",
        advertiser_mapping={"triton_advertiser_id": 77}, start=START, end=END,
        total_budget=3600.0, currency="USD", po_number=None, lines=lines or (line(),),
    )  # fmt: skip


async def test_create_order_posts_campaign_then_flights(server, triton):
    result = await adapter(server).create_order(order())

    campaign = triton.campaigns[result.external_order_id]
    assert campaign["advertiser"] == {"id": "77", "name": "Harbor Bank"}
    assert (campaign["external_id"], campaign["status"]) == ("mb_9", "draft")
    assert campaign["start"] == "2031-05-01T00:00:00Z"
    flight = triton.flights[result.external_line_ids["pkg_a"]]
    assert flight["stations"] == ["WXYZ-FM"] and flight["dayparts"] == ["morning_drive"]
    assert flight["audio_formats"] == ["audio_30s"]
    assert flight["goal"] == {"type": "impressions", "value": 200_000}
    assert flight["pricing"] == {"model": "cpm", "rate": 18.0, "currency": "USD"}
    assert flight["targeting"]["metros"] == ["501"]
    assert flight["targeting"]["key_values"] == {"adcp_seg": ["commuters"]}
    paths = [(r.method, r.path) for r in server.requests]
    assert paths == [
        ("POST", "/api/campaigns"),
        ("POST", f"/api/campaigns/{campaign['id']}/flights"),
    ]


async def test_find_order_finds_the_campaign_by_the_media_buy_it_carries(server, triton):
    """What the sweep of stranded bookings asks before releasing a buy."""
    triton_adapter = adapter(server)
    made = await triton_adapter.create_order(order())
    assert await triton_adapter.find_order("mb_9", "Harbor Bank mb_9") == made.external_order_id
    assert await triton_adapter.find_order("mb_10", "Harbor Bank mb_10") is None
    asked = server.seen("GET", "/api/campaigns")
    assert [r.query for r in asked] == [{"external_id": "mb_9"}, {"external_id": "mb_10"}]


async def test_paths_and_auth_header_come_from_config(server, triton):
    server.reset(TritonFake(auth=("x-api-key", KEY)).handle)
    paths = {"stations": "/v2/inventory/stations", "health": "/v2/ping"}
    k = adapter(server, auth_header="X-Api-Key", auth_scheme="", paths=paths,
                extra_headers={"X-Tenant": "harbor"}, base_url=server.url)  # fmt: skip
    server.fail("GET", "/v2/inventory/stations", 200, body={"items": [{"id": "WQQQ"}]})
    items = await k.sync_inventory()
    assert [i.item_id for i in items] == ["triton", "station:WQQQ"]
    seen = server.requests[0]
    assert seen.path == "/v2/inventory/stations"
    assert (seen.headers["x-api-key"], seen.headers["x-tenant"]) == (KEY, "harbor")
    assert "authorization" not in seen.headers
    assert await k.health() is False  # /v2/ping does not exist on this server


async def test_lifecycle_patches_status_and_changed_terms_only(server, triton):
    k = adapter(server)
    result = await k.create_order(order())
    oid, fid = result.external_order_id, result.external_line_ids["pkg_a"]
    server.requests.clear()

    await k.order_action(oid, "activate")
    await k.line_action(oid, fid, "pause")
    await k.update_line(
        oid,
        fid,
        LineChange(
            budget=4000.0,
            start=datetime(2031, 5, 2, tzinfo=UTC),
            end=datetime(2031, 6, 10, tzinfo=UTC),
        ),
    )
    assert [(r.method, r.path, r.json) for r in server.requests] == [
        ("PATCH", f"/api/campaigns/{oid}", {"status": "active"}),
        ("PATCH", f"/api/campaigns/{oid}/flights/{fid}", {"status": "paused"}),
        ("PATCH", f"/api/campaigns/{oid}/flights/{fid}",
         {"budget": {"amount": 4000.0}, "start": "2031-05-02T00:00:00Z",
          "end": "2031-06-10T00:00:00Z"}),
    ]  # fmt: skip
    states = await k.sync_orders([oid, "nope"])
    assert [(s.status, s.line_statuses) for s in states] == [("active", {fid: "paused"})]
    with pytest.raises(AdcpError) as exc:
        await k.update_line(oid, fid, LineChange(device_bid_adjustments={"mobile": 10.0}))
    assert exc.value.code == "UNSUPPORTED_FEATURE"


async def test_audio_creative_upload_and_assignment(server, triton):
    k = adapter(server)
    result = await k.create_order(order())
    spec = CreativeSpec(
        creative_id="cr_a", name="Harbor 30s", format_id="audio_30s", kind="audio",
        asset_url="https://cdn.example/spot.mp3", click_url=None, width=None, height=None,
        duration_s=30.0, advertiser_mapping={"triton_advertiser_id": 77},
    )  # fmt: skip
    creative_id = await k.upload_creative(spec)
    sent = triton.creatives[creative_id]
    assert (sent["type"], sent["duration_s"], sent["asset_url"]) == ("audio", 30.0, spec.asset_url)
    fid = result.external_line_ids["pkg_a"]
    await k.assign_creative(result.external_order_id, fid, creative_id)
    assert triton.flights[fid]["creatives"] == [creative_id]
    with pytest.raises(AdcpError) as exc:
        await k.upload_creative(replace(spec, kind="video"))
    assert exc.value.code == "UNSUPPORTED_FEATURE"


async def test_delivery_rows_and_forecasts(server, triton):
    k = adapter(server)
    oid = (await k.create_order(order())).external_order_id
    triton.rows = [{"flight_id": "T2", "date": "2031-05-02", "impressions": 900, "clicks": 0,
                    "completions": 850, "spend": 16.2}]  # fmt: skip
    rows = await k.get_delivery(oid, date(2031, 5, 1), date(2031, 5, 7))
    assert rows == [DeliveryRow("T2", date(2031, 5, 2), 900, 0, 850, 16.2)]
    assert server.requests[-1].query == {"start": "2031-05-01", "end": "2031-05-07"}

    request = ForecastRequest(
        product_id="drive_time", inventory={"daily_impressions": 2000}, start=START,
        end=datetime(2031, 5, 11, tzinfo=UTC), reserved_impressions=5000,
        implementation_config={"station_ids": ["WXYZ-FM"], "dayparts": ["morning_drive"]},
    )  # fmt: skip
    assert (await k.forecast(request)).available_impressions == 40_000
    assert server.requests[-1].json["stations"] == ["WXYZ-FM"]
    local = await adapter(server, forecast_mode="daily_capacity").forecast(request)
    assert (local.available_impressions, local.capacity_impressions) == (15_000, 20_000)


async def test_retries_and_error_mapping(server, triton):
    sleeps = Sleeps()
    server.fail("GET", "/api/stations", 429, headers={"Retry-After": "2"})
    assert len(await adapter(server, sleeps).sync_inventory()) == 3
    assert sleeps == [2.0]

    server.fail("GET", "/api/stations", 503, times=5)
    with pytest.raises(AdcpError) as exc:
        await adapter(server, max_retries=1).sync_inventory()
    assert (exc.value.code, exc.value.recovery) == ("SERVICE_UNAVAILABLE", "transient")

    with pytest.raises(AdcpError) as exc:
        await adapter(server, api_key="wrong").sync_inventory()
    assert exc.value.code == "CONFIGURATION_ERROR"


async def test_rejected_flight_cancels_the_campaign(server, triton):
    bad = line("pkg_b", implementation_config={})
    with pytest.raises(AdcpError) as exc:  # no stations anywhere: refused before any call
        await adapter(server).create_order(order(line(), bad))
    assert exc.value.code == "CONFIGURATION_ERROR" and server.requests == []

    server.fail(
        "POST", "/api/campaigns/.+/flights", 400, body={"error": "station WXYZ-FM sold out"}
    )
    with pytest.raises(AdcpError) as exc:
        await adapter(server).create_order(order())
    assert exc.value.code == "VALIDATION_ERROR" and "sold out" in exc.value.message
    campaign = triton.campaigns[exc.value.details["triton_campaign_id"]]
    assert campaign["status"] == "canceled"


async def test_contract_mismatch_and_hostile_ids(server, triton):
    server.fail("POST", "/api/campaigns", 200, body={"campaignId": "X"})
    with pytest.raises(AdcpError) as exc:
        await adapter(server).create_order(order())
    assert exc.value.code == "CONFIGURATION_ERROR" and "'id'" in exc.value.message

    with pytest.raises(AdcpError) as exc:
        await adapter(server).order_action("../creatives", "pause")
    assert exc.value.code == "REFERENCE_NOT_FOUND"
    assert server.requests[-1].raw_path == "/api/campaigns/..%2Fcreatives"


def test_config_validates_paths_and_registry_loads_the_adapter():
    with pytest.raises(ValueError, match="paths.flight must use exactly"):
        TritonConfig(base_url="https://t.example", api_key="k", paths={"flight": "/f/{id}"})
    with pytest.raises(ValueError, match="exactly one"):
        TritonConfig(base_url="https://t.example")
    adapter = AdapterRegistry().create(
        "triton_digital", {"base_url": "https://t.example", "api_key_env": "TRITON_KEY"}
    )
    assert isinstance(adapter, TritonAdapter)


async def test_exclusions_are_sent_with_the_flight(server, triton):
    excluding = Targeting(
        geo_regions_exclude=("US-CA",), geo_metros_exclude=("501",), device_types_exclude=("ctv",)
    )
    result = await adapter(server).create_order(order(line(targeting=excluding)))
    sent = triton.flights[result.external_line_ids["pkg_a"]]["targeting"]
    assert (sent["regions_exclude"], sent["metros_exclude"], sent["devices_exclude"]) == (
        ["US-CA"],
        ["501"],
        ["ctv"],
    )
