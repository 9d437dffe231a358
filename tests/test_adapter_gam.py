"""The Google Ad Manager adapter against a fake GAM SOAP server on 127.0.0.1.

Each test drives the adapter through its public (AdServerAdapter) methods and asserts the
SOAP requests it sent — operation names, line item types, micro amounts, targeting, the
Perform*Action types — and what it returned. See tests/fixtures/gam/README.md."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from adcp_agent.adapter_protocol import (
    AdServerAdapter,
    CreativeSpec,
    ForecastRequest,
    LineChange,
    LineSpec,
    OrderSpec,
    Targeting,
)
from adcp_agent.errors import AdcpError
from tests.fixtures.gam.fake_gam import NOW, Clock, FakeGam, make_adapter

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # googleads' own

START = NOW + timedelta(days=17)  # 2030-02-01 12:00 UTC = 07:00 in New York
END = START + timedelta(days=28)


@pytest.fixture
def fake() -> Iterator[FakeGam]:
    server = FakeGam().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gam(fake: FakeGam, clock: Clock):
    return make_adapter(fake, clock)


def line(**overrides: Any) -> LineSpec:
    base = LineSpec(
        package_id="pkg_sports",
        product_id="sports_display",
        name="Sports display",
        guaranteed=True,
        pricing_model="cpm",
        rate=12.5,
        currency="USD",
        budget=5000.0,
        impressions_goal=None,
        start=START,
        end=END,
        pacing="even",
        targeting=Targeting(),
        format_ids=("display_300x250", "display_728x90"),
        implementation_config={"ad_unit_ids": ["21001"]},
    )
    return replace(base, **overrides)


def order(*lines: LineSpec, **overrides: Any) -> OrderSpec:
    base = OrderSpec(
        media_buy_id="mb_42",
        name="Acme spring",
        advertiser_name="Acme",
        advertiser_mapping={"gam_advertiser_id": "5551"},
        start=START,
        end=END,
        total_budget=sum(x.budget for x in lines),
        currency="USD",
        po_number="PO-7",
        lines=tuple(lines) or (line(),),
    )
    return replace(base, **overrides)


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


async def test_adapter_satisfies_the_protocol_and_health_sends_credentials(fake, gam) -> None:
    assert isinstance(gam, AdServerAdapter)
    assert await gam.health() is True
    call = fake.calls[0]
    assert call.operation == "getCurrentNetwork"
    assert call.http_headers["Authorization"] == "Bearer test-token"
    assert call.soap_header["networkCode"] == "12345678"
    assert call.soap_header["applicationName"].startswith("adcp-agent")


async def test_health_is_false_for_another_network(fake, gam) -> None:
    fake.net.network_code = "999"
    assert await gam.health() is False


async def test_create_order_books_an_order_and_a_standard_line(fake, gam) -> None:
    targeted = line(
        targeting=Targeting(
            geo_countries=("US", "CA"),
            geo_countries_exclude=("MX",),
            geo_metros=("501",),
            device_types=("mobile", "tablet"),
            key_values={"adcp_seg": ("auto_intenders",)},
            frequency_cap={"max_impressions": 3, "per": "devices",
                           "window": {"interval": 1, "unit": "days"}},
        ),
        implementation_config={"ad_unit_ids": ["21001"], "placement_ids": [31], "priority": 6},
    )  # fmt: skip
    result = await gam.create_order(order(targeted))

    sent = only(only(fake.requests("createOrders"))["orders"])
    assert sent["name"] == "Acme spring [mb_42]"
    assert sent["advertiserId"] == "5551"
    assert sent["traffickerId"] == "42"
    assert sent["poNumber"] == "PO-7"
    assert "mb_42" in sent["notes"]

    li = only(only(fake.requests("createLineItems"))["lineItems"])
    assert li["orderId"] == result.external_order_id
    assert li["externalId"] == "pkg_sports"
    assert li["lineItemType"] == "STANDARD"
    assert li["priority"] == "6"
    assert li["costType"] == "CPM"
    assert li["costPerUnit"] == {"currencyCode": "USD", "microAmount": "12500000"}
    assert li["primaryGoal"] == {"goalType": "LIFETIME", "unitType": "IMPRESSIONS",
                                 "units": "400000"}  # fmt: skip
    assert li["startDateTimeType"] == "USE_START_DATE_TIME"
    assert li["startDateTime"] == {
        "date": {"year": "2030", "month": "2", "day": "1"},
        "hour": "7", "minute": "0", "second": "0", "timeZoneId": "America/New_York",
    }  # fmt: skip
    assert li["endDateTime"]["date"] == {"year": "2030", "month": "3", "day": "1"}
    assert li["deliveryRateType"] == "EVENLY"
    assert li["frequencyCaps"] == [{"maxImpressions": "3", "numTimeUnits": "1", "timeUnit": "DAY"}]
    assert [p["size"] for p in li["creativePlaceholders"]] == [
        {"width": "300", "height": "250", "isAspectRatio": "false"},
        {"width": "728", "height": "90", "isAspectRatio": "false"},
    ]
    targeting = li["targeting"]
    assert targeting["inventoryTargeting"] == {
        "targetedAdUnits": [{"adUnitId": "21001", "includeDescendants": "true"}],
        "targetedPlacementIds": ["31"],
    }
    assert targeting["geoTargeting"] == {
        "targetedLocations": [{"id": "2840"}, {"id": "2124"}, {"id": "200501"}],
        "excludedLocations": [{"id": "2484"}],
    }
    devices = targeting["technologyTargeting"]["deviceCategoryTargeting"]
    assert devices["targetedDeviceCategories"] == [{"id": "30001"}, {"id": "30002"}]

    # The signal's key and value did not exist: they were created, then targeted by id.
    key = only(only(fake.requests("createCustomTargetingKeys"))["keys"])
    assert key == {"name": "adcp_seg", "displayName": "adcp_seg", "type": "PREDEFINED"}
    value = only(only(fake.requests("createCustomTargetingValues"))["values"])
    assert value["name"] == "auto_intenders" and value["matchType"] == "EXACT"
    key_id, value_id = next(iter(fake.net.keys)), next(iter(fake.net.values))
    assert targeting["customTargeting"] == {
        "logicalOperator": "OR",
        "children": [{"xsi_type": "CustomCriteriaSet", "logicalOperator": "AND", "children": [
            {"xsi_type": "CustomCriteria", "keyId": str(key_id), "valueIds": [str(value_id)],
             "operator": "IS"}]}],
    }  # fmt: skip

    assert result.external_line_ids == {"pkg_sports": str(next(iter(fake.net.line_items)))}


async def test_create_order_retried_finds_what_was_booked(fake, gam) -> None:
    first = await gam.create_order(order(line(), line(package_id="pkg_2", name="Second")))
    again = await gam.create_order(order(line(), line(package_id="pkg_2", name="Second")))
    assert again == first
    assert len(fake.requests("createOrders")) == 1
    assert len(only(fake.requests("createLineItems"))["lineItems"]) == 2


async def test_create_order_after_a_lost_answer_adopts_the_order(fake, gam) -> None:
    # An earlier attempt created the order, then lost the answer: GAM says NOT_UNIQUE.
    await gam.create_order(order())
    fake.net.line_items.clear()
    fake.fail("getOrdersByStatement", "ServerError.SERVER_ERROR")  # first lookup flakes
    result = await gam.create_order(order())
    assert result.external_order_id == str(next(iter(fake.net.orders)))
    assert len(fake.requests("createOrders")) == 1


async def test_find_order_finds_the_order_create_order_made_for_a_media_buy(fake, gam) -> None:
    """What the sweep of stranded bookings asks before releasing a buy: by the order's
    name, which carries the media buy id; None for a buy the network has no order for."""
    made = await gam.create_order(order())
    assert await gam.find_order("mb_42", "Acme spring") == made.external_order_id
    assert await gam.find_order("mb_43", "Acme spring") is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"guaranteed": False}, ("PRICE_PRIORITY", "CPM", "12500000", "LIFETIME", "400000")),
        (
            {"guaranteed": False, "implementation_config": {"ad_unit_ids": ["21001"],
                                                            "line_item_type": "NETWORK"}},
            ("NETWORK", "CPM", "12500000", "DAILY", "100"),
        ),
        ({"pricing_model": "cpc", "rate": 0.8}, ("STANDARD", "CPC", "800000", "LIFETIME", "6250")),
        ({"pricing_model": "vcpm", "impressions_goal": 250_000},
         ("STANDARD", "VCPM", "12500000", "LIFETIME", "250000")),
        ({"pricing_model": "flat_rate", "budget": 2800.0},
         ("SPONSORSHIP", "CPD", "100000000", "DAILY", "100")),
    ],
)  # fmt: skip
async def test_pricing_and_delivery_type_map_to_line_item_type_and_cost(
    fake, gam, overrides, expected
) -> None:
    await gam.create_order(order(line(**overrides)))
    li = only(only(fake.requests("createLineItems"))["lineItems"])
    goal = li["primaryGoal"]
    got = (li["lineItemType"], li["costType"], li["costPerUnit"]["microAmount"],
           goal["goalType"], goal["units"])  # fmt: skip
    assert got == expected


async def test_unsupported_pricing_is_refused_before_anything_is_booked(fake, gam) -> None:
    with pytest.raises(AdcpError) as err:
        await gam.create_order(order(line(pricing_model="cpcv")))
    assert err.value.code == "UNSUPPORTED_FEATURE"
    assert err.value.field == "pricing_model"
    assert fake.requests("createLineItems") == []


async def test_past_start_serves_immediately_and_video_gets_a_player(fake, gam) -> None:
    video = line(start=NOW - timedelta(hours=1), format_ids=("video_1920x1080",))
    await gam.create_order(order(video))
    li = only(only(fake.requests("createLineItems"))["lineItems"])
    assert li["startDateTimeType"] == "IMMEDIATELY"
    assert "startDateTime" not in li
    assert li["environmentType"] == "VIDEO_PLAYER"
    assert li["creativePlaceholders"][0]["size"]["width"] == "1920"


async def test_default_advertiser_is_used_without_a_mapping(fake, gam) -> None:
    await gam.create_order(order(advertiser_mapping={}))
    assert only(only(fake.requests("createOrders"))["orders"])["advertiserId"] == "777"


async def test_no_advertiser_at_all_is_a_configuration_error(fake) -> None:
    gam = make_adapter(fake, default_advertiser_id=None)
    with pytest.raises(AdcpError) as err:
        await gam.create_order(order(advertiser_mapping={}))
    assert err.value.code == "CONFIGURATION_ERROR"
    assert err.value.field == "advertiser_mapping.gam_advertiser_id"
    assert fake.calls == []


async def test_regions_need_a_configured_location_id(fake) -> None:
    regional = line(targeting=Targeting(geo_regions=("US-CA",)))
    with pytest.raises(AdcpError) as err:
        await make_adapter(fake).create_order(order(regional))
    assert (err.value.code, err.value.field) == ("VALIDATION_ERROR", "targeting.geo_regions")
    assert "geo_location_ids" in (err.value.suggestion or "")

    await make_adapter(fake, geo_location_ids={"US-CA": 21137}).create_order(order(regional))
    li = only(only(fake.requests("createLineItems"))["lineItems"])
    assert li["targeting"]["geoTargeting"]["targetedLocations"] == [{"id": "21137"}]


async def test_product_without_inventory_mapping_is_refused(fake, gam) -> None:
    with pytest.raises(AdcpError) as err:
        await gam.create_order(order(line(implementation_config={})))
    assert (err.value.code, err.value.field) == (
        "CONFIGURATION_ERROR",
        "implementation_config.ad_unit_ids",
    )


async def test_add_line_to_an_existing_order(fake, gam) -> None:
    booked = await gam.create_order(order())
    new_id = await gam.add_line(booked.external_order_id, line(package_id="pkg_extra", name="X"))
    added = only(fake.requests("createLineItems")[-1]["lineItems"])
    assert added["orderId"] == booked.external_order_id
    assert added["externalId"] == "pkg_extra"
    assert new_id == str(list(fake.net.line_items)[-1])

    with pytest.raises(AdcpError) as err:
        await gam.add_line("424242", line())
    assert err.value.code == "REFERENCE_NOT_FOUND"


async def test_update_line_changes_price_goal_flight_and_targeting(fake, gam) -> None:
    product_kv = {"ad_unit_ids": ["21001"], "key_values": {"section": ["sports"]}}
    booked = await gam.create_order(
        order(line(implementation_config=product_kv,
                   targeting=Targeting(key_values={"adcp_seg": ("auto_intenders",)})))
    )  # fmt: skip
    line_id = booked.external_line_ids["pkg_sports"]
    new_end = END + timedelta(days=7)
    change = LineChange(
        budget=9000.0,
        rate=15.0,
        start=START + timedelta(days=2),
        end=new_end,
        targeting=Targeting(geo_countries=("GB",), key_values={"adcp_seg": ("travellers",)}),
    )
    await gam.update_line(booked.external_order_id, line_id, change)

    li = only(only(fake.requests("updateLineItems"))["lineItems"])
    assert li["id"] == line_id
    assert li["costPerUnit"] == {"currencyCode": "USD", "microAmount": "15000000"}
    assert li["primaryGoal"]["units"] == "600000"  # 9000 / 15 CPM
    assert li["endDateTime"]["date"] == {"year": "2030", "month": "3", "day": "8"}
    assert li["startDateTimeType"] == "USE_START_DATE_TIME"
    assert li["startDateTime"]["date"] == {"year": "2030", "month": "2", "day": "3"}
    assert li["targeting"]["geoTargeting"]["targetedLocations"] == [{"id": "2826"}]
    assert li["targeting"]["inventoryTargeting"]["targetedAdUnits"][0]["adUnitId"] == "21001"
    names = {v["id"]: v["name"] for v in fake.net.values.values()}
    leaves = li["targeting"]["customTargeting"]["children"][0]["children"]
    assert sorted(names[int(leaf["valueIds"][0])] for leaf in leaves) == ["sports", "travellers"]
    assert {leaf["xsi_type"] for leaf in leaves} == {"CustomCriteria"}  # kept leaves stay typed


async def test_update_line_of_a_share_of_voice_line_refuses_a_budget(fake, gam) -> None:
    network = {"ad_unit_ids": ["21001"], "line_item_type": "NETWORK"}
    booked = await gam.create_order(order(line(guaranteed=False, implementation_config=network)))
    with pytest.raises(AdcpError) as err:
        await gam.update_line(
            booked.external_order_id, booked.external_line_ids["pkg_sports"], LineChange(budget=1.0)
        )
    assert (err.value.code, err.value.field) == ("UNSUPPORTED_FEATURE", "budget")
    assert fake.requests("updateLineItems") == []


async def test_order_actions_use_perform_order_action(fake, gam) -> None:
    booked = await gam.create_order(order())
    oid = booked.external_order_id
    for action in ("approve", "pause", "resume", "archive"):
        await gam.order_action(oid, action)
    performed = fake.requests("performOrderAction")
    assert [p["orderAction"]["xsi_type"] for p in performed] == [
        "ApproveOrders", "PauseOrders", "ResumeOrders", "ArchiveOrders",
    ]  # fmt: skip
    statement = performed[0]["filterStatement"]
    assert statement["query"].startswith("WHERE id = :id")
    assert statement["values"] == [
        {"key": "id", "value": {"xsi_type": "NumberValue", "value": oid}}
    ]
    assert performed[0]["orderAction"]["skipInventoryCheck"] == "false"
    assert "updateOrders" not in fake.operations()

    with pytest.raises(AdcpError) as err:
        await gam.order_action(oid, "resume")
    assert err.value.code == "INVALID_STATE"


async def test_activate_approves_a_draft_and_cancel_pauses_then_archives(fake, gam) -> None:
    oid = (await gam.create_order(order())).external_order_id
    await gam.order_action(oid, "activate")
    await gam.order_action(oid, "activate")  # approved already: resumes paused lines
    await gam.order_action(oid, "cancel")
    assert [p["orderAction"]["xsi_type"] for p in fake.requests("performOrderAction")] == [
        "ApproveOrders", "ResumeOrders", "PauseOrders", "ArchiveOrders",
    ]  # fmt: skip
    [state] = await gam.sync_orders([oid])
    assert state.status == "ARCHIVED"


async def test_order_action_on_unknown_order(fake, gam) -> None:
    with pytest.raises(AdcpError) as err:
        await gam.order_action("999999", "approve")
    assert err.value.code == "REFERENCE_NOT_FOUND"
    with pytest.raises(AdcpError) as err:
        await gam.order_action("not-a-gam-id", "approve")
    assert err.value.code == "REFERENCE_NOT_FOUND"


async def test_line_actions_pause_and_resume_one_line(fake, gam) -> None:
    booked = await gam.create_order(order(line(), line(package_id="pkg_2", name="Two")))
    oid, lid = booked.external_order_id, booked.external_line_ids["pkg_sports"]
    await gam.order_action(oid, "approve")
    await gam.line_action(oid, lid, "pause")
    [state] = await gam.sync_orders([oid])
    assert state.line_statuses == {lid: "PAUSED", booked.external_line_ids["pkg_2"]: "READY"}
    await gam.line_action(oid, lid, "resume")

    actions = fake.requests("performLineItemAction")
    assert [a["lineItemAction"]["xsi_type"] for a in actions] == [
        "PauseLineItems",
        "ResumeLineItems",
    ]
    assert actions[0]["filterStatement"]["query"].startswith(
        "WHERE orderId = :orderId AND id = :id"
    )
    [state] = await gam.sync_orders([oid])
    assert state.status == "APPROVED" and state.line_statuses[lid] == "READY"


def creative(**overrides: Any) -> CreativeSpec:
    base = CreativeSpec(
        creative_id="cr_banner",
        name="Spring banner",
        format_id="display_300x250",
        kind="display",
        asset_url=None,
        click_url="https://acme.example/spring",
        width=300,
        height=250,
        duration_s=None,
        advertiser_mapping={"gam_advertiser_id": "5551"},
    )
    return replace(base, **overrides)


async def test_upload_image_creative_sends_the_bytes(fake, gam) -> None:
    png = b"\x89PNG\r\n\x1a\nfake-image-bytes"
    fake.net.assets["banner.png"] = png
    creative_id = await gam.upload_creative(creative(asset_url=f"{fake.url}/assets/banner.png"))
    sent = only(only(fake.requests("createCreatives"))["creatives"])
    assert sent["xsi_type"] == "ImageCreative"
    assert sent["advertiserId"] == "5551"
    assert sent["name"] == "Spring banner [cr_banner]"
    assert sent["size"] == {"width": "300", "height": "250", "isAspectRatio": "false"}
    assert sent["destinationUrl"] == "https://acme.example/spring"
    assert base64.b64decode(sent["primaryImageAsset"]["assetByteArray"]) == png
    assert sent["primaryImageAsset"]["fileName"] == "banner.png"
    assert creative_id == str(next(iter(fake.net.creatives)))

    # Uploading the same AdCP creative again finds it instead of creating a duplicate.
    assert await gam.upload_creative(creative(asset_url=f"{fake.url}/assets/banner.png")) == (
        creative_id
    )
    assert len(fake.requests("createCreatives")) == 1


@pytest.mark.parametrize(
    ("spec", "expected_type", "expected"),
    [
        (creative(snippet="<script src='https://ads.example/t.js'></script>"),
         "ThirdPartyCreative", {"isSafeFrameCompatible": "true"}),
        (creative(kind="video", asset_url="https://cdn.example/spot.mp4", width=1920,
                  height=1080, duration_s=15),
         "VideoRedirectCreative", {"duration": "15000"}),
        (creative(kind="video", snippet="https://ads.example/vast.xml", duration_s=30,
                  width=None, height=None),
         "VastRedirectCreative", {"vastXmlUrl": "https://ads.example/vast.xml",
                                  "vastRedirectType": "LINEAR"}),
        (creative(kind="audio", asset_url="https://cdn.example/spot.mp3", duration_s=30,
                  width=None, height=None),
         "AudioRedirectCreative", {"duration": "30000"}),
    ],
)  # fmt: skip
async def test_creative_kinds_map_to_gam_types(fake, gam, spec, expected_type, expected) -> None:
    await gam.upload_creative(spec)
    sent = only(only(fake.requests("createCreatives"))["creatives"])
    assert sent["xsi_type"] == expected_type
    assert expected.items() <= sent.items()
    if expected_type == "VideoRedirectCreative":
        asset = only(sent["videoAssets"])
        assert asset["redirectUrl"] == "https://cdn.example/spot.mp4"
        assert asset["metadata"]["mimeType"] == "VIDEO_MP4"
        assert asset["metadata"]["size"]["width"] == "1920"


async def test_inline_vast_is_refused(fake, gam) -> None:
    with pytest.raises(AdcpError) as err:
        await gam.upload_creative(creative(kind="video", snippet="<VAST/>", duration_s=15))
    assert (err.value.code, err.value.field) == ("VALIDATION_ERROR", "snippet")
    assert fake.requests("createCreatives") == []


async def test_assign_creative_creates_one_association(fake, gam) -> None:
    booked = await gam.create_order(order())
    oid, lid = booked.external_order_id, booked.external_line_ids["pkg_sports"]
    cid = await gam.upload_creative(creative(snippet="<div>ad</div>"))
    await gam.assign_creative(oid, lid, cid)
    await gam.assign_creative(oid, lid, cid)
    lica = only(only(fake.requests("createLineItemCreativeAssociations"))[
        "lineItemCreativeAssociations"])  # fmt: skip
    assert lica == {"lineItemId": lid, "creativeId": cid}


async def test_get_delivery_runs_a_report_and_reads_the_csv(fake, gam, clock) -> None:
    fake.net.report_csv = (
        "Dimension.DATE,Dimension.ORDER_ID,Dimension.LINE_ITEM_ID,Column.AD_SERVER_IMPRESSIONS,"
        "Column.AD_SERVER_CLICKS,Column.AD_SERVER_CPM_AND_CPC_REVENUE,"
        "Column.VIDEO_VIEWERSHIP_COMPLETE\n"
        "2030-02-01,100001,100002,10000,12,125000000,0\n"
        "2030-02-02,100001,100002,8000,9,100000000,0\n"
    )
    rows = await gam.get_delivery("100001", date(2030, 2, 1), date(2030, 2, 2))
    assert [(r.external_line_id, r.day, r.impressions, r.clicks, r.spend) for r in rows] == [
        ("100002", date(2030, 2, 1), 10000, 12, 125.0),
        ("100002", date(2030, 2, 2), 8000, 9, 100.0),
    ]
    query = only(fake.requests("runReportJob"))["reportJob"]["reportQuery"]
    assert {"DATE", "LINE_ITEM_ID"} <= set(query["dimensions"])
    assert query["columns"] == [
        "AD_SERVER_IMPRESSIONS", "AD_SERVER_CLICKS", "AD_SERVER_CPM_AND_CPC_REVENUE",
        "VIDEO_VIEWERSHIP_COMPLETE",
    ]  # fmt: skip
    assert query["dateRangeType"] == "CUSTOM_DATE"
    assert query["startDate"] == {"year": "2030", "month": "2", "day": "1"}
    assert query["statement"]["query"] == "WHERE ORDER_ID = :orderId"
    assert query["statement"]["values"][0]["value"]["value"] == "100001"
    options = only(fake.requests("getReportDownloadUrlWithOptions"))["reportDownloadOptions"]
    assert options["exportFormat"] == "CSV_DUMP"
    assert len(fake.requests("getReportJobStatus")) == 3  # two IN_PROGRESS, then COMPLETED
    assert clock.sleeps == [5.0, 5.0]


async def test_get_delivery_gives_up_at_the_report_deadline(fake, clock) -> None:
    gam = make_adapter(fake, clock, report_timeout_seconds=12)
    fake.net.report_polls = 1000
    with pytest.raises(AdcpError) as err:
        await gam.get_delivery("100001", date(2030, 2, 1), date(2030, 2, 2))
    assert err.value.code == "SERVICE_UNAVAILABLE" and err.value.recovery == "transient"
    assert err.value.details["gam_error"] == "REPORT_TIMEOUT"
    assert clock.t >= 12 and len(clock.sleeps) == 3


async def test_forecast_asks_for_a_prospective_line_item(fake, gam) -> None:
    request = ForecastRequest(
        product_id="sports_display",
        inventory={},
        start=START,
        end=END,
        targeting={"geo_countries": ["US"], "key_values": {"adcp_seg": ["unknown_seg"]}},
        implementation_config={"ad_unit_ids": ["21001"], "creative_sizes": ["300x250"]},
    )
    forecast = await gam.forecast(request)
    assert (forecast.available_impressions, forecast.capacity_impressions) == (120_000, 500_000)
    sent = only(fake.requests("getAvailabilityForecast"))
    prospective = sent["lineItem"]
    assert prospective["advertiserId"] == "777"
    li = prospective["lineItem"]
    assert li["lineItemType"] == "STANDARD"
    assert li["targeting"]["geoTargeting"]["targetedLocations"] == [{"id": "2840"}]
    assert li["targeting"]["inventoryTargeting"]["targetedAdUnits"][0]["adUnitId"] == "21001"
    assert "customTargeting" not in li["targeting"]  # unknown key-values match nothing
    assert fake.requests("createCustomTargetingKeys") == []  # a question creates nothing


async def test_sync_inventory_pages_through_active_ad_units_and_placements(fake, gam) -> None:
    fake.net.ad_units = [
        {"id": str(i), "parentId": "1000", "name": f"Unit {i}", "status": "ACTIVE"}
        for i in range(2000, 2000 + 501)
    ] + [{"id": "9", "name": "Old", "status": "ARCHIVED"}]
    fake.net.placements = [{"id": 31, "name": "Sports ROS", "status": "ACTIVE"}]
    items = await gam.sync_inventory()
    assert len(items) == 502
    assert items[0].kind == "ad_unit" and items[0].parent_id == "1000"
    assert items[-1].item_id == "31" and items[-1].kind == "placement"
    pages = fake.requests("getAdUnitsByStatement")
    assert [p["filterStatement"]["query"] for p in pages] == [
        "WHERE status = :status LIMIT 500 OFFSET 0",
        "WHERE status = :status LIMIT 500 OFFSET 500",
    ]


async def test_sync_orders_reads_orders_and_line_statuses(fake, gam) -> None:
    booked = await gam.create_order(order())
    states = await gam.sync_orders([booked.external_order_id, "404404"])
    assert [(s.external_order_id, s.status) for s in states] == [
        (booked.external_order_id, "DRAFT")
    ]
    assert states[0].line_statuses == {booked.external_line_ids["pkg_sports"]: "DRAFT"}
