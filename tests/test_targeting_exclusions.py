"""AdCP 3.1's exclusion targeting — geo_regions_exclude, geo_metros_exclude,
device_type_exclude — accepted on products that allow the dimension, checked like
their inclusions, echoed on the buy, narrowing avails, and kept apart from the
inclusions (a value in both is refused)."""

from __future__ import annotations

import pytest

from adcp_agent.services.delivery_sim import device_mix
from tests.media_helpers import avails_args, non_guaranteed
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

EXCLUDING = {
    "geo_countries": ["US"],
    "geo_regions_exclude": ["US-CA", "US-NY"],
    "geo_metros_exclude": [{"system": "nielsen_dma", "values": ["501"]}],
    "device_type_exclude": ["tablet"],
}


async def test_exclusions_are_booked_echoed_and_narrow_avails(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        booked = await call(c, "create_media_buy", non_guaranteed(targeting_overlay=EXCLUDING))
        assert not booked.is_error, booked.data
        listed = await call(c, "get_media_buys", {"media_buy_ids": [booked.data["media_buy_id"]]})
        base = await call(c, "get_avails", avails_args({"geo_countries": ["US"]}))
        narrowed = await call(c, "get_avails", avails_args(EXCLUDING))
    assert_valid("get_media_buys", listed.data)
    [package] = listed.data["media_buys"][0]["packages"]
    assert package["targeting_overlay"] == EXCLUDING
    everyone = base.data["packages"][0]["available_impressions"]
    fewer = narrowed.data["packages"][0]["available_impressions"]
    # Two regions (8% each), one metro (5%) and tablets (a third of display's devices) out.
    assert abs(fewer - everyone * 0.84 * 0.95 * (2 / 3)) <= 2, (everyone, fewer)


async def test_bad_exclusions_are_refused_naming_the_field(live: LiveServer) -> None:
    cases = {
        "geo_regions_exclude": ({"geo_regions_exclude": ["California"]}, "VALIDATION_ERROR"),
        "device_type_exclude": ({"device_type_exclude": ["toaster"]}, "VALIDATION_ERROR"),
        "both": ({"geo_regions": ["US-CA"], "geo_regions_exclude": ["US-CA"]}, "VALIDATION_ERROR"),
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        answers = {
            name: await call(c, "create_media_buy", non_guaranteed(targeting_overlay=overlay))
            for name, (overlay, _) in cases.items()
        }
        # A product whose targeting does not list device_type cannot exclude devices.
        takeover = await call(
            c,
            "get_avails",
            {
                **avails_args({"device_type_exclude": ["mobile"]}),
                "product_ids": ["display_homepage_takeover"],
            },
        )
    for name, (_, code) in cases.items():
        assert answers[name].error_codes == [code], answers[name].data
        assert answers[name].error["field"] == (
            f"packages[0].targeting_overlay.{'geo_regions_exclude' if name == 'both' else name}"
        )
    assert takeover.error_codes == ["VALIDATION_ERROR"]
    assert takeover.error["field"] == "targeting_overlay.device_type_exclude"
    assert "does not allow device_type targeting" in takeover.error["message"]


def test_excluded_devices_leave_the_traffic_mix() -> None:
    assert device_mix(["display"], None, ["mobile"]) == {"desktop": 0.35, "tablet": 0.15}
    assert device_mix(["display"], ["mobile", "tablet"], ["tablet"]) == {"mobile": 0.5}
    assert device_mix(["ctv"], None, ["mobile"]) == {"ctv": 1.0}


async def test_device_platforms_narrow_the_products_that_allow_them(live: LiveServer) -> None:
    app = {"product_ids": ["mobile_app_interstitial"]}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        everyone = await call(c, "get_avails", {**avails_args(None), **app})
        ios = await call(c, "get_avails", {**avails_args({"device_platform": ["ios"]}), **app})
        unknown = await call(
            c, "get_avails", {**avails_args({"device_platform": ["symbian"]}), **app}
        )
        # Run-of-site display does not list operating systems among its targeting.
        web = await call(c, "get_avails", avails_args({"device_platform": ["ios"]}))
    all_of_it = everyone.data["packages"][0]["available_impressions"]
    assert abs(ios.data["packages"][0]["available_impressions"] - all_of_it * 0.3) <= 2
    for refused in (unknown, web):
        assert refused.error_codes == ["VALIDATION_ERROR"]
        assert refused.error["field"] == "targeting_overlay.device_platform"


def test_kevel_refuses_platforms_and_triton_sends_them() -> None:
    from adcp_agent_adapters.kevel.mapping import targeting_fields
    from adcp_agent_adapters.triton.adapter import targeting_body

    from adcp_agent.adapter_protocol import Targeting
    from adcp_agent.errors import AdcpError

    platforms = Targeting(device_platforms=("ios", "android"))
    with pytest.raises(AdcpError) as err:
        targeting_fields(platforms, {}, [], 7)
    assert (err.value.code, err.value.field) == ("UNSUPPORTED_FEATURE", "targeting.device_platform")
    assert targeting_body(platforms)["platforms"] == ["ios", "android"]


async def test_metros_are_the_declared_nielsen_dmas(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        caps = await call(c, "get_adcp_capabilities", {})
        itl = await call(
            c,
            "create_media_buy",
            non_guaranteed(
                targeting_overlay={"geo_metros": [{"system": "uk_itl1", "values": ["UKI"]}]}
            ),
        )
        bad = await call(
            c,
            "create_media_buy",
            non_guaranteed(
                targeting_overlay={
                    "geo_metros_exclude": [{"system": "nielsen_dma", "values": ["NYC"]}]
                }
            ),
        )
    assert caps.data["media_buy"]["execution"]["targeting"]["geo_metros"] == {"nielsen_dma": True}
    assert itl.error_codes == ["UNSUPPORTED_FEATURE"]
    assert itl.error["field"] == "packages[0].targeting_overlay.geo_metros[0].system"
    assert bad.error_codes == ["VALIDATION_ERROR"]
    assert bad.error["field"] == "packages[0].targeting_overlay.geo_metros_exclude[0].values"


async def test_postal_areas_are_checked_declared_and_narrow_avails(live: LiveServer) -> None:
    zips = {"geo_postal_areas": [{"country": "US", "system": "zip", "values": ["10001", "10002"]}]}
    legacy = {"geo_postal_areas": [{"system": "us_zip", "values": ["10001", "10002"]}]}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        caps = await call(c, "get_adcp_capabilities", {})
        everyone = await call(c, "get_avails", avails_args(None))
        two = await call(c, "get_avails", avails_args(zips))
        old_form = await call(c, "get_avails", avails_args(legacy))
        booked = await call(c, "create_media_buy", non_guaranteed(targeting_overlay=zips))
        refused = {
            field: await call(c, "create_media_buy", non_guaranteed(targeting_overlay=overlay))
            for field, overlay in {
                "geo_postal_areas[0].values": {
                    "geo_postal_areas": [{"country": "US", "system": "zip", "values": ["1000"]}]
                },
                "geo_postal_areas[0].system": {
                    "geo_postal_areas": [
                        {"country": "FR", "system": "code_postal", "values": ["75001"]}
                    ]
                },
                "geo_postal_areas[0].country": {
                    "geo_postal_areas": [{"country": "DE", "system": "plz", "values": ["10115"]}]
                },
            }.items()
        }
    assert caps.data["media_buy"]["execution"]["targeting"]["geo_postal_areas"]["US"] == [
        "zip",
        "zip_plus_four",
    ]
    assert_valid("get_adcp_capabilities", caps.data)
    # Two of ~30,000 US ZIPs, on a product serving three countries.
    all_of_it = everyone.data["packages"][0]["available_impressions"]
    expected = all_of_it * 2 / 30_000 / 3
    for answer in (two, old_form):
        assert abs(answer.data["packages"][0]["available_impressions"] - expected) <= 1
    assert not booked.is_error, booked.data
    assert {f: a.error_codes for f, a in refused.items()} == {
        "geo_postal_areas[0].values": ["VALIDATION_ERROR"],
        "geo_postal_areas[0].system": ["UNSUPPORTED_FEATURE"],
        "geo_postal_areas[0].country": ["VALIDATION_ERROR"],
    }
    for field, answer in refused.items():
        assert answer.error["field"] == f"packages[0].targeting_overlay.{field}"


def test_postal_codes_reach_the_ad_servers() -> None:
    from adcp_agent_adapters.kevel.mapping import targeting_fields
    from adcp_agent_adapters.triton.adapter import targeting_body

    from adcp_agent.adapter_protocol import Targeting
    from adcp_agent.errors import AdcpError
    from adcp_agent.services import targeting

    overlay = {
        "geo_postal_areas": [{"country": "US", "system": "zip", "values": ["10001"]}],
        "geo_postal_areas_exclude": [{"system": "gb_outward", "values": ["SW1A"]}],
    }
    adapter = targeting.to_adapter(overlay, "acct")
    assert (adapter.postal_codes, adapter.postal_codes_exclude) == (("US:10001",), ("GB:SW1A",))
    body = targeting_body(adapter)
    assert (body["postal_codes"], body["postal_codes_exclude"]) == (["US:10001"], ["GB:SW1A"])
    with pytest.raises(AdcpError) as err:
        targeting_fields(Targeting(postal_codes=("US:10001",)), {}, [], 7)
    assert (err.value.code, err.value.field) == (
        "UNSUPPORTED_FEATURE",
        "targeting.geo_postal_areas",
    )
