"""Creatives sent inline with packages (AdCP packages[].creatives): they enter the
buyer's library as sync_creatives would take them and are assigned to their packages —
on create_media_buy and on update_media_buy's new_packages; an invalid one stores
nothing and books nothing, naming its place."""

from __future__ import annotations

from typing import Any

from tests.creative_helpers import display
from tests.media_helpers import non_guaranteed, own_tenant
from tests.support import LiveServer, assert_valid, call, mcp_client

TOKEN = "adcp_test_inline_creatives_token_0000001"
SPORTS = {"product_id": "display_sports_section", "pricing_option_id": "sports_display_auction",
          "bid_price": 7.0, "budget": 3000}  # fmt: skip


def _assigned(buy: dict[str, Any]) -> dict[str, list[str]]:
    return {
        p["package_id"]: [a["creative_id"] for a in p.get("creative_assignments", [])]
        for p in buy["packages"]
    }


async def test_inline_creatives_join_the_library_assigned_to_their_packages(
    live: LiveServer,
) -> None:
    await own_tenant(live.settings, "inline-pub", TOKEN, [])
    args = non_guaranteed()
    first = args["packages"][0]
    args["packages"] = [
        {**first, "creatives": [display("cr_in_a"), display("cr_in_b", 728, 90)]},
        {**first, "budget": 1000, "creatives": [display("cr_in_a")]},  # the same one again
    ]
    async with mcp_client(live.mcp_url, TOKEN) as c:
        booked = await call(c, "create_media_buy", args)
        mb = booked.data["media_buy_id"]
        added = await call(
            c,
            "update_media_buy",
            {"media_buy_id": mb, "new_packages": [{**SPORTS, "creatives": [display("cr_in_c")]}]},
        )
        [buy] = (await call(c, "get_media_buys", {"media_buy_ids": [mb]})).data["media_buys"]
        library = await call(c, "list_creatives", {})
    assert not booked.is_error, booked.data
    assert_valid("create_media_buy", booked.data)
    assert not added.is_error, added.data
    one, two, three = buy["packages"]
    assert _assigned(buy) == {
        one["package_id"]: ["cr_in_a", "cr_in_b"],
        two["package_id"]: ["cr_in_a"],
        three["package_id"]: ["cr_in_c"],
    }
    statuses = {cr["creative_id"]: cr["status"] for cr in library.data["creatives"]}
    assert statuses == {"cr_in_a": "approved", "cr_in_b": "approved", "cr_in_c": "approved"}


async def test_an_invalid_inline_creative_stores_and_books_nothing(live: LiveServer) -> None:
    await own_tenant(live.settings, "inline-pub-2", TOKEN + "2", [])
    args = non_guaranteed()
    bad = display("cr_bad", width=301)  # no such format
    args["packages"][0]["creatives"] = [display("cr_good"), bad]
    async with mcp_client(live.mcp_url, TOKEN + "2") as c:
        refused = await call(c, "create_media_buy", args)
        buys = await call(c, "get_media_buys", {})
        library = await call(c, "list_creatives", {})
    assert refused.error_codes == ["CREATIVE_REJECTED"], refused.data
    assert refused.error["field"] == "packages[0].creatives[1].format_id", refused.error
    assert buys.data["media_buys"] == []
    assert library.data["creatives"] == []


async def test_a_conflicting_retry_changes_no_creative(live: LiveServer) -> None:
    await own_tenant(live.settings, "inline-pub-3", TOKEN + "3", [])
    args = non_guaranteed()
    args["packages"][0]["creatives"] = [display("cr_once")]
    changed = {**args, "packages": [{**args["packages"][0], "creatives": [
        display("cr_once", name="Renamed on a retry")]}]}  # fmt: skip
    async with mcp_client(live.mcp_url, TOKEN + "3") as c:
        booked = await call(c, "create_media_buy", args)
        conflict = await call(c, "create_media_buy", changed)  # same idempotency key
        library = await call(c, "list_creatives", {})
    assert not booked.is_error, booked.data
    assert conflict.error_codes == ["IDEMPOTENCY_CONFLICT"], conflict.data
    [creative] = library.data["creatives"]
    assert creative["name"] == "Banner cr_once"  # the refused retry changed nothing
