"""comply_test_controller fixtures and simulations over streamable HTTP: seed_* through
the real validation, simulate_delivery / simulate_budget_spend through the delivery
data, and sandbox traffic kept apart from production (ad server, listings, avails)."""

from __future__ import annotations

from typing import Any

from tests.creative_helpers import display
from tests.media_helpers import key
from tests.sandbox_support import (
    CONTROLLER,
    REC_MAPPINGS,
    REC_TOKEN,
    SANDBOX,
    SBX_OTHER_TOKEN,
    SBX_TOKEN,
    RecordingAdapter,
    SandboxServer,
    control,
    ng_buy,
    sbx,
    sbx_postgres,
    sbx_sqlite,
)
from tests.support import assert_valid, call, mcp_client

__all__ = ["sbx", "sbx_postgres", "sbx_sqlite"]  # the module-scoped sandbox server fixture

ACCOUNT = "acc_sbx_fixture"
DELIVERY_ACCOUNT = "acc_sbx_delivery"
BANNER = {
    "delivery_type": "non_guaranteed",
    "channels": ["display"],
    "format_ids": [{"agent_url": "https://x/mcp", "id": "display_468x60"}],
    "pricing_options": [{"pricing_option_id": "sbx_cpm", "pricing_model": "cpm",
                         "currency": "USD", "floor_price": 1.0}],
}  # fmt: skip


def _by_id(items: list[dict[str, Any]], field: str, value: str) -> dict[str, Any]:
    return next(i for i in items if i[field] == value)


async def _delivery(client: Any, media_buy_id: str) -> dict[str, Any]:
    report = await call(
        client,
        "get_media_buy_delivery",
        {"media_buy_ids": [media_buy_id], "account": {"account_id": DELIVERY_ACCOUNT}},
    )
    assert not report.is_error, report.data
    assert_valid("get_media_buy_delivery", report.data)
    return report.data["media_buy_deliveries"][0]


async def test_seeds_go_through_validation_and_replays_converge(sbx: SandboxServer) -> None:
    fixture = {"brand": {"domain": "fixture.example"}, "operator": "fixture.example"}
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        acc = await control(client, "seed_account", {"account_id": ACCOUNT, "fixture": fixture})
        acc_again = await control(
            client, "seed_account", {"account_id": ACCOUNT, "fixture": fixture}
        )
        fmt = await control(client, "seed_creative_format", {"format_id": "display_468x60"})
        prod = await control(
            client, "seed_product", {"product_id": "sbx_banner", "fixture": BANNER}
        )
        renamed = {**BANNER, "name": "Sandbox banner"}
        prod_again = await control(
            client, "seed_product", {"product_id": "sbx_banner", "fixture": renamed}
        )
        price = {"pricing_model": "cpm", "currency": "USD", "fixed_price": 5.0}
        fixed = {"product_id": "sbx_banner", "pricing_option_id": "sbx_fixed", "fixture": price}
        option = await control(client, "seed_pricing_option", fixed)
        option_again = await control(client, "seed_pricing_option", fixed)
        bad_option = await control(
            client,
            "seed_pricing_option",
            {**fixed, "fixture": {"fixed_price": 5.0, "floor_price": 1.0}},
        )
        no_product = await control(client, "seed_pricing_option", {**fixed, "product_id": "nope"})
        bad_product = await control(
            client, "seed_product", {"product_id": "Bad Id!", "fixture": BANNER}
        )
        on = {"account": {"sandbox": True, "account_id": ACCOUNT}}  # the fixtures' account
        pending = {"format_id": {"id": "display_468x60"}, "status": "pending_review"}
        creative = {"creative_id": "cr_sbx_seeded", "fixture": pending}
        cr = await control(client, "seed_creative", creative, **on)
        cr_again = await control(client, "seed_creative", creative, **on)
        buy = {"media_buy_id": "mb_sbx_seeded", "fixture": {
            "packages": [{"product_id": "sbx_banner", "pricing_option_id": "sbx_cpm",
                          "budget": 2000}], "status": "active"}}  # fmt: skip
        seeded = await control(client, "seed_media_buy", buy, **on)
        seeded_again = await control(client, "seed_media_buy", buy, **on)
        too_small = await control(
            client,
            "seed_media_buy",
            {"media_buy_id": "mb_sbx_small", "fixture": {"product_id": "ctv_sports_premium",
                                                         "total_budget": 10}},
            **on,
        )  # fmt: skip
        formats = await call(client, "list_creative_formats", {})
        products = await call(client, "get_products", {"buying_mode": "wholesale"})
        accounts = await call(client, "list_accounts", {"sandbox": True})
        library = await call(client, "list_creatives", {"account": {"account_id": ACCOUNT}})
        default_view = await call(client, "get_media_buys", {})
        account_view = await call(client, "get_media_buys", {"account": {"account_id": ACCOUNT}})
    async with mcp_client(sbx.mcp_url, SBX_OTHER_TOKEN) as other:
        taken = await control(other, "seed_account", {"account_id": ACCOUNT})
    for answer in (acc, acc_again, fmt, prod, prod_again, option, option_again, cr, cr_again,
                   seeded, seeded_again):  # fmt: skip
        assert answer.data["success"] is True, answer.data
    assert bad_option.data["error"] == "INVALID_PARAMS"
    assert no_product.data["error"] == "NOT_FOUND"
    assert bad_product.data["error"] == "INVALID_PARAMS"
    assert too_small.data["error"] == "INVALID_PARAMS"
    assert "BUDGET_TOO_LOW" in too_small.data["error_detail"]
    assert taken.data["error"] == "INVALID_PARAMS"
    assert "display_468x60" in {f["format_id"]["id"] for f in formats.data["formats"]}
    assert_valid("list_creative_formats", formats.data)
    product = _by_id(products.data["products"], "product_id", "sbx_banner")
    assert product["name"] == "Sandbox banner"  # the second seed replaced the first
    assert {o["pricing_option_id"] for o in product["pricing_options"]} == {"sbx_cpm", "sbx_fixed"}
    assert_valid("get_products", products.data)
    account = _by_id(accounts.data["accounts"], "account_id", ACCOUNT)
    assert account["sandbox"] is True
    assert library.data["creatives"][0]["status"] == "pending_review"
    # Sandbox buys are listed only when their account is named.
    assert "mb_sbx_seeded" not in {b["media_buy_id"] for b in default_view.data["media_buys"]}
    [listed] = account_view.data["media_buys"]
    assert listed["media_buy_id"] == "mb_sbx_seeded" and listed["status"] == "active"
    assert_valid("get_media_buys", account_view.data)


async def test_simulated_delivery_accumulates_and_stops_at_the_budget(sbx: SandboxServer) -> None:
    ros = {"product_id": "display_run_of_site", "pricing_option_id": "ros_auction",
           "bid_price": 4.0, "budget": 1000}  # fmt: skip
    on = {"account": {"sandbox": True, "account_id": DELIVERY_ACCOUNT}}
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        await control(client, "seed_account", {"account_id": DELIVERY_ACCOUNT})
        for media_buy_id in ("mb_sbx_delivery", "mb_sbx_spend"):
            await control(
                client,
                "seed_media_buy",
                {"media_buy_id": media_buy_id, "fixture": {"packages": [ros], "status": "active"}},
                **on,
            )
        first = await control(
            client,
            "simulate_delivery",
            {"media_buy_id": "mb_sbx_delivery", "impressions": 100_000, "clicks": 250},
        )
        second = await control(
            client,
            "simulate_delivery",
            {"media_buy_id": "mb_sbx_delivery", "impressions": 100_000, "clicks": 250,
             "reported_spend": {"amount": 352.0, "currency": "USD"}, "reach": 5000},
        )  # fmt: skip
        capped = await control(
            client, "simulate_delivery", {"media_buy_id": "mb_sbx_delivery", "impressions": 10**6}
        )
        delivered = await _delivery(client, "mb_sbx_delivery")
        half = {"media_buy_id": "mb_sbx_spend", "spend_percentage": 50}
        spend = await control(client, "simulate_budget_spend", half)
        spend_again = await control(client, "simulate_budget_spend", half)
        after_half = await _delivery(client, "mb_sbx_spend")
        by_account = await control(
            client,
            "simulate_budget_spend",
            {"account_id": DELIVERY_ACCOUNT, "spend_percentage": 95},
        )
        after_95 = await _delivery(client, "mb_sbx_spend")
        wrong_currency = await control(
            client,
            "simulate_delivery",
            {"media_buy_id": "mb_sbx_spend", "reported_spend": {"amount": 1, "currency": "EUR"}},
        )
        await control(
            client,
            "seed_media_buy",
            {"media_buy_id": "mb_sbx_unapproved", "fixture": {"product_id": "ctv_sports_premium",
                                                              "total_budget": 20000}},
            **on,
        )  # fmt: skip
        unapproved = await control(
            client, "simulate_delivery", {"media_buy_id": "mb_sbx_unapproved", "impressions": 1}
        )
        overflowing = await control(
            client, "simulate_delivery", {"media_buy_id": "mb_sbx_delivery", "impressions": 2**63}
        )
    assert first.data["simulated"] == {
        "impressions": 100_000,
        "clicks": 250,
        "reported_spend": {"amount": 400.0, "currency": "USD"},  # 100k at the 4.00 bid
    }
    assert second.data["cumulative"] == {
        "impressions": 200_000,
        "clicks": 500,
        "reported_spend": {"amount": 752.0, "currency": "USD"},
    }
    assert "reach" in second.data["message"]  # said, not silently dropped
    assert capped.data["simulated"]["reported_spend"]["amount"] == 248.0
    assert "capped" in capped.data["message"]
    # More than 10^12 at once is refused; 2^63 failed as an unexpected error.
    assert overflowing.data["error"] == "INVALID_PARAMS"
    assert "impressions" in overflowing.data["error_detail"]
    assert delivered["totals"]["impressions"] == 1_200_000
    assert delivered["totals"]["spend"] == 1000.0
    assert spend.data["simulated"] == {
        "spend_percentage": 50,
        "computed_spend": 500.0,
        "budget": 1000.0,
        "currency": "USD",
    }
    assert spend_again.data == spend.data  # a replay leaves the same spend
    assert after_half["totals"]["spend"] == 500.0
    assert by_account.data["simulated"]["budget"] == 2000.0  # both delivering buys
    assert after_95["totals"]["spend"] == 950.0
    assert wrong_currency.data["error"] == "INVALID_PARAMS"
    assert unapproved.data["error"] == "INVALID_STATE"
    assert unapproved.data["current_state"] == "pending_approval"


async def test_sandbox_traffic_never_reaches_the_real_ad_server(sbx: SandboxServer) -> None:
    RecordingAdapter.calls.clear()
    async with mcp_client(sbx.mcp_url, REC_TOKEN) as client:
        avails_args = {"product_ids": ["display_run_of_site"], "flight_start_date": "2031-06-05",
                       "flight_end_date": "2031-06-18"}  # fmt: skip
        synced = await call(
            client,
            "sync_accounts",
            {"accounts": [{"brand": {"domain": "rec.example"}, "operator": "rec.example",
                           "billing": "operator", "sandbox": True}]},
        )  # fmt: skip
        account = {"account_id": synced.data["accounts"][0]["account_id"]}
        before = await call(client, "get_avails", avails_args)
        production_calls = list(RecordingAdapter.calls)  # production asks the real one
        RecordingAdapter.calls.clear()
        buy = await call(client, "create_media_buy", ng_buy(budget=2000, account=account))
        package_id = buy.data["packages"][0]["package_id"]
        creatives = await call(
            client,
            "sync_creatives",
            {"creatives": [display("cr_rec_sbx")], "account": account, "idempotency_key": key(),
             "assignments": [{"creative_id": "cr_rec_sbx", "package_id": package_id}]},
        )  # fmt: skip
        media_buy_id = buy.data["media_buy_id"]
        await control(client, "force_media_buy_status", {"media_buy_id": media_buy_id,
                                                         "status": "active"})  # fmt: skip
        await control(client, "simulate_delivery", {"media_buy_id": media_buy_id,
                                                    "impressions": 1000})  # fmt: skip
        pause = {"media_buy_id": media_buy_id, "paused": True, "account": account}
        paused = await call(client, "update_media_buy", pause)
        sandbox_calls = list(RecordingAdapter.calls)
        after = await call(client, "get_avails", avails_args)
        unnamed = await call(client, "get_media_buys", {})
        named = await call(client, "get_media_buys", {"account": account})
    assert not buy.is_error and not creatives.is_error and not paused.is_error
    assert "forecast" in production_calls
    assert sandbox_calls == []  # booking, creatives, delivery, updates: all on the mock
    # Sandbox bookings do not reserve production inventory.
    assert (
        after.data["packages"][0]["available_impressions"]
        == (before.data["packages"][0]["available_impressions"])
    )
    assert media_buy_id not in {b["media_buy_id"] for b in unnamed.data["media_buys"]}
    assert [b["media_buy_id"] for b in named.data["media_buys"]] == [media_buy_id]


async def test_a_booking_hands_the_buyers_advertiser_mapping_to_the_ad_server(
    sbx: SandboxServer,
) -> None:
    """The order an ad server is asked to book names the buyer's advertiser there (the
    principal's platform mappings) and one line per package."""
    RecordingAdapter.orders.clear()
    async with mcp_client(sbx.mcp_url, REC_TOKEN) as client:
        buy = await call(client, "create_media_buy", ng_buy(budget=2000))
    assert not buy.is_error, buy.data
    [order] = RecordingAdapter.orders
    assert order.media_buy_id == buy.data["media_buy_id"]
    assert order.advertiser_mapping == REC_MAPPINGS
    assert [line.package_id for line in order.lines] == [
        p["package_id"] for p in buy.data["packages"]
    ]


# Fields of each seed scenario's fixture, and values of the wrong kind for them: a
# fixture is the caller's free-form JSON, read field by field.
_FIXTURE_FIELDS = {
    "seed_product": ("product_id", ["channels", "delivery_type", "format_ids", "property_ids",
                     "publisher_properties", "pricing_options", "name", "keywords",
                     "countries", "targeting", "inventory"]),
    "seed_creative_format": ("format_id", ["kind", "renders", "width", "height", "durations_s",
                             "duration_ms", "name", "mime_types"]),
    "seed_account": ("account_id", ["brand", "name", "advertiser", "operator", "billing",
                     "payment_terms", "currency", "status"]),
    "seed_creative": ("creative_id", ["format_id", "name", "assets", "status", "tags"]),
    "seed_media_buy": ("media_buy_id", ["packages", "status", "start_time", "end_time",
                       "total_budget", "product_id", "bid_price", "brand", "po_number"]),
}  # fmt: skip
_WRONG = [7, "x", [1], {"a": 1}, True, -1, 10**20, [None], [{"x": 1}], "x" * 3000]


async def test_a_fixture_of_the_wrong_shape_is_invalid_params_not_a_crash(
    sbx: SandboxServer,
) -> None:
    """107 of 480 such fixtures (a number where an object belongs, an object where text
    does, 10^20 pixels) failed as unexpected errors; each is INVALID_PARAMS naming the
    field now, or is taken (a value of the right kind)."""
    crashed: list[tuple[str, str, str]] = []
    n = 0
    async with mcp_client(sbx.mcp_url, SBX_TOKEN) as client:
        brand = await call(
            client,
            CONTROLLER,
            {"scenario": "seed_account", "account": SANDBOX,
             "params": {"account_id": "acc_wrong_brand", "fixture": {"brand": ["x"]}}},
        )  # fmt: skip
        for scenario, (id_name, fields) in _FIXTURE_FIELDS.items():
            for name in fields:
                for value in _WRONG:
                    n += 1
                    params = {id_name: f"wrong_{n}", "fixture": {name: value}}
                    args = {"scenario": scenario, "account": SANDBOX, "params": params}
                    answer = await call(client, CONTROLLER, args)
                    refused = answer.data.get("error")
                    if answer.is_error or refused not in (None, "INVALID_PARAMS", "NOT_FOUND"):
                        crashed.append((scenario, name, repr(value)[:30]))
    assert n > 400 and crashed == [], crashed
    assert brand.data["error"] == "INVALID_PARAMS"
    assert "params.fixture.brand must be an object" in brand.data["error_detail"]
