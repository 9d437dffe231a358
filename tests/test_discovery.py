"""Discovery tools: capabilities, products (ranking, filters, pagination), formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adcp_agent import demo_catalog
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client


async def test_capabilities_claim_only_what_is_served(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        caps = await call(client, "get_adcp_capabilities")
        tools = {t.name for t in await client.list_tools()}
    assert not caps.is_error
    assert_valid("get_adcp_capabilities", caps.data)
    assert caps.data["adcp"]["major_versions"] == [3]
    assert set(caps.data["supported_protocols"]) == {"media_buy", "signals"}
    assert "signal-owned" in caps.data["specialisms"]
    # Every tool a claimed specialism exercises is served.
    assert {"create_media_buy", "update_media_buy", "sync_creatives"} <= tools
    assert {"sales-guaranteed", "sales-non-guaranteed"} <= set(caps.data["specialisms"])
    assert caps.data["account"]["sandbox"] is True
    portfolio = caps.data["media_buy"]["portfolio"]
    assert "riversidemedia.example" in portfolio["publisher_domains"]
    assert {"ctv", "display", "streaming_audio"} <= set(portfolio["primary_channels"])


async def test_brief_ranks_relevant_products_first_and_explains(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(
            client,
            "get_products",
            {"buying_mode": "brief", "brief": "video ads on TV for sports fans"},
        )
        again = await call(
            client,
            "get_products",
            {"buying_mode": "brief", "brief": "video ads on TV for sports fans"},
        )
        radio = await call(client, "get_products", {"brief": "radio spots for commuters"})
    assert_valid("get_products", result.data)
    ids = [p["product_id"] for p in result.data["products"]]
    # The two sports CTV products lead; plain display and audio trail.
    assert set(ids[:2]) == {"ctv_sports_premium", "ctv_private_upfront"}
    assert ids.index("ctv_sports_premium") < ids.index("display_sports_section")
    assert ids == [p["product_id"] for p in again.data["products"]]  # deterministic
    top = result.data["products"][0]
    assert "sport" in top["brief_relevance"]
    # Products that match nothing in the brief are not padded in.
    assert "display_homepage_takeover" not in ids
    assert radio.data["products"][0]["product_id"] == "audio_streaming_radio"


async def test_seed_flat_call_with_only_a_brief_works(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(
            client, "get_products", {"brief": "video ads for sports content targeting millennials"}
        )
    assert not result.is_error
    top_two = {p["product_id"] for p in result.data["products"][:2]}
    assert "ctv_sports_premium" in top_two


async def test_filters_narrow_the_catalog(live: LiveServer) -> None:
    soon = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        guaranteed_ctv = await call(
            client,
            "get_products",
            {
                "buying_mode": "wholesale",
                "filters": {"delivery_type": "guaranteed", "channels": ["ctv"]},
            },
        )
        small_budget = await call(
            client,
            "get_products",
            {"buying_mode": "wholesale", "filters": {"budget_range": {"max": 2000}}},
        )
        canada = await call(
            client, "get_products", {"buying_mode": "wholesale", "filters": {"countries": ["CA"]}}
        )
        tomorrow = await call(
            client,
            "get_products",
            {"buying_mode": "wholesale", "filters": {"start_date": soon, "end_date": later}},
        )
        fixed = await call(
            client,
            "get_products",
            {"buying_mode": "wholesale", "filters": {"is_fixed_price": True}},
        )
    for r in (guaranteed_ctv, small_budget, canada, tomorrow, fixed):
        assert not r.is_error
        assert_valid("get_products", r.data)
    ids = lambda r: {p["product_id"] for p in r.data["products"]}  # noqa: E731
    assert ids(guaranteed_ctv) == {"ctv_sports_premium", "ctv_private_upfront"}
    # Minimum spends above the budget are excluded.
    assert "ctv_sports_premium" not in ids(small_budget)
    assert "display_run_of_site" in ids(small_budget)
    assert ids(canada) == {"ctv_entertainment_ron", "display_run_of_site", "audio_programmatic"}
    # Products needing more lead time than the flight allows are excluded.
    assert "podcast_host_read" not in ids(tomorrow)
    assert "display_run_of_site" in ids(tomorrow)
    assert all("fixed_price" in p["pricing_options"][0] for p in fixed.data["products"])


async def test_bad_inputs_get_typed_errors_naming_the_field(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        wrong_enum = await call(client, "get_products", {"filters": {"delivery_type": "maybe"}})
        wholesale_brief = await call(
            client, "get_products", {"buying_mode": "wholesale", "brief": "sports"}
        )
        empty_brief = await call(client, "get_products", {"buying_mode": "brief"})
        reversed_dates = await call(
            client,
            "get_products",
            {
                "buying_mode": "wholesale",
                "filters": {"start_date": "2031-02-01", "end_date": "2031-01-01"},
            },
        )
        bad_country = await call(
            client, "get_products", {"buying_mode": "wholesale", "filters": {"countries": ["usa"]}}
        )
        wrong_type = await call(client, "get_products", {"brief": 42})
    assert wrong_enum.error_codes == ["VALIDATION_ERROR"]
    assert wrong_enum.error["field"] == "filters.delivery_type"
    assert wholesale_brief.error_codes == ["INVALID_REQUEST"]
    assert wholesale_brief.error["field"] == "brief"
    assert empty_brief.error["field"] == "brief"
    assert reversed_dates.error["field"] == "filters.end_date"
    assert bad_country.error["field"].startswith("filters.countries")
    assert wrong_type.error["field"] == "brief"
    for r in (wrong_enum, wholesale_brief, empty_brief, reversed_dates, bad_country, wrong_type):
        assert r.is_error
        assert r.data["status"] == "failed"
        assert r.error["recovery"] == "correctable"
        assert_valid("get_products", r.data)


async def test_unknown_arguments_are_tolerated_and_context_echoed(live: LiveServer) -> None:
    context = {"trace_id": "buyer-7f3b", "nested": {"n": 1}}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(
            client,
            "get_products",
            {
                "buying_mode": "brief",
                "brief": "sports",
                "adcp_version": "3.1",
                "idempotency_key": "k" * 20,
                "context": context,
                "ext": {"vendor": {"x": 1}},
                "some_future_field": [1, 2, 3],
                "filters": {"channels": ["ctv"], "postal_areas": [{"country": "US"}]},
            },
        )
        failing = await call(client, "get_products", {"buying_mode": "nope", "context": context})
        caps = await call(client, "get_adcp_capabilities", {"context": context, "protocols": None})
    assert not result.is_error
    assert result.data["context"] == context
    assert failing.data["context"] == context
    assert caps.data["context"] == context
    assert_valid("get_products", result.data)
    # A filter we cannot apply is reported, not silently dropped.
    assert result.data["errors"][0]["code"] == "UNSUPPORTED_FEATURE"
    assert result.data["errors"][0]["field"] == "filters.postal_areas"


async def test_pagination_walks_every_product_once(live: LiveServer) -> None:
    seen: list[str] = []
    cursor = None
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        full = await call(client, "get_products", {"buying_mode": "wholesale"})
        while True:
            page_req = {"max_results": 4} | ({"cursor": cursor} if cursor else {})
            page = await call(
                client, "get_products", {"buying_mode": "wholesale", "pagination": page_req}
            )
            assert_valid("get_products", page.data)
            seen += [p["product_id"] for p in page.data["products"]]
            if not page.data["pagination"]["has_more"]:
                break
            cursor = page.data["pagination"]["cursor"]
        bad = await call(
            client,
            "get_products",
            {"buying_mode": "wholesale", "pagination": {"cursor": "garbage!"}},
        )
        other_query = await call(
            client,
            "get_products",
            {"brief": "sports", "pagination": {"cursor": cursor}},
        )
        too_big = await call(
            client,
            "get_products",
            {"buying_mode": "wholesale", "pagination": {"max_results": 500}},
        )
    assert seen == [p["product_id"] for p in full.data["products"]]
    assert len(seen) == full.data["pagination"]["total_count"] == 11
    assert bad.error_codes == ["INVALID_REQUEST"]
    assert bad.error["field"] == "pagination.cursor"
    assert other_query.error["field"] == "pagination.cursor"
    assert too_big.error["field"] == "pagination.max_results"


async def test_creative_formats_and_properties(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        formats = await call(client, "list_creative_formats")
        audio = await call(client, "list_creative_formats", {"asset_types": ["audio"]})
        props = await call(client, "list_authorized_properties")
        products = await call(client, "get_products", {"buying_mode": "wholesale"})
    assert_valid("list_creative_formats", formats.data)
    assert_valid("list_creative_formats", audio.data)
    ids = {f["format_id"]["id"] for f in formats.data["formats"]}
    assert {"display_300x250", "video_1920x1080", "audio_30s"} <= ids
    assert {f["format_id"]["id"] for f in audio.data["formats"]} == {
        "audio_30s",
        "audio_host_read_60s",
    }
    mrec = next(f for f in formats.data["formats"] if f["format_id"]["id"] == "display_300x250")
    assert mrec["renders"][0]["dimensions"] == {"width": 300, "height": 250, "unit": "px"}
    # Every format a product references is listed, under the same agent_url.
    for product in products.data["products"]:
        for ref in product["format_ids"]:
            assert ref["id"] in ids
            assert ref["agent_url"] == formats.data["formats"][0]["format_id"]["agent_url"]
    prop_ids = {p["property_id"] for p in props.data["properties"]}
    assert {"riverside_tv", "riverside_radio", "riverside_podcasts"} <= prop_ids
    for product in products.data["products"]:
        for sel in product["publisher_properties"]:
            assert set(sel["property_ids"]) <= prop_ids


def _expected_formats(keep: Any) -> set[str]:
    return {f["format_id"] for f in demo_catalog.FORMATS if keep(f)}


def _sized(f: dict[str, Any]) -> bool:
    return f.get("width") is not None and f.get("height") is not None


FORMAT_FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"name_search": "BANNER"}, lambda f: "banner" in f["name"].lower()),
    ({"max_width": 320}, lambda f: _sized(f) and f["width"] <= 320),
    ({"min_width": 728}, lambda f: _sized(f) and f["width"] >= 728),
    ({"min_height": 250, "max_height": 480}, lambda f: _sized(f) and 250 <= f["height"] <= 480),
    ({"max_width": 1, "max_height": 1}, lambda f: False),
    ({"is_responsive": True}, lambda f: False),
    ({"is_responsive": False}, lambda f: True),
    ({"type": "video"}, lambda f: f["kind"] == "video"),
    (
        {"type": "audio", "name_search": "host"},
        lambda f: f["kind"] == "audio" and "host" in f["name"].lower(),
    ),
    ({"type": "dooh"}, lambda f: False),
    (
        {"name_search": "video", "min_width": 1920},
        lambda f: "video" in f["name"].lower() and _sized(f) and f["width"] >= 1920,
    ),
]


@pytest.mark.parametrize(("args", "keep"), FORMAT_FILTERS, ids=[str(a) for a, _ in FORMAT_FILTERS])
async def test_creative_format_filters_select_exactly_their_formats(
    live: LiveServer, args: dict[str, Any], keep: Any
) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(client, "list_creative_formats", args)
    assert not result.is_error, result.data
    assert_valid("list_creative_formats", result.data)
    assert {f["format_id"]["id"] for f in result.data["formats"]} == _expected_formats(keep)
    assert "errors" not in result.data


async def test_creative_format_filters_not_applied_are_reported(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(
            client, "list_creative_formats", {"wcag_level": "AA", "property_id": "riverside_tv"}
        )
    assert not result.is_error
    assert_valid("list_creative_formats", result.data)
    assert [(e["code"], e["field"]) for e in result.data["errors"]] == [
        ("UNSUPPORTED_FEATURE", "property_id"),
        ("UNSUPPORTED_FEATURE", "wcag_level"),
    ]


async def test_undeclared_read_arguments_are_reported_unless_harmless(live: LiveServer) -> None:
    """An AdCP argument a read does not declare is dropped, and the answer says so —
    unless it could not have changed the answer (``unsupported.QUIET``)."""
    args = {
        "include_pricing": True,
        "brand_new_filter": 1,
        "time_budget": {"interval": 5, "unit": "seconds"},
        "idempotency_key": "read-0000000000000001",
        "context": {"run": 7},
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(client, "list_creative_formats", args)
        plain = await call(client, "list_creative_formats", {})
        raw = await client.call_tool("list_creative_formats", args, raise_on_error=False)
    assert not result.is_error
    assert_valid("list_creative_formats", result.data)
    assert result.data["formats"] == plain.data["formats"]
    assert [(e["code"], e["field"]) for e in result.data["errors"]] == [
        ("UNSUPPORTED_FEATURE", "brand_new_filter"),
        ("UNSUPPORTED_FEATURE", "include_pricing"),
    ]
    text = json.loads(raw.content[0].text)  # clients reading only the text see the same
    assert text["errors"] == result.data["errors"] and text["context"] == {"run": 7}


async def test_product_narrowing_it_cannot_apply_is_reported(live: LiveServer) -> None:
    args = {
        "buying_mode": "wholesale",
        "property_list": {"agent_url": "https://lists.example", "list_id": "l1"},
        "required_policies": ["policy_1"],
    }
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(client, "get_products", args)
    assert not result.is_error
    assert_valid("get_products", result.data)
    assert result.data["products"]
    assert [(e["code"], e["field"]) for e in result.data["errors"]] == [
        ("UNSUPPORTED_FEATURE", "property_list"),
        ("UNSUPPORTED_FEATURE", "required_policies"),
    ]


async def test_product_fields_project_each_product(live: LiveServer) -> None:
    args: dict[str, Any] = {"buying_mode": "wholesale"}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        full = await call(client, "get_products", args)
        light = await call(client, "get_products", {**args, "fields": ["pricing_options"]})
        unknown = await call(client, "get_products", {**args, "fields": ["price"]})
    assert not light.is_error, light.data
    assert [p["product_id"] for p in light.data["products"]] == [
        p["product_id"] for p in full.data["products"]
    ]
    for lean, whole in zip(light.data["products"], full.data["products"], strict=True):
        assert lean == {k: whole[k] for k in ("product_id", "name", "pricing_options")}
    assert unknown.error_codes == ["VALIDATION_ERROR"] and unknown.error["field"] == "fields[0]"
    assert "pricing_options" in unknown.error["suggestion"]


def _products_where(keep: Any) -> set[str]:
    return {p["product_id"] for p in demo_catalog.PRODUCTS if keep(p)}


def _serves(product: dict[str, Any], country: str) -> bool:
    return not product.get("countries") or country in product["countries"]


PRODUCT_FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({"regions": ["GB-SCT"]}, lambda p: _serves(p, "GB")),
    ({"regions": ["CA-ON", "GB-SCT"]}, lambda p: _serves(p, "CA") or _serves(p, "GB")),
    ({"required_geo_targeting": [{"level": "region"}]}, lambda p: "geo_region" in p["targeting"]),
    (
        {
            "required_geo_targeting": [
                {"level": "country"},
                {"level": "metro", "system": "nielsen_dma"},
            ]
        },
        lambda p: {"geo_country", "geo_metro"} <= set(p["targeting"]),
    ),
    (
        {"required_geo_targeting": [{"level": "postal_area", "country": "US", "system": "zip"}]},
        lambda p: False,
    ),
    ({"metros": [{"system": "uk_itl1", "code": "UKI"}]}, lambda p: _serves(p, "GB")),
    ({"metros": [{"system": "nielsen_dma", "code": "501"}]}, lambda p: _serves(p, "US")),
    ({"metros": [{"system": "eurostat_nuts2", "code": "DE21"}]}, lambda p: _serves(p, "DE")),
    ({"exclusivity": "none"}, lambda p: True),
    ({"exclusivity": "exclusive"}, lambda p: False),
    ({"required_features": {"catalog_management": False}}, lambda p: True),
    ({"required_features": {"inline_creative_management": True}}, lambda p: False),
]


@pytest.mark.parametrize(
    ("filters", "keep"), PRODUCT_FILTERS, ids=[str(f) for f, _ in PRODUCT_FILTERS]
)
async def test_geo_exclusivity_and_feature_filters_select_exactly_their_products(
    live: LiveServer, filters: dict[str, Any], keep: Any
) -> None:
    args = {"buying_mode": "wholesale", "filters": filters, "pagination": {"max_results": 100}}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(client, "get_products", args)
    assert not result.is_error, result.data
    assert_valid("get_products", result.data)
    assert {p["product_id"] for p in result.data["products"]} == _products_where(keep)
    assert "errors" not in result.data  # applied, not merely reported
    if "inline_creative_management" in str(filters):
        assert "does not offer inline_creative_management" in result.data["message"]


async def test_a_custom_metro_system_is_reported_not_applied(live: LiveServer) -> None:
    metros = [{"system": "nielsen_dma", "code": "501"}, {"system": "custom", "code": "north"}]
    args = {"buying_mode": "wholesale", "filters": {"metros": metros}}
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as client:
        result = await call(client, "get_products", args)
    assert_valid("get_products", result.data)
    assert [(e["code"], e["field"]) for e in result.data["errors"]] == [
        ("UNSUPPORTED_FEATURE", "filters.metros[1]")
    ]
    assert {p["product_id"] for p in result.data["products"]} == _products_where(
        lambda p: _serves(p, "US")
    )
