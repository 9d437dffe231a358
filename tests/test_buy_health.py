"""A buy's health on get_media_buys: ``impaired``, with an impairment per offline
creative, while a package has no approved creative left to serve — and ``ok`` again
once it has one. A rejected creative beside an approved one impairs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.creative_helpers import careful_publisher, display, sync_args
from tests.media_helpers import non_guaranteed
from tests.support import assert_valid
from tests.tenant_admin_support import admin_api


async def test_a_package_left_without_an_approved_creative_impairs_its_buy(
    tmp_path: Path,
) -> None:
    async with admin_api(tmp_path) as api:
        tid, token = await careful_publisher(api)
        args = non_guaranteed(budget=2000)
        args["packages"].append(
            {
                "product_id": "display_sports_section",
                "pricing_option_id": "sports_display_auction",
                "bid_price": 7.0,
                "budget": 3000,
            }
        )
        buy = await api.mcp_result("create_media_buy", args, token)
        mb = buy["media_buy_id"]
        p1, p2 = (p["package_id"] for p in buy["packages"])
        assignments = [
            {"creative_id": "cr_a", "package_id": p1},
            {"creative_id": "cr_b", "package_id": p1},
            {"creative_id": "cr_c", "package_id": p2},
        ]
        creatives = [display(c) for c in ("cr_a", "cr_b", "cr_c")]
        await api.mcp_result("sync_creatives", sync_args(creatives, assignments), token)
        queue = (await api.request("GET", f"/creatives/review?tenant_id={tid}")).json()
        ids = {c["creative_id"]: c["id"] for c in queue["creatives"]}

        async def decide(creative: str, verdict: str, reason: str | None = None) -> None:
            body = {"reason": reason} if reason else None
            response = await api.request("POST", f"/creatives/{ids[creative]}/{verdict}", json=body)
            assert response.status_code == 200, response.text

        async def health() -> dict[str, Any]:
            listed = await api.mcp_result("get_media_buys", {"media_buy_ids": [mb]}, token)
            assert_valid("get_media_buys", listed)
            return listed["media_buys"][0]

        pending = await health()
        for c in ("cr_a", "cr_b", "cr_c"):
            await decide(c, "approve")
        serving = await health()
        await decide("cr_a", "reject", "Unsubstantiated health claim")
        one_left = await health()
        await decide("cr_b", "reject", "Unsubstantiated health claim")
        impaired = await health()
        await decide("cr_b", "approve")
        recovered = await health()
    # Creatives awaiting their first review are not offline: nothing is impaired.
    assert (pending["health"], pending["impairments"]) == ("ok", [])
    assert (serving["health"], serving["impairments"]) == ("ok", [])
    assert (one_left["health"], one_left["impairments"]) == ("ok", [])  # cr_b still serves
    assert impaired["health"] == "impaired"
    by_creative = {i["resource_id"]: i for i in impaired["impairments"]}
    assert set(by_creative) == {"cr_a", "cr_b"}
    for impairment in by_creative.values():
        assert impairment["resource_type"] == "creative"
        assert impairment["package_ids"] == [p1]  # p2 still serves cr_c
        assert impairment["transition"] == {"from": "approved", "to": "rejected"}
        assert impairment["reason_code"] == "content_rejected"
        assert impairment["reason"] == "Unsubstantiated health claim"
        assert "sync_creatives" in impairment["remediation"]
    assert (recovered["health"], recovered["impairments"]) == ("ok", [])


async def test_a_creative_rejected_at_its_first_review_is_a_policy_impairment(
    tmp_path: Path,
) -> None:
    async with admin_api(tmp_path) as api:
        tid, token = await careful_publisher(api)
        buy = await api.mcp_result("create_media_buy", non_guaranteed(budget=2000), token)
        mb, pkg = buy["media_buy_id"], buy["packages"][0]["package_id"]
        await api.mcp_result(
            "sync_creatives",
            sync_args([display("cr_x")], [{"creative_id": "cr_x", "package_id": pkg}]),
            token,
        )
        queue = (await api.request("GET", f"/creatives/review?tenant_id={tid}")).json()
        [creative] = queue["creatives"]
        rejected = await api.request(
            "POST", f"/creatives/{creative['id']}/reject", json={"reason": "Off brand"}
        )
        listed = await api.mcp_result("get_media_buys", {"media_buy_ids": [mb]}, token)
    assert rejected.status_code == 200, rejected.text
    [buy_read] = listed["media_buys"]
    [impairment] = buy_read["impairments"]
    assert buy_read["health"] == "impaired"
    assert impairment["transition"] == {"to": "rejected"}  # it never served
    assert impairment["reason_code"] == "policy_violation"
    assert impairment["package_ids"] == [pkg]
