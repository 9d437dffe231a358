"""update_media_buy new_packages: packages added to a booked buy — validated as
create_media_buy's, booked as new lines on the buy's order, reserving guaranteed
inventory (only while the buy awaits approval), running from the moment they are added
once the buy runs."""

from __future__ import annotations

import re
from typing import Any

from adcp_agent_adapters.mock import load_state

from tests.conftest import ADMIN_TOKEN
from tests.delivery_support import (
    SimServer,
    approve_and_push_creatives_directly,
    buy_args,
    ros,
    sim,
    sim_postgres,
    sim_sqlite,
)
from tests.media_helpers import guaranteed, non_guaranteed, own_tenant, whole_days
from tests.support import DEMO_TOKEN, LiveServer, assert_valid, call, mcp_client

__all__ = ["sim", "sim_postgres", "sim_sqlite"]  # the module-scoped simulated-clock server fixture

SPORTS = {
    "product_id": "display_sports_section",
    "pricing_option_id": "sports_display_auction",
    "bid_price": 7.0,
    "budget": 3000,
}


CTV = {"product_id": "ctv_sports_premium", "pricing_option_id": "ctv_sports_cpm"}


async def _awaiting_approval(client: Any) -> tuple[str, dict[str, Any]]:
    """A guaranteed buy (20,000 on CTV sports) awaiting approval, in a window no other
    test books, and the get_avails arguments of that window."""
    window, flight = whole_days("ctv_sports_premium", days_ahead=800, days=14)
    submitted = await call(client, "create_media_buy", {**guaranteed(budget=20000), **flight})
    [mb] = re.findall(r"mb_[0-9a-f]+", submitted.data["message"])
    return mb, window


def _lines(data_dir: Any, media_buy_id: str) -> dict[str, Any]:
    """The (mock) ad server's lines of the buy's order, by package id."""
    orders, _ = load_state(data_dir / "adapters" / "demo-mock.state")
    [order] = [o for o in orders.values() if o.spec.media_buy_id == media_buy_id]
    return {line.spec.package_id: line for line in order.lines.values()}


async def test_a_package_is_added_to_a_booked_buy(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        mb = created.data["media_buy_id"]
        [first] = created.data["packages"]
        added = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "revision": 1, "new_packages": [{**SPORTS, "buyer_ref": "s1"}]},
        )
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb], "include_history": 5})
    assert not added.is_error, added.data
    assert_valid("update_media_buy", added.data)
    [new] = added.data["affected_packages"]
    assert new["package_id"] != first["package_id"]
    assert (new["product_id"], new["budget"], new["bid_price"]) == (
        "display_sports_section",
        3000,
        7,
    )
    assert added.data["revision"] == 2 and added.data["total_budget"] == 5000
    assert "add_packages" in added.data["valid_actions"]
    assert {"action": "add_packages", "mode": "self_serve"} in added.data["available_actions"]
    assert_valid("get_media_buys", listed.data)
    [buy] = listed.data["media_buys"]
    assert [p["package_id"] for p in buy["packages"]] == [first["package_id"], new["package_id"]]
    assert buy["total_budget"] == 5000
    assert buy["packages"][1]["start_time"] == buy["start_time"]  # not started: whole flight
    latest = buy["history"][0]
    assert (latest["revision"], latest["action"], latest["package_id"]) == (
        2,
        "updated_packages",
        new["package_id"],
    )
    assert "display_sports_section" in latest["summary"] and "added" in latest["summary"]
    # A line of its own on the buy's order, at the package's terms.
    line = _lines(live.data_dir, mb)[new["package_id"]]
    assert (line.spec.budget, line.spec.rate, line.spec.product_id) == (
        3000,
        7.0,
        "display_sports_section",
    )


async def test_bad_new_packages_are_refused_and_change_nothing(live: LiveServer) -> None:
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        mb = created.data["media_buy_id"]

        async def add(**package: Any) -> Any:
            return await call(
                c, "update_media_buy", {"media_buy_id": mb, "new_packages": [SPORTS, package]}
            )

        unknown = await add(**{**SPORTS, "product_id": "nope"})
        low_bid = await add(**{**SPORTS, "bid_price": 2.0})
        too_small = await add(**{**SPORTS, "budget": 10})
        bad_creative = await add(**SPORTS, creative_assignments=[{"creative_id": "cr_missing"}])
        own_flight = await add(**SPORTS, start_time="2031-01-01T00:00:00Z")
        selector = await add(**SPORTS, format_kind="display")
        empty = await call(c, "update_media_buy", {"media_buy_id": mb, "new_packages": []})
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
    assert (unknown.error_codes, unknown.error["field"]) == (
        ["PRODUCT_NOT_FOUND"],
        "new_packages[1].product_id",
    )
    assert (low_bid.error_codes, low_bid.error["field"]) == (
        ["VALIDATION_ERROR"],
        "new_packages[1].bid_price",
    )
    assert (too_small.error_codes, too_small.error["field"]) == (
        ["BUDGET_TOO_LOW"],
        "new_packages[1].budget",
    )
    assert bad_creative.is_error
    assert bad_creative.error["field"].startswith("new_packages[1].creative_assignments")
    # a flight of its own must fall within the buy's
    assert (own_flight.error_codes, own_flight.error["field"]) == (
        ["VALIDATION_ERROR"],
        "new_packages[1].start_time",
    )
    assert selector.error_codes == ["UNSUPPORTED_FEATURE"], selector.data
    assert selector.error["field"] == "new_packages[1].format_kind"
    assert selector.error["message"].endswith("nothing was changed.")
    assert empty.is_error
    [buy] = listed.data["media_buys"]
    assert buy["revision"] == 1 and len(buy["packages"]) == 1  # nothing was added
    assert len(_lines(live.data_dir, mb)) == 1


async def test_guaranteed_packages_join_a_buy_only_while_it_awaits_approval(
    live: LiveServer,
) -> None:
    """The publisher approves guaranteed inventory: a guaranteed package may join a buy
    awaiting that approval — reserving its inventory at once, counted with the buy's own
    — and no other buy (ACTION_NOT_ALLOWED, with what the buy allows)."""
    sports = CTV
    async with mcp_client(live.mcp_url, DEMO_TOKEN) as c:
        mb, window = await _awaiting_approval(c)
        held_one = await call(c, "get_avails", window)
        added = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "new_packages": [{**sports, "budget": 21000}]},
        )
        held_two = await call(c, "get_avails", window)
        left = int(held_two.data["packages"][0]["available_impressions"])
        greedy = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "new_packages": [{**sports, "budget": (left + 1000) * 42 / 1000}]},
        )
        live_buy = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        refused = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": live_buy.data["media_buy_id"],
                "new_packages": [{**sports, "budget": 20000}],
            },
        )
        listed = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        async with mcp_client(live.mcp_url, ADMIN_TOKEN) as publisher:
            approved = await call(
                publisher, "update_media_buy", {"media_buy_id": mb, "action": "approve_order"}
            )
        after = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
    assert not added.is_error, added.data
    assert added.data["status"] == "completed"
    reserved = [int(r.data["packages"][0]["reserved_impressions"]) for r in (held_one, held_two)]
    assert abs((reserved[1] - reserved[0]) - 21000 / 42 * 1000) <= 2
    assert (greedy.error_codes, greedy.error["field"]) == (
        ["PRODUCT_UNAVAILABLE"],
        "new_packages[0].budget",
    )
    assert (refused.error_codes, refused.error["field"]) == (
        ["ACTION_NOT_ALLOWED"],
        "new_packages[0].product_id",
    )
    details = refused.error["details"]
    assert (details["attempted_action"], details["reason"]) == (
        "add_packages",
        "not_supported_on_buy",
    )
    assert {"action": "pause", "mode": "self_serve"} in details["currently_available_actions"]
    [buy] = listed.data["media_buys"]
    assert buy["confirmed_at"] is None and buy["total_budget"] == 41000  # still awaiting
    assert len(buy["packages"]) == 2
    # The publisher approves the buy with the package it gained: both lines go live.
    assert not approved.is_error, approved.data
    [booked] = after.data["media_buys"]
    assert booked["confirmed_at"] and booked["status"] == "pending_start"
    lines = _lines(live.data_dir, mb)
    assert set(lines) == {p["package_id"] for p in booked["packages"]}


async def test_a_package_added_mid_flight_runs_and_paces_from_then(sim: SimServer) -> None:
    """Halfway through a 96-hour buy, a package added runs the 48 hours left: its line
    starts then, and a day later it has spent about half its budget, on pace."""
    async with mcp_client(sim.mcp_url, DEMO_TOKEN) as c:
        created = await call(c, "create_media_buy", buy_args(await sim.now(), [ros(2000)]))
        mb = created.data["media_buy_id"]
        [first] = created.data["packages"]
        await approve_and_push_creatives_directly(sim.settings, mb)
        await sim.advance(48)
        added_at = await sim.now()
        added = await call(
            c,
            "update_media_buy",
            {
                "media_buy_id": mb,
                "new_packages": [
                    ros(1000, creative_assignments=[{"creative_id": f"cr_{first['package_id']}"}])
                ],
            },
        )
        await sim.advance(24)
        delivery = await call(c, "get_media_buy_delivery", {"media_buy_ids": [mb]})
    assert not added.is_error, added.data
    [new] = added.data["affected_packages"]
    assert new["start_time"][:16] == added_at.isoformat()[:16]
    assert new["creative_assignments"] == [{"creative_id": f"cr_{first['package_id']}"}]
    by_package = {
        p["package_id"]: p for p in delivery.data["media_buy_deliveries"][0]["by_package"]
    }
    fresh = by_package[new["package_id"]]
    assert 350 <= fresh["spend"] <= 650, fresh  # a day of its two: about half of 1,000
    assert 0.8 <= fresh["pacing_index"] <= 1.2, fresh
    assert 0.8 <= by_package[first["package_id"]]["pacing_index"] <= 1.2
    line = _lines(sim.settings.data_dir, mb)[new["package_id"]]
    assert line.spec.start.isoformat()[:16] == added_at.isoformat()[:16]


async def test_a_line_the_ad_server_refuses_adds_nothing(live: LiveServer) -> None:
    """The ad server refuses the new line: nothing is added — a guaranteed package's
    inventory, held while the ad server was asked, is given back — and of a change that
    also paused the buy, the pause (which the ad server took first) is kept."""
    token = "adcp_test_no_new_lines_token_00000000"
    await own_tenant(live.settings, "nolines", token, ["add_line"])
    sports = CTV
    async with mcp_client(live.mcp_url, token) as c:
        mb, window = await _awaiting_approval(c)
        before = await call(c, "get_avails", window)
        refused = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "new_packages": [{**sports, "budget": 21000}]},
        )
        after = await call(c, "get_avails", window)
        g_buy = await call(c, "get_media_buys", {"media_buy_ids": [mb]})
        ng = await call(c, "create_media_buy", non_guaranteed(budget=2000))
        ng_id = ng.data["media_buy_id"]
        half = await call(
            c, "update_media_buy", {"media_buy_id": ng_id, "paused": True, "new_packages": [SPORTS]}
        )
        ng_buy = await call(c, "get_media_buys", {"media_buy_ids": [ng_id]})
    assert refused.error_codes == ["SERVICE_UNAVAILABLE"], refused.data

    def reserved(result: Any) -> int:
        return int(result.data["packages"][0]["reserved_impressions"])

    assert reserved(after) == reserved(before)
    [buy] = g_buy.data["media_buys"]
    assert (len(buy["packages"]), buy["revision"], buy["total_budget"]) == (1, 1, 20000)
    assert half.error_codes == ["SERVICE_UNAVAILABLE"]
    assert half.error["details"]["applied"] == ["order pause"]
    [buy] = ng_buy.data["media_buys"]
    assert buy["status"] == "paused" and len(buy["packages"]) == 1
    assert (buy["revision"], buy["total_budget"]) == (2, 2000)
