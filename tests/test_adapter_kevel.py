"""Kevel adapter, order lifecycle: what we send to Kevel and what core gets back.
Runs against the fake Kevel on 127.0.0.1 (tests/test_adapter_kevel_fake.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from adcp_agent_adapters.kevel import KevelAdapter, KevelConfig

from adcp_agent.adapter_protocol import CreativeSpec, LineChange, LineSpec, OrderSpec, Targeting
from adcp_agent.errors import AdcpError
from tests.test_adapter_kevel_fake import API_KEY, FakeServer, KevelFake, Sleeps

START, END = datetime(2031, 3, 1, tzinfo=UTC), datetime(2031, 3, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    srv = FakeServer(KevelFake().handle).start()
    yield srv
    srv.stop()


@pytest.fixture
def kevel(server: FakeServer) -> KevelFake:
    fake = KevelFake()
    server.reset(fake.handle)
    return fake


def adapter(server: FakeServer, **config) -> KevelAdapter:
    cfg = KevelConfig(network_id=23, api_key=API_KEY, base_url=f"{server.url}/v1", **config)
    return KevelAdapter(cfg, sleep=Sleeps())


def line(package_id: str = "pkg_1", **overrides) -> LineSpec:
    spec = LineSpec(
        package_id=package_id,
        product_id="news_display",
        name="News display",
        guaranteed=True,
        pricing_model="cpm",
        rate=12.5,
        currency="USD",
        budget=5000.0,
        impressions_goal=400_000,
        start=START,
        end=END,
        pacing="even",
        targeting=Targeting(
            geo_countries=("us",),
            geo_regions=("US-NY",),
            key_values={"adcp_seg": ("auto_intenders", "suv_fans"), "ctx": ("sports",)},
            frequency_cap={
                "max_impressions": 3,
                "per": "devices",
                "window": {"interval": 1, "unit": "days"},
            },
        ),
        format_ids=("display_300x250",),
        implementation_config={
            "site_ids": [7],
            "zone_ids": [70, 71],
            "priority_id": 51,
            "keywords": ["news"],
        },
    )
    return replace(spec, **overrides)


def order(*lines: LineSpec, mapping: dict | None = None) -> OrderSpec:
    return OrderSpec(
        media_buy_id="mb_42",
        name="Acme spring",
        advertiser_name="Acme Motors",
        advertiser_mapping=mapping or {},
        start=START,
        end=END,
        total_budget=9000.0,
        currency="USD",
        po_number="PO-7",
        lines=lines or (line(),),
    )


async def test_create_order_books_campaign_and_flights(server, kevel):
    result = await adapter(server, tags_from_signals=["ctx"]).create_order(order())

    campaign = kevel.campaigns[int(result.external_order_id)]
    assert campaign["AdvertiserId"] == 9  # found by name, not created
    assert campaign["IsActive"] is False and campaign["Name"] == "Acme spring (mb_42)"
    assert server.seen("POST", "/v1/advertiser/search")[0].form == {"advertiserName": "Acme Motors"}
    flight = kevel.flights[int(result.external_line_ids["pkg_1"])]
    assert flight["CampaignId"] == campaign["Id"]
    assert {
        k: flight[k] for k in ("GoalType", "Impressions", "RateType", "Price", "PriorityId")
    } == {"GoalType": 1, "Impressions": 400_000, "RateType": 2, "Price": 12.5, "PriorityId": 51}
    assert (flight["StartDateISO"], flight["EndDateISO"]) == (
        "2031-03-01T00:00:00Z",
        "2031-03-31T00:00:00Z",
    )
    assert (flight["CapType"], flight["LifetimeCapAmount"]) == (4, 5000)
    assert flight["SiteZoneTargeting"] == [
        {"SiteId": 7, "ZoneId": 70, "IsExclude": False},
        {"SiteId": 7, "ZoneId": 71, "IsExclude": False},
    ]
    assert flight["Keywords"] == "news\nsports"
    assert flight["CustomTargeting"] == (
        '(adcp_seg CONTAINS "auto_intenders" OR adcp_seg CONTAINS "suv_fans")'
    )
    assert [(g["CountryCode"], g.get("Region")) for g in flight["GeoTargeting"]] == [
        ("US", None),
        ("US", "NY"),
    ]
    assert (
        flight["IsFreqCap"],
        flight["FreqCap"],
        flight["FreqCapDuration"],
        flight["FreqCapType"],
    ) == (True, 3, 1, 2)
    assert {r.headers["x-adzerk-apikey"] for r in server.requests} == {API_KEY}


async def test_find_order_finds_the_campaign_create_order_made_for_a_media_buy(server, kevel):
    """What the sweep of stranded bookings asks before releasing a buy: the campaign
    named for it, by Kevel's campaign search (one request; the exact name among its
    substring matches); a name the search does not return is looked for in the
    campaign list before the answer is None."""
    kevel_adapter = adapter(server)
    # Named so that the search for the first also matches it: the exact name decides.
    await kevel_adapter.create_order(replace(order(), name="Big Acme spring"))
    made = await kevel_adapter.create_order(order())
    other = await kevel_adapter.create_order(replace(order(), media_buy_id="mb_4"))
    assert await kevel_adapter.find_order("mb_42", "Acme spring") == made.external_order_id
    assert await kevel_adapter.find_order("mb_4", "Acme spring") == other.external_order_id
    assert server.seen("GET", "/v1/campaign") == []  # found by the search alone
    assert await kevel_adapter.find_order("mb_44", "Acme spring") is None
    searched = [r.form["campaignName"] for r in server.seen("POST", "/v1/campaign/search")]
    assert searched == ["Acme spring (mb_42)", "Acme spring (mb_4)", "Acme spring (mb_44)"]
    assert server.seen("GET", "/v1/campaign") != []  # not found: the list decided


async def test_find_order_reads_the_list_when_the_search_misses_a_campaign(server, kevel):
    """Should Kevel's search not match a name with punctuation, the campaign is still
    found (else it could go on serving with nobody's buy behind it)."""
    kevel_adapter = adapter(server)
    made = await kevel_adapter.create_order(order())
    kevel.search_matches = False
    assert await kevel_adapter.find_order("mb_42", "Acme spring") == made.external_order_id


async def test_find_order_reads_the_campaign_pages_where_search_is_missing(server, kevel):
    kevel.campaign_search = False
    kevel.page_cap = 1  # every campaign on a page of its own
    kevel_adapter = adapter(server)
    made = await kevel_adapter.create_order(order())
    other = await kevel_adapter.create_order(replace(order(), media_buy_id="mb_43"))
    assert await kevel_adapter.find_order("mb_42", "Acme spring") == made.external_order_id
    assert await kevel_adapter.find_order("mb_43", "Acme spring") == other.external_order_id
    assert await kevel_adapter.find_order("mb_44", "Acme spring") is None
    pages = [r.query["page"] for r in server.seen("GET", "/v1/campaign")]
    assert pages[:2] == ["1", "2"]


async def test_unknown_advertiser_is_created_and_mapping_skips_search(server, kevel):
    spec = replace(order(), advertiser_name="Brand New Co")
    result = await adapter(server).create_order(spec)
    created = kevel.campaigns[int(result.external_order_id)]["AdvertiserId"]
    assert kevel.advertisers[created]["Title"] == "Brand New Co"

    server.requests.clear()
    await adapter(server).create_order(order(mapping={"kevel_advertiser_id": "9"}))
    assert not server.seen("POST", "/v1/advertiser.*")


async def test_priority_comes_from_the_products_channel(server, kevel):
    impl = {"site_ids": [7], "channel_id": 5}
    result = await adapter(server).create_order(
        order(
            line("pkg_g", implementation_config=impl),
            line("pkg_ng", guaranteed=False, impressions_goal=None, implementation_config=impl),
        )
    )
    flights = {p: kevel.flights[int(f)] for p, f in result.external_line_ids.items()}
    assert flights["pkg_g"]["PriorityId"] == 51  # weight 1: Kevel's highest
    assert (flights["pkg_ng"]["PriorityId"], flights["pkg_ng"]["GoalType"]) == (52, 2)

    with pytest.raises(AdcpError) as exc:
        await adapter(server).create_order(order(line(implementation_config={"site_ids": [7]})))
    assert exc.value.code == "CONFIGURATION_ERROR"


async def test_rejected_flight_archives_the_campaign_and_names_kevels_reason(server, kevel):
    bad = line("pkg_2", implementation_config={"priority_id": 999})
    with pytest.raises(AdcpError) as exc:
        await adapter(server).create_order(order(line(), bad))
    assert exc.value.code == "VALIDATION_ERROR"
    assert "PriorityId 999 does not exist" in exc.value.message
    assert exc.value.details["ad_server_message"] == "PriorityId 999 does not exist."
    campaign = kevel.campaigns[exc.value.details["kevel_campaign_id"]]
    assert campaign["IsArchived"] is True and campaign["IsActive"] is False


async def test_unsupported_terms_fail_before_anything_is_booked(server, kevel):
    for bad in (
        line(pricing_model="cpcv"),
        line(pacing="asap"),
        line(targeting=Targeting(device_types=("ctv",))),
        line(targeting=Targeting(dayparts=("mon-fri 06:00-10:00",))),
    ):
        with pytest.raises(AdcpError) as exc:
            await adapter(server).create_order(order(bad))
        assert exc.value.code == "UNSUPPORTED_FEATURE"
    assert not [r for r in server.requests if r.method != "GET"]


async def test_pause_and_resume_put_the_whole_flight(server, kevel):
    k = adapter(server)
    result = await k.create_order(order())
    oid, fid = result.external_order_id, result.external_line_ids["pkg_1"]
    server.requests.clear()

    await k.line_action(oid, fid, "pause")

    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", f"/v1/flight/{fid}"),
        ("PUT", f"/v1/flight/{fid}"),
    ]
    sent = server.requests[1].json
    assert sent["IsActive"] is False
    assert sent["Name"] == "News display (pkg_1)" and sent["Keywords"] == "news"
    assert "GeoTargeting" not in sent and "SiteZoneTargeting" not in sent
    assert len(kevel.flights[int(fid)]["GeoTargeting"]) == 2  # not duplicated
    await k.line_action(oid, fid, "resume")
    assert kevel.flights[int(fid)]["IsActive"] is True

    with pytest.raises(AdcpError) as exc:
        await k.line_action("12345", fid, "pause")
    assert exc.value.code == "REFERENCE_NOT_FOUND"


async def test_update_line_changes_terms_and_replaces_geo_targets(server, kevel):
    k = adapter(server)
    result = await k.create_order(order())
    oid, fid = result.external_order_id, result.external_line_ids["pkg_1"]
    new_end = datetime(2031, 4, 15, tzinfo=UTC)
    change = LineChange(
        budget=7000.0,
        rate=14.0,
        start=datetime(2031, 3, 5, tzinfo=UTC),
        end=new_end,
        daily_budget=300.0,
        targeting=Targeting(geo_countries=("ca",), key_values={"adcp_seg": ("golfers",)}),
    )
    await k.update_line(oid, fid, change)

    flight = kevel.flights[int(fid)]
    assert (flight["LifetimeCapAmount"], flight["DailyCapAmount"], flight["Price"]) == (
        7000,
        300,
        14.0,
    )
    assert flight["EndDateISO"] == "2031-04-15T00:00:00Z"
    assert flight["StartDateISO"] == "2031-03-05T00:00:00Z"
    assert flight["CustomTargeting"] == '(adcp_seg CONTAINS "golfers")'
    assert [g["CountryCode"] for g in flight["GeoTargeting"]] == ["CA"]
    assert len(server.seen("GET", rf"/v1/flight/{fid}/geotargeting/\d+/delete")) == 2

    with pytest.raises(AdcpError) as exc:
        await k.update_line(oid, fid, LineChange(device_bid_adjustments={"mobile": -20.0}))
    assert exc.value.code == "UNSUPPORTED_FEATURE"


async def test_order_actions_toggle_the_campaign(server, kevel):
    k = adapter(server)
    oid = (await k.create_order(order())).external_order_id
    campaign = kevel.campaigns[int(oid)]

    server.requests.clear()
    await k.order_action(oid, "approve")
    assert [r.method for r in server.requests] == ["GET"]  # Kevel has no approval step
    await k.order_action(oid, "activate")
    assert kevel.campaigns[int(oid)]["IsActive"] is True
    assert server.requests[-1].json["Name"] == campaign["Name"]  # full object
    await k.order_action(oid, "pause")
    assert kevel.campaigns[int(oid)]["IsActive"] is False
    await k.order_action(oid, "archive")
    assert kevel.campaigns[int(oid)]["IsArchived"] is True
    with pytest.raises(AdcpError) as exc:
        await k.order_action(oid, "resume")
    assert exc.value.code == "INVALID_STATE"

    states = await k.sync_orders([oid, "424242"])
    assert len(states) == 1 and states[0].status == "archived"
    assert set(states[0].line_statuses.values()) == {"active"}


async def test_creative_upload_and_assignment(server, kevel):
    k = adapter(server, ad_type_ids={"audio_30s": 77})
    result = await k.create_order(order())
    spec = CreativeSpec(
        creative_id="cr_1",
        name="Spring banner",
        format_id="display_300x250",
        kind="display",
        asset_url="https://cdn.example/b.png",
        click_url="https://acme.example",
        width=300,
        height=250,
        duration_s=None,
        advertiser_mapping={"kevel_advertiser_id": 9},
    )
    creative_id = await k.upload_creative(spec)

    sent = kevel.creatives[int(creative_id)]
    assert (sent["AdvertiserId"], sent["AdTypeId"], sent["ImageLink"]) == (9, 5, spec.asset_url)
    assert sent["Url"] == "https://acme.example"
    await k.assign_creative(
        result.external_order_id, result.external_line_ids["pkg_1"], creative_id
    )
    assert kevel.ads[0]["Creative"] == {"Id": int(creative_id)}
    assert kevel.ads[0]["FlightId"] == int(result.external_line_ids["pkg_1"])

    for bad, code in (
        (replace(spec, advertiser_mapping={}), "CONFIGURATION_ERROR"),
        (replace(spec, width=1, height=1), "VALIDATION_ERROR"),
    ):
        with pytest.raises(AdcpError) as exc:
            await k.upload_creative(bad)
        assert exc.value.code == code


async def test_sync_inventory_reads_every_page(server, kevel):
    kevel.page_cap = 1
    items = await adapter(server).sync_inventory()
    by_id = {i.item_id: i for i in items}
    assert by_id["network:23"].kind == "network"
    assert by_id["site:7"].parent_id == "network:23" and "site:8" not in by_id
    assert (by_id["zone:71"].kind, by_id["zone:71"].parent_id) == ("zone", "site:7")
    assert by_id["priority:52"].parent_id == "channel:5"
    assert [r.query["page"] for r in server.seen("GET", "/v1/zone")] == ["1", "2"]


async def test_exclusions_become_excluded_geo_targets_and_not_clauses(server, kevel):
    excluding = Targeting(
        geo_countries=("US",),
        geo_regions_exclude=("US-CA",),
        geo_metros_exclude=("501",),
        device_types_exclude=("tablet",),
        key_values={"adcp_seg_exclude": ("gamers",)},
    )
    result = await adapter(server).create_order(order(line(targeting=excluding)))
    flight = kevel.flights[int(result.external_line_ids["pkg_1"])]
    assert [
        (g["CountryCode"], g.get("Region"), g.get("MetroCode"), g["IsExclude"])
        for g in flight["GeoTargeting"]
    ] == [("US", None, None, False), ("US", "CA", None, True), ("US", None, 501, True)]
    assert flight["CustomTargeting"] == (
        'NOT (adcp_seg CONTAINS "gamers") AND NOT ($device.formFactor = "tablet")'
    )


async def test_find_line_finds_the_flight_add_line_made_for_a_package(server, kevel):
    k = adapter(server)
    booked = await k.create_order(order())
    added = await k.add_line(booked.external_order_id, line(package_id="pkg_late"))
    assert await k.find_line(booked.external_order_id, "pkg_late") == added
    assert await k.find_line(booked.external_order_id, "pkg_never") is None
